/**
 * The gradient rules of reverse-mode autodiff (autodiff.ts): one rule per ONNX
 * op type in a registry (registering an op twice is an error). Gradients of
 * matrix products use Gemm's transA/transB flags instead of Transpose nodes;
 * contributions that merge across solver stages are returned lazily
 * (LazyGrad) and written by the pass once all are known.
 */
import { blockedWeight, NCHWC_CONV, NCHWC_REORDER_INPUT, NCHWC_REORDER_OUTPUT } from '../models/fields/graph-ops.js';
import { attr, type Attr, type GraphBuilder, type GraphNode } from './graph.js';
import { BROADCAST_BOOL, CAST_CODE, FLOAT_TYPES, intAttr, intsAttr, normAxis, prod, reduceAxes, slicePlan, type ValueMeta } from './shapes.js';

/** What a gradient rule may use besides the builder. */
export interface GradContext {
  readonly b: GraphBuilder;
  readonly node: GraphNode;
  meta(name: string): ValueMeta;
  shape(name: string): readonly number[];
  /** Constant int64 input values (Reshape targets, pads, axes). */
  known(name: string): readonly number[];
  /** Sum a gradient of shape `from` down to shape `to` (the reverse of broadcasting). */
  sumToShape(g: string, from: readonly number[], to: readonly number[]): string;
  /** A float constant of the graph's float type. */
  scalar(value: number): string;
  /** Reshape to a static shape (no node when the shape is unchanged). */
  reshape(x: string, from: readonly number[], to: readonly number[]): string;
}

/**
 * A gradient rule: given the gradients of the node's outputs (undefined where
 * an output does not reach the loss) and which inputs need a gradient, return
 * one gradient per input (undefined = zero or not needed). Returned gradients
 * have exactly the input's shape.
 */
export type GradientRule = (ctx: GradContext, gradOutputs: readonly (string | undefined)[], needs: readonly boolean[]) => readonly (GradTerm | undefined)[];

/**
 * A gradient contribution whose nodes are written only once every
 * contribution to the value is known, so that contributions of the same form
 * merge: the weight gradient of a layer used by every solver stage,
 * Σ_s a_sᵀ·g_s, becomes a chain of Gemms accumulating through their C input
 * (or one Gemm over the stages' rows concatenated) instead of one Gemm per
 * stage plus a Sum, and bias gradients 1ᵀ·g_s accumulate the same way instead
 * of one ReduceSum per stage.
 */
export type LazyGrad =
  /** alpha · aᵀ · g for a [R, K], g [R, N] (rows may differ between merged terms), reshaped to `shape` when given. */
  | { readonly kind: 'rowsProduct'; readonly a: string; readonly g: string; readonly alpha: number; readonly shape?: readonly number[] }
  /** g of shape `from` summed down to shape `to` (the reverse of broadcasting). */
  | { readonly kind: 'reduce'; readonly g: string; readonly from: readonly number[]; readonly to: readonly number[] }
  /** map(g): a linear map applied once to the sum of the terms with the same key (a weight's re-layout). */
  | { readonly kind: 'mapped'; readonly g: string; readonly key: string; readonly map: (sum: string, out?: string) => string };

export type GradTerm = string | LazyGrad;

export const registry = new Map<string, GradientRule>();

/** Register the gradient rule of an op type; each op type has exactly one rule. */
export function registerGradient(op: string, rule: GradientRule): void {
  if (registry.has(op)) throw new Error(`autodiff: a gradient rule for op "${op}" is already registered`);
  registry.set(op, rule);
}

export function hasGradient(op: string): boolean {
  return registry.has(op);
}

export function gradientOps(): string[] {
  return [...registry.keys()].sort();
}

/** Ops whose outputs carry no gradient (integer / boolean results). */
export const NON_DIFFERENTIABLE = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', ...BROADCAST_BOOL, 'Not', 'Floor', 'Ceil']);

export function gemmAttrs(transA: boolean, transB: boolean, alpha: number): Record<string, Attr> {
  const a: Record<string, Attr> = {};
  if (transA) a.transA = attr.int(1);
  if (transB) a.transB = attr.int(1);
  if (alpha !== 1) a.alpha = attr.float(alpha);
  return a;
}

