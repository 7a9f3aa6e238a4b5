/**
 * Float64 forms of ops that onnxruntime's CPU provider runs in float32 only (Softplus, Elu, Conv),
 * written with ops it has in both types, so float64 graphs (finite-difference checks, reference runs)
 * compute the same functions. Shared by the native field kinds and imported fields.
 */
import type { GraphWriter } from './writer.js';

/** softplus(x) = relu(x) + log(1 + exp(−|x|)), the stable form. */
export function softplus64(g: GraphWriter, x: string): string {
  return g.op('Add', [g.op('Relu', [x]), g.op('Log', [g.op('Add', [g.scalar(1), g.op('Exp', [g.op('Neg', [g.op('Abs', [x])])])])])]);
}

/** elu(x) = relu(x) + α·(exp(−relu(−x)) − 1): exp never sees a positive argument. */
export function elu64(g: GraphWriter, x: string, alpha: number): string {
  const expNeg = g.op('Exp', [g.op('Neg', [g.op('Relu', [g.op('Neg', [x])])])]);
  return g.op('Add', [g.op('Relu', [x]), g.op('Mul', [g.scalar(alpha), g.op('Sub', [expNeg, g.scalar(1)])])]);
}

export interface ConvGeometry {
  /** Per-sample input spatial dims. */
  readonly spatial: readonly number[];
  /** [begin…, end…] as ONNX's pads. */
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
}

/**
 * A stride-1 Conv as one MatMul per kernel offset: x [B, Cin, ...spatial], weight [Cout, Cin, ...kernel],
 * bias [Cout] (optional) → [B, Cout, ...outSpatial].
 */
export function convByMatMul(g: GraphWriter, x: string, weight: string, bias: string | undefined, wShape: readonly number[], geo: ConvGeometry, out?: string): string {
  const [cout, cin, ...kernel] = wShape as [number, number, ...number[]];
  const nd = kernel.length;
  const { spatial, pads, dilations } = geo;
  const outSpatial = spatial.map((s, i) => s + pads[i]! + pads[nd + i]! - (kernel[i]! - 1) * dilations[i]!);
  const P = outSpatial.reduce((a, c) => a * c, 1);
  const axes = spatial.map((_, i) => i + 2);
  const padded = pads.some((p) => p !== 0);
  const xp = padded ? g.op('Pad', [x, g.int64s([0, 0, ...pads.slice(0, nd), 0, 0, ...pads.slice(nd)])]) : x;
  const pointwise = kernel.every((k) => k === 1);
  let offsets: number[][] = [[]];
  for (const k of kernel) offsets = offsets.flatMap((o) => Array.from({ length: k }, (_, j) => [...o, j]));
  let acc: string | undefined;
  for (const off of offsets) {
    const start = off.map((o, i) => o * dilations[i]!);
    const xs = pointwise ? xp : g.op('Slice', [xp, g.int64s(start), g.int64s(start.map((o, i) => o + outSpatial[i]!)), g.int64s(axes)]);
    const ws = pointwise ? weight : g.op('Slice', [weight, g.int64s(off), g.int64s(off.map((o) => o + 1)), g.int64s(axes)]);
    const term = g.op('MatMul', [g.op('Reshape', [ws, g.int64s([cout, cin])]), g.op('Reshape', [xs, g.int64s([-1, cin, P])])]);
    acc = acc === undefined ? term : g.op('Add', [acc, term]);
  }
  const y = bias === undefined ? acc! : g.op('Add', [acc!, g.op('Reshape', [bias, g.int64s([cout, 1])])]);
  return g.op('Reshape', [y, g.int64s([-1, cout, ...outSpatial])], {}, out);
}
