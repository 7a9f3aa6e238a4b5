/**
 * The gradient rules of reverse-mode autodiff (autodiff.ts): one rule per ONNX
 * op type in a registry (registering an op twice is an error). Gradients of
 * matrix products use Gemm's transA/transB flags instead of Transpose nodes;
 * contributions that merge across solver stages are returned lazily
 * (LazyGrad) and written by the pass once all are known. The convolution
 * rules (plain and onnxruntime's blocked NCHWc ops) are in conv-grads.ts.
 */
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
export function reluGrad(ctx: GradContext, g: string, y: string): string {
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