/** Gradients of Y = alpha·op(A)·op(B) for 2-D operands, as Gemms with transpose flags (no Transpose nodes). */
function matmul2dGrads(ctx: GradContext, g: string, A: string, B: string, tA: boolean, tB: boolean, alpha: number, needs: readonly boolean[]): [GradTerm | undefined, GradTerm | undefined] {
  const { b } = ctx;
  let dA: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0]) {
    // op(B)ᵀ = tB ? B : Bᵀ
    dA = tA ? b.op('Gemm', [B, g], gemmAttrs(tB, true, alpha)) : b.op('Gemm', [g, B], gemmAttrs(false, !tB, alpha));
  }
  if (needs[1]) {
    if (!tA && !tB) dB = { kind: 'rowsProduct', a: A, g, alpha };
    else dB = tB ? b.op('Gemm', [g, A], gemmAttrs(true, tA, alpha)) : b.op('Gemm', [A, g], gemmAttrs(!tA, false, alpha));
  }
  return [dA, dB];
}

function floatAttr(n: GraphNode, key: string, fallback: number): number {
  const a = n.attrs[key];
  return a && a.kind === 'float' ? a.value : fallback;
}

registerGradient('Identity', (_ctx, [g]) => [g]);

registerGradient('Gemm', (ctx, [g], needs) => {
  const { node: n } = ctx;
  const alpha = floatAttr(n, 'alpha', 1);
  const beta = floatAttr(n, 'beta', 1);
  const [dA, dB] = matmul2dGrads(ctx, g!, n.inputs[0]!, n.inputs[1]!, intAttr(n, 'transA', 0) === 1, intAttr(n, 'transB', 0) === 1, alpha, needs);
  let dC: GradTerm | undefined;
  if (needs[2]) {
    const from = ctx.shape(n.outputs[0]!);
    const to = ctx.shape(n.inputs[2]!);
    dC = beta === 1 ? { kind: 'reduce', g: g!, from, to } : ctx.b.op('Mul', [ctx.sumToShape(g!, from, to), ctx.scalar(beta)]);
  }
  return [dA, dB, dC];
});

registerGradient('MatMul', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [A, B] = [n.inputs[0]!, n.inputs[1]!];
  const sa = ctx.shape(A);
  const sb = ctx.shape(B);
  if (sa.length === 2 && sb.length === 2) return matmul2dGrads(ctx, g!, A, B, false, false, 1, needs);
  const swap = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  const sy = ctx.shape(n.outputs[0]!);
  const T = (x: string) => b.op('Transpose', [x], { perm: attr.ints(swap(ctx.shape(x).length)) });
  const dA = needs[0] ? ctx.sumToShape(b.op('MatMul', [g!, T(B)]), [...sy.slice(0, -1), sb[sb.length - 2]!], sa) : undefined;
  const dB = needs[1] ? ctx.sumToShape(b.op('MatMul', [T(A), g!]), [...sy.slice(0, -2), sa[sa.length - 1]!, sy[sy.length - 1]!], sb) : undefined;
  return [dA, dB];
});

function binaryShapes(ctx: GradContext): [readonly number[], readonly number[], readonly number[]] {
  const n = ctx.node;
  return [ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!), ctx.shape(n.inputs[1]!)];
}

registerGradient('Add', (ctx, [g], needs) => {
  const [sy, sa, sb] = binaryShapes(ctx);
  const part = (s: readonly number[]): GradTerm => ({ kind: 'reduce', g: g!, from: sy, to: s });
  return [needs[0] ? part(sa) : undefined, needs[1] ? part(sb) : undefined];
});

registerGradient('Sub', (ctx, [g], needs) => {
  const [sy, sa, sb] = binaryShapes(ctx);
  return [needs[0] ? ctx.sumToShape(g!, sy, sa) : undefined, needs[1] ? ctx.b.op('Neg', [ctx.sumToShape(g!, sy, sb)]) : undefined];
});

