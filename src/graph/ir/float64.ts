/**
 * Float64 forms of ops that onnxruntime's CPU provider runs in float32 only (Softplus, Elu, Conv),
 * written with ops it has in both types, so float64 graphs (finite-difference checks, reference runs)
 * compute the same functions. Shared by the native field kinds and imported fields.
 */
import type { GraphWriter } from './writer.js';

/** softplus(x) = relu(x) + log(1 + exp(−|x|)), the stable form. */
export function softplus64(g: GraphWriter, x: string): string {
  return g.op('Add', [
    g.op('Relu', [x]),
    g.op('Log', [g.op('Add', [g.scalar(1), g.op('Exp', [g.op('Neg', [g.op('Abs', [x])])])])]),
  ]);
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
  /** Absent: all 1 (a strided Conv is the stride-1 one subsampled). */
  readonly strides?: readonly number[];
  /** Channel groups; absent: 1. */
  readonly group?: number;
}

/**
 * A Conv as one MatMul per kernel offset (strided: the stride-1 result subsampled; grouped: batched over groups):
 * x [B, Cin, ...spatial], weight [Cout, Cin, ...kernel], bias [Cout] (optional) → [B, Cout, ...outSpatial].
 */
export function convByMatMul(
  g: GraphWriter,
  x: string,
  weight: string,
  bias: string | undefined,
  wShape: readonly number[],
  geo: ConvGeometry,
  out?: string,
): string {
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
    const xs = pointwise
      ? xp
      : g.op('Slice', [xp, g.int64s(start), g.int64s(start.map((o, i) => o + outSpatial[i]!)), g.int64s(axes)]);
    const ws = pointwise
      ? weight
      : g.op('Slice', [weight, g.int64s(off), g.int64s(off.map((o) => o + 1)), g.int64s(axes)]);
    const G = geo.group ?? 1;
    // Grouped: weight [G, cout/G, cin] against x [B, G, cin, P], batched over the groups.
    const term =
      G === 1
        ? g.op('MatMul', [g.op('Reshape', [ws, g.int64s([cout, cin])]), g.op('Reshape', [xs, g.int64s([-1, cin, P])])])
        : g.op('Reshape', [
            g.op('MatMul', [
              g.op('Reshape', [ws, g.int64s([G, cout / G, cin])]),
              g.op('Reshape', [xs, g.int64s([-1, G, cin, P])]),
            ]),
            g.int64s([-1, cout, P]),
          ]);
    acc = acc === undefined ? term : g.op('Add', [acc, term]);
  }
  const y = bias === undefined ? acc! : g.op('Add', [acc!, g.op('Reshape', [bias, g.int64s([cout, 1])])]);
  const strides = geo.strides ?? kernel.map(() => 1);
  if (strides.every((v) => v === 1)) return g.op('Reshape', [y, g.int64s([-1, cout, ...outSpatial])], {}, out);
  return subsample(g, g.op('Reshape', [y, g.int64s([-1, cout, ...outSpatial])]), outSpatial, strides, out);
}

/**
 * x [B, C, ...dims] at every stride-th position of each spatial dim from 0 (ONNX Conv's output count,
 * ⌊(d − 1)/s⌋ + 1): zero-padded to whole strides, viewed [B, C, o₁, s₁, …], the first of each kept.
 * Written with step-1 Slice, Pad and Reshape, whose gradient rules exist.
 */
function subsample(g: GraphWriter, x: string, dims: readonly number[], strides: readonly number[], out?: string) {
  const counts = dims.map((d, i) => Math.floor((d - 1) / strides[i]!) + 1);
  // counts · stride ≥ d: only ever padded.
  const extra = counts.map((c, i) => c * strides[i]! - dims[i]!);
  let t = extra.some((e) => e > 0) ? g.op('Pad', [x, g.int64s([0, 0, ...dims.map(() => 0), 0, 0, ...extra])]) : x;
  t = g.op('Reshape', [t, g.int64s([0, 0, ...counts.flatMap((c, i) => [c, strides[i]!])])]);
  const sub = counts.map((_, i) => 3 + 2 * i);
  t = g.op('Slice', [t, g.int64s(sub.map(() => 0)), g.int64s(sub.map(() => 1)), g.int64s(sub)]);
  return g.op('Reshape', [t, g.int64s([0, 0, ...counts])], {}, out);
}
