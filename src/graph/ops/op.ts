/**
 * What one ONNX op is to the compiler: a record `{name, inferShape, grad}` (tfjs-core's one op config per
 * op), registered once in ops/index.ts. The shape rule gives the dtype and static shape of the node's
 * outputs (and the values of small int64 tensors, the shape arithmetic around Reshape targets); the
 * gradient rule appends the node's vector-Jacobian product to the builder (reverse-mode autodiff:
 * src/graph/autodiff/gradients.ts). Also the shape helpers the records share.
 */
import type { GraphBuilder, GraphNode } from '../ir/graph.js';
import { intAttr } from '../ir/attrs.js';
import type { DType } from '../ir/writer.js';

export type ElemType = DType | 'bool';

export interface ValueMeta {
  readonly dtype: ElemType;
  readonly shape: readonly number[];
  /** Known values of small int64 tensors (shape arithmetic: Reshape targets, Shape, Concat of them). */
  readonly value?: readonly number[];
}

export type ShapeMap = Map<string, ValueMeta>;

export const FLOAT_TYPES = new Set<ElemType>(['float32', 'float64']);

/** ONNX TensorProto.DataType codes used by Cast. */
export const CAST_TO: Record<number, ElemType> = { 1: 'float32', 11: 'float64', 7: 'int64', 9: 'bool' };
export const CAST_CODE: Record<string, number> = { float32: 1, float64: 11, int64: 7, bool: 9 };

/** What a shape rule reads and writes for one node. */
export interface ShapeContext {
  readonly node: GraphNode;
  /** "autodiff: node <name> (<op>)", the start of every error. */
  readonly where: string;
  get(i: number): ValueMeta;
  /** An optional input (absent or ''). */
  opt(i: number): ValueMeta | undefined;
  /** The values of a constant int64 input. */
  known(i: number): readonly number[];
  set(meta: ValueMeta, out?: number): void;
}

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
export type GradientRule = (
  ctx: GradContext,
  gradOutputs: readonly (string | undefined)[],
  needs: readonly boolean[],
) => readonly (GradTerm | undefined)[];

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
  /**
   * alpha · aᵀ · g for a [R, K], g [R, N] (rows may differ between merged terms), reshaped to `shape` when given.
   */
  | {
      readonly kind: 'rowsProduct';
      readonly a: string;
      readonly g: string;
      readonly alpha: number;
      readonly shape?: readonly number[];
    }
  /** g of shape `from` summed down to shape `to` (the reverse of broadcasting). */
  | { readonly kind: 'reduce'; readonly g: string; readonly from: readonly number[]; readonly to: readonly number[] }
  /** map(g): a linear map applied once to the sum of the terms with the same key (a weight's re-layout). */
  | {
      readonly kind: 'mapped';
      readonly g: string;
      readonly key: string;
      readonly map: (sum: string, out?: string) => string;
    };

export type GradTerm = string | LazyGrad;

export interface OpDef {
  /** The op type, "domain:Op" outside the default domain. */
  readonly name: string;
  readonly inferShape: (ctx: ShapeContext) => void;
  /** The gradient rule; absent = differentiating through this op is an error naming it. */
  readonly grad?: GradientRule;
  /** False for ops whose outputs carry no gradient (integer / boolean results). */
  readonly differentiable?: false;
}

export function broadcast(shapes: readonly (readonly number[])[], where: string): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v)
        throw new Error(`${where}: shapes ${shapes.map((s) => `[${s.join(', ')}]`).join(' and ')} do not broadcast`);
      d = v;
    }
    out.push(d);
  }
  return out;
}

export const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
export const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function reduceAxes(n: GraphNode, rank: number, axes: readonly number[] | undefined): number[] {
  if (axes === undefined || axes.length === 0) {
    if (intAttr(n, 'noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank));
}

export function slicePlan(
  shape: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  axesIn: readonly number[] | undefined,
  steps: readonly number[] | undefined,
  where: string,
): { shape: number[]; begin: number[]; end: number[] } {
  const r = shape.length;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => normAxis(a, r));
  const begin = new Array<number>(r).fill(0);
  const end = [...shape];
  axes.forEach((a, i) => {
    if (steps && steps[i] !== 1) throw new Error(`${where}: only slices with step 1 are supported`);
    const d = shape[a]!;
    const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
    begin[a] = clamp(starts[i]!);
    end[a] = Math.max(begin[a]!, clamp(ends[i]!));
  });
  return { shape: end.map((e, i) => e - begin[i]!), begin, end };
}

/**
 * Elementwise f over known small tensors with broadcasting: the folding of exporters' shape arithmetic
 * (Equal / Where / Mul over Shape results). Undefined when a value is unknown or the result is large.
 */
export function foldBroadcast(
  ins: readonly ValueMeta[],
  shape: readonly number[],
  f: (...xs: number[]) => number,
): number[] | undefined {
  if (ins.some((v) => !v.value) || prod(shape) > 64) return undefined;
  const rank = shape.length;
  const out: number[] = [];
  for (let flat = 0; flat < prod(shape); flat++) {
    const idx: number[] = [];
    for (let d = rank - 1, r = flat; d >= 0; d--) {
      idx[d] = r % shape[d]!;
      r = Math.floor(r / shape[d]!);
    }
    const args = ins.map((v) => {
      const s = v.shape;
      let k = 0;
      for (let d = 0; d < s.length; d++) k = k * s[d]! + (s[d] === 1 ? 0 : idx[rank - s.length + d]!);
      return v.value![k]!;
    });
    out.push(f(...args));
  }
  return out;
}

/** A shape rule whose one output has the first input's dtype and the given shape. */
export function sameType(shape: (ctx: ShapeContext) => readonly number[]): (ctx: ShapeContext) => void {
  return (ctx) => ctx.set({ dtype: ctx.get(0).dtype, shape: shape(ctx) });
}