registerGradient('Mul', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [sy, sa, sb] = binaryShapes(ctx);
  return [
    needs[0] ? ctx.sumToShape(b.op('Mul', [g!, n.inputs[1]!]), sy, sa) : undefined,
    needs[1] ? ctx.sumToShape(b.op('Mul', [g!, n.inputs[0]!]), sy, sb) : undefined,
  ];
});

registerGradient('Div', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [sy, sa, sb] = binaryShapes(ctx);
  const y = n.outputs[0]!;
  return [
    needs[0] ? ctx.sumToShape(b.op('Div', [g!, n.inputs[1]!]), sy, sa) : undefined,
    // d(a/b)/db = −(a/b)/b
    needs[1] ? ctx.sumToShape(b.op('Neg', [b.op('Div', [b.op('Mul', [g!, y]), n.inputs[1]!])]), sy, sb) : undefined,
  ];
});

registerGradient('Sum', (ctx, [g], needs) => {
  const n = ctx.node;
  const sy = ctx.shape(n.outputs[0]!);
  return n.inputs.map((x, i) => (needs[i] ? ctx.sumToShape(g!, sy, ctx.shape(x)) : undefined));
});

registerGradient('Neg', (ctx, [g]) => [ctx.b.op('Neg', [g!])]);

registerGradient('Tanh', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const y = n.outputs[0]!;
  // tanh' = 1 − y²
  return [b.op('Mul', [g!, b.op('Sub', [ctx.scalar(1), b.op('Mul', [y, y])])])];
});

/**
 * ReLU's gradient g · step(x) with step(0) = 0, as tfjs and PyTorch, from y = relu(x). Written as a multiply
 * by the cast mask: about 2× faster on the CPU provider than Where(y > 0, g, 0) or g · Sign(y).
 */
function reluGrad(ctx: GradContext, g: string, y: string): string {
  const { b } = ctx;
  return b.op('Mul', [g, b.op('Cast', [b.op('Greater', [y, ctx.scalar(0)])], { to: attr.int(CAST_CODE[b.float]!) })]);
}

registerGradient('Relu', (ctx, [g]) => [reluGrad(ctx, g!, ctx.node.outputs[0]!)]);

registerGradient('Softplus', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.b.op('Sigmoid', [ctx.node.inputs[0]!])])]);

registerGradient('Sigmoid', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const y = n.outputs[0]!;
  return [b.op('Mul', [g!, b.op('Mul', [y, b.op('Sub', [ctx.scalar(1), y])])])];
});

registerGradient('Exp', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.node.outputs[0]!])]);
registerGradient('Log', (ctx, [g]) => [ctx.b.op('Div', [g!, ctx.node.inputs[0]!])]);
registerGradient('Abs', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.b.op('Sign', [ctx.node.inputs[0]!])])]);
registerGradient('Sign', () => [undefined]);
registerGradient('Sqrt', (ctx, [g]) => [ctx.b.op('Div', [g!, ctx.b.op('Mul', [ctx.node.outputs[0]!, ctx.scalar(2)])])]);

registerGradient('Cast', (ctx, [g]) => {
  const from = ctx.meta(ctx.node.inputs[0]!).dtype;
  if (!FLOAT_TYPES.has(from)) return [undefined];
  return [ctx.b.op('Cast', [g!], { to: attr.int(CAST_CODE[from]!) })];
});

registerGradient('Where', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const sy = ctx.shape(n.outputs[0]!);
  const zero = ctx.scalar(0);
  const c = n.inputs[0]!;
  return [
    undefined,
    needs[1] ? ctx.sumToShape(b.op('Where', [c, g!, zero]), sy, ctx.shape(n.inputs[1]!)) : undefined,
    needs[2] ? ctx.sumToShape(b.op('Where', [c, zero, g!]), sy, ctx.shape(n.inputs[2]!)) : undefined,
  ];
});

function reshapeBack(ctx: GradContext, g: string): string {
  const n = ctx.node;
  return ctx.reshape(g, ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!));
}

