/**
 * The typed-array engine: float64 for references, float32 to match ONNX /
 * tfjs precision. Values are flat arrays; the field closure knows the shape.
 */
import type { VectorOps } from '../solvers/vector.js';

export type TypedVec = Float64Array | Float32Array;
type TypedCtor = Float64ArrayConstructor | Float32ArrayConstructor;

function makeTypedOps<T extends TypedVec>(Ctor: TypedCtor): VectorOps<T> {
  return {
    combine(base, coeffs, terms) {
      const n = (base ?? terms[0]!).length;
      const out = (base ? Ctor.from(base) : new Ctor(n)) as T;
      for (let j = 0; j < coeffs.length; j++) {
        const c = coeffs[j]!;
        if (c === 0) continue;
        const v = terms[j]!;
        for (let i = 0; i < n; i++) out[i]! += c * v[i]!;
      }
      return out;
    },
    scaledRms(v, rtol, atol, refs) {
      let sum = 0;
      for (let i = 0; i < v.length; i++) {
        let ref = 0;
        for (const r of refs) ref = Math.max(ref, Math.abs(r[i]!));
        const q = v[i]! / (atol + rtol * ref);
        sum += q * q;
      }
      return Math.sqrt(sum / v.length);
    },
    allFinite(v) {
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return false;
      return true;
    },
  };
}

export const float64Ops: VectorOps<Float64Array> = makeTypedOps<Float64Array>(Float64Array);
export const float32Ops: VectorOps<Float32Array> = makeTypedOps<Float32Array>(Float32Array);