registerGradient('Reshape', (ctx, [g]) => [reshapeBack(ctx, g!), undefined]);
registerGradient('Flatten', (ctx, [g]) => [reshapeBack(ctx, g!)]);
registerGradient('Unsqueeze', (ctx, [g]) => [reshapeBack(ctx, g!), undefined]);
registerGradient('Squeeze', (ctx, [g]) => [reshapeBack(ctx, g!), undefined]);

registerGradient('Expand', (ctx, [g]) => {
  const n = ctx.node;
  return [ctx.sumToShape(g!, ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!)), undefined];
});

registerGradient('Transpose', (ctx, [g]) => {
  const n = ctx.node;
  const rank = ctx.shape(n.inputs[0]!).length;
  const perm = intsAttr(n, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [ctx.b.op('Transpose', [g!], { perm: attr.ints(inv) })];
});

registerGradient('Concat', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const rank = ctx.shape(n.inputs[0]!).length;
  const axis = normAxis(intAttr(n, 'axis', 0), rank);
  let offset = 0;
  return n.inputs.map((x, i) => {
    const size = ctx.shape(x)[axis]!;
    const start = offset;
    offset += size;
    if (!needs[i]) return undefined;
    return b.op('Slice', [g!, b.int64s([start]), b.int64s([start + size]), b.int64s([axis])]);
  });
});

registerGradient('Split', (ctx, gs, needs) => {
  const { b, node: n } = ctx;
  if (!needs[0]) return [undefined];
  const rank = ctx.shape(n.inputs[0]!).length;
  const axis = normAxis(intAttr(n, 'axis', 0), rank);
  const parts = n.outputs.map((o, i) => gs[i] ?? zerosOf(ctx, ctx.shape(o)));
  return [b.op('Concat', parts, { axis: attr.int(axis) })];
});

function zerosOf(ctx: GradContext, shape: readonly number[]): string {
  return ctx.b.op('Expand', [ctx.scalar(0), ctx.b.int64s(shape)]);
}

registerGradient('Pad', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const mode = n.attrs.mode;
  if (mode && mode.kind === 'string' && mode.value !== 'constant') throw new Error(`autodiff: Pad mode "${mode.value}" has no gradient rule (only constant)`);
  const pads = ctx.known(n.inputs[1]!);
  if (pads.some((p) => p < 0)) throw new Error(`autodiff: Pad with negative pads has no gradient rule`);
  const shape = ctx.shape(n.inputs[0]!);
  const r = shape.length;
  const axes = shape.map((_, i) => i).filter((i) => pads[i] !== 0 || pads[r + i] !== 0);
  if (axes.length === 0) return [g, undefined, undefined];
  const starts = axes.map((a) => pads[a]!);
  const ends = axes.map((a) => pads[a]! + shape[a]!);
  return [b.op('Slice', [g!, b.int64s(starts), b.int64s(ends), b.int64s(axes)]), undefined, undefined];
});

registerGradient('Slice', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const shape = ctx.shape(n.inputs[0]!);
  const opt = (i: number) => (n.inputs[i] === undefined || n.inputs[i] === '' ? undefined : ctx.known(n.inputs[i]!));
  const plan = slicePlan(shape, ctx.known(n.inputs[1]!), ctx.known(n.inputs[2]!), opt(3), opt(4), `autodiff: node ${n.name}`);
  const pads = [...plan.begin, ...plan.end.map((e, i) => shape[i]! - e)];
  return [b.op('Pad', [g!, b.int64s(pads)], { mode: attr.string('constant') }), undefined, undefined, undefined, undefined];
});

registerGradient('LogSoftmax', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const rank = ctx.shape(n.inputs[0]!).length;
  const axis = normAxis(intAttr(n, 'axis', -1), rank);
  const s = b.op('ReduceSum', [g!, b.int64s([axis])], { keepdims: attr.int(1) });
  return [b.op('Sub', [g!, b.op('Mul', [b.op('Exp', [n.outputs[0]!]), s])])];
});

registerGradient('Softmax', (ctx, [g]) => {
  const { b, node: n } = ctx;
  const rank = ctx.shape(n.inputs[0]!).length;
  const axis = normAxis(intAttr(n, 'axis', -1), rank);
  const y = n.outputs[0]!;
  const s = b.op('ReduceSum', [b.op('Mul', [g!, y]), b.int64s([axis])], { keepdims: attr.int(1) });
  return [b.op('Mul', [y, b.op('Sub', [g!, s])])];
});

function reduceGrad(ctx: GradContext, g: string, axes: number[], mean: boolean): string {
  const { b, node: n } = ctx;
  const sx = ctx.shape(n.inputs[0]!);
  const kept = sx.map((d, i) => (axes.includes(i) ? 1 : d));
  let gk = ctx.reshape(g, ctx.shape(n.outputs[0]!), kept);
  if (mean) gk = b.op('Mul', [gk, ctx.scalar(1 / prod(axes.map((a) => sx[a]!)))]);
  return kept.every((d, i) => d === sx[i]) ? gk : b.op('Expand', [gk, b.int64s(sx)]);
}

registerGradient('ReduceSum', (ctx, [g]) => {
  const n = ctx.node;
  const rank = ctx.shape(n.inputs[0]!).length;
  const axes = reduceAxes(n, rank, n.inputs[1] ? ctx.known(n.inputs[1]) : undefined);
  return [reduceGrad(ctx, g!, axes, false), undefined];
});

registerGradient('ReduceMean', (ctx, [g]) => {
  const n = ctx.node;
  const rank = ctx.shape(n.inputs[0]!).length;
  return [reduceGrad(ctx, g!, reduceAxes(n, rank, intsAttr(n, 'axes')), true)];
});

/** Per builder: weights already flipped and transposed for input gradients (shared by every stage). */
const flippedWeights = new WeakMap<GraphBuilder, Map<string, string>>();

interface ConvAttrs {
  readonly nd: number;
  readonly kernel: readonly number[];
  readonly pads: readonly number[];
  readonly spatialAxes: readonly number[];
}

function convAttrs(ctx: GradContext): ConvAttrs {
  const n = ctx.node;
  const nd = ctx.shape(n.inputs[0]!).length - 2;
  const unit = (key: string) => {
    const v = intsAttr(n, key);
    return v === undefined || v.every((x) => x === 1);
  };
  const autoPad = n.attrs.auto_pad;
  const outPad = intsAttr(n, 'output_padding');
  if (!unit('strides') || !unit('dilations') || intAttr(n, 'group', 1) !== 1 || (autoPad && autoPad.kind === 'string' && autoPad.value !== 'NOTSET') || (outPad && outPad.some((p) => p !== 0)) || intsAttr(n, 'output_shape')) {
    throw new Error(`autodiff: ${n.op} gradient supports stride 1, dilation 1, group 1 and explicit pads only (node ${n.name})`);
  }
  const spatialAxes = Array.from({ length: nd }, (_, i) => i + 2);
  return {
    nd,
    kernel: intsAttr(n, 'kernel_shape') ?? ctx.shape(n.inputs[1]!).slice(2),
    pads: intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0),
    spatialAxes,
  };
}

/**
 * The weight gradient of a stride-1 correlation, dW[m, c, k] = Σ_{n,p} a[n, m, p] · xpad[n, c, p + k], for
 * a [N, M, ...outSpatial] and x [N, C, ...spatial] in their own channels-first layout: per kernel offset k,
 * one batched MatMul of a [N, M, P] with the shifted x as [N, P, C] (the transpose fuses into the MatMul),
 * the offsets stacked and summed over N. Measured 1.8× faster than transposing both to channel rows for a
 * Gemm per offset (scripts/profile-train.ts, the 900-d conv1d field), where the transposes cost as much as
 * the products.
 */
function correlationWeightGrad(ctx: GradContext, a: string, x: string, xShape: readonly number[], conv: ConvAttrs, outSpatial: readonly number[], wShape: readonly number[]): string {
  const { b } = ctx;
  const [M, C] = [wShape[0]!, wShape[1]!];
  const N = xShape[0]!;
  const P = prod(outSpatial);
  const aFlat = b.op('Reshape', [a, b.int64s([N, M, P])]);
  const paddedSpatial = xShape.slice(2).map((d, i) => d + conv.pads[i]! + conv.pads[conv.nd + i]!);
  const padded = conv.pads.some((p) => p !== 0) ? b.op('Pad', [x, b.int64s([0, 0, ...conv.pads.slice(0, conv.nd), 0, 0, ...conv.pads.slice(conv.nd)])]) : x;
  const offsets: number[][] = [[]];
  for (const k of conv.kernel) offsets.splice(0, offsets.length, ...offsets.flatMap((o) => Array.from({ length: k }, (_, j) => [...o, j])));
  const parts = offsets.map((o) => {
    const whole = o.every((v, i) => v === 0 && paddedSpatial[i] === outSpatial[i]);
    // The offset that lines x up with the output unshifted reads x itself (no copy).
    const unshifted = o.every((v, i) => v === conv.pads[i] && xShape[i + 2] === outSpatial[i]);
    const shifted = whole ? padded : unshifted ? x : b.op('Slice', [padded, b.int64s(o), b.int64s(o.map((v, i) => v + outSpatial[i]!)), b.int64s(conv.spatialAxes)]);
    const rowsT = b.op('Transpose', [b.op('Reshape', [shifted, b.int64s([N, C, P])])], { perm: attr.ints([0, 2, 1]) });
    return b.op('MatMul', [aFlat, rowsT]); // [N, M, C]
  });
  const stacked = parts.length === 1 ? parts[0]! : b.op('Concat', parts.map((p) => b.op('Unsqueeze', [p, b.int64s([3])])), { axis: attr.int(3) });
  return b.op('Reshape', [b.op('ReduceSum', [stacked, b.int64s([0])], { keepdims: attr.int(0) }), b.int64s(wShape)]);
}

/** The bias gradient of a convolution: g [N, M, ...spatial] summed over every axis but the channels. */
function channelSum(ctx: GradContext, g: string, rank: number): string {
  return ctx.b.op('ReduceSum', [g, ctx.b.int64s([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)])], { keepdims: attr.int(0) });
}

registerGradient('Conv', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [X, W, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  const a = convAttrs(ctx);
  const sw = ctx.shape(W);
  let dX: string | undefined;
  let dW: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0]) {
    if (a.pads.every((p, i) => p <= a.kernel[i % a.nd]! - 1)) {
      // dX = dY ⋆ flip(Wᵀ) with pads K−1−p: a plain convolution (measured faster than ConvTranspose
      // on the CPU provider); the flipped weight is made once and shared by every stage.
      let memo = flippedWeights.get(b);
      if (!memo) flippedWeights.set(b, (memo = new Map()));
      let wf = memo.get(W);
      if (!wf) {
        wf = b.op('Transpose', [W], { perm: attr.ints([1, 0, ...a.spatialAxes]) });
        if (a.kernel.some((k) => k > 1)) wf = b.op('Slice', [wf, b.int64s(a.kernel.map(() => -1)), b.int64s(a.kernel.map(() => -(2 ** 31))), b.int64s(a.spatialAxes), b.int64s(a.kernel.map(() => -1))]);
        memo.set(W, wf);
      }
      dX = b.op('Conv', [g!, wf], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads.map((p, i) => a.kernel[i % a.nd]! - 1 - p)) });
    } else {
      dX = b.op('ConvTranspose', [g!, W], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads) });
    }
  }
  if (needs[1]) dW = correlationWeightGrad(ctx, g!, X, ctx.shape(X), a, ctx.shape(n.outputs[0]!).slice(2), sw);
  if (B !== undefined && B !== '' && needs[2]) dB = channelSum(ctx, g!, ctx.shape(n.outputs[0]!).length);
  return [dX, dW, dB];
});

/** A weight in the blocked Conv's layout (graph-ops.ts: blockedWeight) back in [O, I, kh, kw] (O padded to the block). */
function unblockedWeight(b: GraphBuilder, wb: string, shape: readonly number[]): string {
  const bl = b.nchwcBlock;
  const [o, i, kh, kw] = shape as [number, number, number, number];
  const plain =
    i < bl
      ? b.op('Transpose', [b.op('Reshape', [wb, b.int64s([o / bl, i, kh, kw, bl])])], { perm: attr.ints([0, 4, 1, 2, 3]) })
      : b.op('Transpose', [b.op('Reshape', [wb, b.int64s([o / bl, i / bl, kh, kw, bl, bl])])], { perm: attr.ints([0, 5, 1, 4, 2, 3]) });
  return b.op('Reshape', [plain, b.int64s(shape)]);
}

/**
 * onnxruntime's blocked Conv (written by graph-ops.ts: convStack): x plain NCHW when it has fewer channels
 * than a block, else blocked; y blocked, its channels padded to whole blocks; optional fused ReLU.
 * dX is a blocked Conv of g with the flipped, transposed weight (reordered once per builder and shared by
 * every stage); dW is the plain correlation of g and x reordered to NCHW, then put in the weight's layout.
 */
registerGradient(NCHWC_CONV, (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const bl = b.nchwcBlock;
  if (!(bl > 1)) throw new Error(`autodiff: ${n.name} is a blocked Conv but the graph has no NCHWc block size`);
  const [X, Wb, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  if (n.inputs[3]) throw new Error(`autodiff: ${n.name}: the blocked Conv's fused Sum input has no gradient rule`);
  const act = n.attrs.activation;
  if (act && (act.kind !== 'string' || act.value !== 'Relu')) throw new Error(`autodiff: ${n.name}: only a fused Relu activation has a gradient rule`);
  const gy = act ? reluGrad(ctx, g!, n.outputs[0]!) : g!;
  const a = convAttrs(ctx);
  const wShape = ctx.shape(Wb);
  const [o, ci] = [wShape[0]!, wShape[1]!];
  const xShape = ctx.shape(X);
  const ySpatial = ctx.shape(n.outputs[0]!).slice(2);
  const needsB = B !== undefined && B !== '' && needs[2];
  if (ci < bl && a.kernel.every((k) => k === 1)) return pointwiseFromPlainGrads(ctx, gy, X, Wb, xShape, wShape, [needs[0]!, needs[1]!, needsB]);
  let dX: string | undefined;
  let dW: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0]) {
    if (a.pads.some((p, i) => p > a.kernel[i % a.nd]! - 1)) throw new Error(`autodiff: ${n.name}: pads wider than kernel − 1 have no gradient rule`);
    let memo = flippedWeights.get(b);
    if (!memo) flippedWeights.set(b, (memo = new Map()));
    let wf = memo.get(Wb);
    if (!wf) {
      // dX = dY ⋆ flip(Wᵀ) with pads K−1−p, as for the plain Conv.
      const flip = a.spatialAxes.filter((_, i) => a.kernel[i]! > 1);
      let t = b.op('Transpose', [unblockedWeight(b, Wb, wShape)], { perm: attr.ints([1, 0, 2, 3]) });
      if (flip.length > 0) t = b.op('Slice', [t, b.int64s(flip.map(() => -1)), b.int64s(flip.map(() => -(2 ** 31))), b.int64s(flip), b.int64s(flip.map(() => -1))]);
      wf = blockedWeight(b, t, [ci, o, ...a.kernel]);
      memo.set(Wb, wf);
    }
    const gx = b.op(NCHWC_CONV, [gy, wf], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads.map((p, i) => a.kernel[i % a.nd]! - 1 - p)) });
    dX = ci < bl ? b.op(NCHWC_REORDER_OUTPUT, [gx], { channels: attr.int(ci) }) : gx;
  }
  // Reduced in the plain layout: summing a blocked tensor over all but its channels measured 2× slower.
  const gPlain = needs[1] || needsB ? b.op(NCHWC_REORDER_OUTPUT, [gy], { channels: attr.int(o) }) : undefined;
  if (needs[1]) {
    const xPlain = ci < bl ? X : b.op(NCHWC_REORDER_OUTPUT, [X], { channels: attr.int(ci) });
    // Every stage's term is summed in the plain layout and reordered once.
    dW = { kind: 'mapped', g: correlationWeightGrad(ctx, gPlain!, xPlain, xShape, a, ySpatial, wShape), key: `nchwc-weight:${Wb}`, map: (sum, out) => blockedWeight(b, sum, wShape, out) };
  }
  if (needsB) dB = channelSum(ctx, gPlain!, xShape.length);
  return [dX, dW, dB];
});

/**
 * A 1×1 blocked Conv reading a plain input x [N, ci, …] (ci < block): its gradients as products over the
 * output blocks of g viewed [N, O/bl, HW, bl], so nothing is reordered. dW comes out [O/bl, ci, bl], the
 * weight's own blocked layout for 1×1 kernels.
 */
function pointwiseFromPlainGrads(ctx: GradContext, g: string, X: string, Wb: string, xShape: readonly number[], wShape: readonly number[], needs: readonly [boolean, boolean, boolean]): [string?, string?, string?] {
  const { b } = ctx;
  const bl = b.nchwcBlock;
  const [o, ci] = [wShape[0]!, wShape[1]!];
  const n = xShape[0]!;
  const hw = prod(xShape.slice(2));
  const gv = b.op('Reshape', [g, b.int64s([n, o / bl, hw, bl])]);
  let dX: string | undefined;
  if (needs[0]) {
    const w = b.op('Transpose', [b.op('Reshape', [Wb, b.int64s([o / bl, ci, bl])])], { perm: attr.ints([0, 2, 1]) }); // [O/bl, bl, ci]
    const rows = b.op('ReduceSum', [b.op('MatMul', [gv, w]), b.int64s([1])], { keepdims: attr.int(0) }); // [N, HW, ci]
    dX = b.op('Reshape', [ci === 1 ? rows : b.op('Transpose', [rows], { perm: attr.ints([0, 2, 1]) }), b.int64s(xShape)]);
  }
  const dW = needs[1]
    ? b.op('Reshape', [b.op('ReduceSum', [b.op('MatMul', [b.op('Reshape', [X, b.int64s([n, 1, ci, hw])]), gv]), b.int64s([0])], { keepdims: attr.int(0) }), b.int64s(wShape)])
    : undefined;
  const dB = needs[2]
    ? b.op('Reshape', [b.op('ReduceSum', [b.op('MatMul', [b.scalar(1, [1, hw]), gv]), b.int64s([0])], { keepdims: attr.int(0) }), b.int64s([o])])
    : undefined;
  return [dX, dW, dB];
}

// Reordering is a permutation (plus zero channels on the way back): each one's adjoint is the other.
registerGradient(NCHWC_REORDER_INPUT, (ctx, [g]) => [ctx.b.op(NCHWC_REORDER_OUTPUT, [g!], { channels: attr.int(ctx.shape(ctx.node.inputs[0]!)[1]!) })]);

registerGradient(NCHWC_REORDER_OUTPUT, (ctx, [g]) => {
  const { b, node: n } = ctx;
  const padded = ctx.shape(n.inputs[0]!)[1]!;
  const c = ctx.shape(n.outputs[0]!)[1]!;
  const rank = ctx.shape(n.inputs[0]!).length;
  const pads = new Array<number>(2 * rank).fill(0);
  pads[rank + 1] = padded - c;
  const full = padded === c ? g! : b.op('Pad', [g!, b.int64s(pads)]);
  return [b.op(NCHWC_REORDER_INPUT, [full])];
});

registerGradient('ConvTranspose', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [X, W, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  const a = convAttrs(ctx);
  const sw = ctx.shape(W); // [Cin, Cout, ...kernel]
  // ConvTranspose(·; W, p) is the adjoint of Conv(·; W, p): its input gradient is that convolution.
  const dX = needs[0] ? b.op('Conv', [g!, W], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads) }) : undefined;
  // dW[i, o, k] = Σ_{n,p} X[n, i, p] · dYpad[n, o, p + k].
  const dW = needs[1] ? correlationWeightGrad(ctx, X, g!, ctx.shape(n.outputs[0]!), a, ctx.shape(X).slice(2), sw) : undefined;
  const dB = B !== undefined && B !== '' && needs[2] ? channelSum(ctx, g!, ctx.shape(n.outputs[0]!).length) : undefined;
  return [dX, dW, dB];
});
