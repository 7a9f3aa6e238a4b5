/**
 * Reverse-mode differentiation over the nodes of a GraphBuilder.
 *
 * The forward graph is plain data (graph.ts), so the gradient graph is made by
 * walking `b.nodes` backwards from a scalar loss and appending, for every node
 * on a path from a differentiated input to the loss, the nodes its gradient
 * rule emits. Rules live in a registry keyed by ONNX op type (one rule per op;
 * registering an op twice is an error); an op on such a path without a rule
 * stops the build with an error naming the op and the node.
 *
 * Rules see static shapes: every graph odeness differentiates has fixed
 * dimensions (sessions are built per batch size), so a static shape pass
 * (`inferShapes`) runs first and broadcasting gradients reduce with constant
 * axes. Gradients of matrix products use Gemm's transA/transB flags instead of
 * Transpose nodes.
 */
import { attr, type Attr, type DType, type GraphBuilder, type GraphNode } from './graph.js';

// ---------------------------------------------------------------- shapes

export type ElemType = DType | 'bool';

export interface ValueMeta {
  readonly dtype: ElemType;
  readonly shape: readonly number[];
  /** Known values of small int64 tensors (shape arithmetic: Reshape targets, Shape, Concat of them). */
  readonly value?: readonly number[];
}

export type ShapeMap = Map<string, ValueMeta>;

const FLOAT_TYPES = new Set<ElemType>(['float32', 'float64']);

/** ONNX TensorProto.DataType codes used by Cast. */
const CAST_TO: Record<number, ElemType> = { 1: 'float32', 11: 'float64', 7: 'int64', 9: 'bool' };
const CAST_CODE: Record<string, number> = { float32: 1, float64: 11, int64: 7, bool: 9 };

const UNARY_SAME = new Set([
  'Identity', 'Tanh', 'Relu', 'Softplus', 'Sigmoid', 'Exp', 'Log', 'Neg', 'Abs', 'Sign', 'Sqrt', 'Reciprocal',
  'Softmax', 'LogSoftmax', 'Erf', 'Floor', 'Ceil', 'Not',
]);
const BROADCAST_SAME = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sum', 'Max', 'Min']);
const BROADCAST_BOOL = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or']);

function intAttr(n: GraphNode, key: string, fallback: number): number {
  const a = n.attrs[key];
  return a && a.kind === 'int' ? a.value : fallback;
}

function intsAttr(n: GraphNode, key: string): readonly number[] | undefined {
  const a = n.attrs[key];
  return a && a.kind === 'ints' ? a.value : undefined;
}

function broadcast(shapes: readonly (readonly number[])[], where: string): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) throw new Error(`${where}: shapes ${shapes.map((s) => `[${s.join(', ')}]`).join(' and ')} do not broadcast`);
      d = v;
    }
    out.push(d);
  }
  return out;
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Static dtype and shape of every value of the graph (inputs must have fixed
 * dims). Small int64 values (shapes, axes) are folded so Reshape / Expand
 * targets are known.
 */
export function inferShapes(b: GraphBuilder, upTo = b.nodes.length): ShapeMap {
  const m: ShapeMap = new Map();
  for (const i of b.inputs) {
    if (i.shape.some((d) => typeof d !== 'number')) {
      throw new Error(`autodiff: graph input ${i.name} has symbolic dims [${i.shape.join(', ')}]; differentiation needs fixed shapes`);
    }
    m.set(i.name, { dtype: i.dtype, shape: i.shape as number[] });
  }
  for (const init of b.initializers.values()) {
    m.set(init.name, {
      dtype: init.dtype,
      shape: init.shape,
      value: init.dtype === 'int64' && init.data.length <= 64 ? Array.from(init.data as BigInt64Array, (v) => Number(v)) : undefined,
    });
  }
  for (let k = 0; k < upTo; k++) {
    const n = b.nodes[k]!;
    const where = `autodiff: node ${n.name} (${n.op})`;
    const get = (i: number): ValueMeta => {
      const name = n.inputs[i];
      const v = name === undefined || name === '' ? undefined : m.get(name);
      if (!v) throw new Error(`${where}: input ${i} (${name ?? 'absent'}) has no known shape`);
      return v;
    };
    const opt = (i: number): ValueMeta | undefined => (n.inputs[i] === undefined || n.inputs[i] === '' ? undefined : get(i));
    const known = (i: number): readonly number[] => {
      const v = get(i).value;
      if (!v) throw new Error(`${where}: input ${i} (${n.inputs[i]}) must be a constant int64 tensor`);
      return v;
    };
    const set = (meta: ValueMeta, out = 0) => m.set(n.outputs[out]!, meta);
    const op = n.op;
    if (UNARY_SAME.has(op)) {
      const x = get(0);
      set({ dtype: x.dtype, shape: x.shape, value: op === 'Identity' ? x.value : undefined });
    } else if (BROADCAST_SAME.has(op)) {
      const ins = n.inputs.map((_, i) => get(i));
      set({ dtype: ins[0]!.dtype, shape: broadcast(ins.map((v) => v.shape), where) });
    } else if (BROADCAST_BOOL.has(op)) {
      set({ dtype: 'bool', shape: broadcast(n.inputs.map((_, i) => get(i).shape), where) });
    } else {
      switch (op) {
        case 'Where':
          set({ dtype: get(1).dtype, shape: broadcast([get(0).shape, get(1).shape, get(2).shape], where) });
          break;
        case 'Cast': {
          const to = CAST_TO[intAttr(n, 'to', 1)];
          if (!to) throw new Error(`${where}: unsupported cast target ${intAttr(n, 'to', 1)}`);
          set({ dtype: to, shape: get(0).shape, value: to === 'int64' ? get(0).value : undefined });
          break;
        }
        case 'Gemm': {
          const a = get(0).shape;
          const bb = get(1).shape;
          const M = intAttr(n, 'transA', 0) ? a[1]! : a[0]!;
          const N = intAttr(n, 'transB', 0) ? bb[0]! : bb[1]!;
          set({ dtype: get(0).dtype, shape: [M, N] });
          break;
        }
        case 'MatMul': {
          const a = get(0).shape;
          const bb = get(1).shape;
          if (a.length < 2 || bb.length < 2) throw new Error(`${where}: only operands of rank ≥ 2 are supported`);
          const batch = broadcast([a.slice(0, -2), bb.slice(0, -2)], where);
          set({ dtype: get(0).dtype, shape: [...batch, a[a.length - 2]!, bb[bb.length - 1]!] });
          break;
        }
        case 'Concat': {
          const ins = n.inputs.map((_, i) => get(i));
          const rank = ins[0]!.shape.length;
          const axis = normAxis(intAttr(n, 'axis', 0), rank);
          const shape = [...ins[0]!.shape];
          shape[axis] = ins.reduce((s, v) => s + v.shape[axis]!, 0);
          const value = ins.every((v) => v.value) ? ins.flatMap((v) => [...v.value!]) : undefined;
          set({ dtype: ins[0]!.dtype, shape, value });
          break;
        }
        case 'Reshape': {
          const x = get(0);
          const target = [...known(1)];
          const total = prod(x.shape);
          target.forEach((d, i) => {
            if (d === 0) target[i] = x.shape[i]!;
          });
          const neg = target.indexOf(-1);
          if (neg >= 0) target[neg] = total / prod(target.filter((_, i) => i !== neg));
          if (prod(target) !== total) throw new Error(`${where}: cannot reshape [${x.shape.join(', ')}] to [${known(1).join(', ')}]`);
          set({ dtype: x.dtype, shape: target, value: x.value });
          break;
        }
        case 'Flatten': {
          const x = get(0);
          const axis = normAxis(intAttr(n, 'axis', 1), x.shape.length);
          set({ dtype: x.dtype, shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))] });
          break;
        }
        case 'Shape': {
          const s = get(0).shape;
          const r = s.length;
          const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
          const value = s.slice(clamp(intAttr(n, 'start', 0)), clamp(intAttr(n, 'end', r)));
          set({ dtype: 'int64', shape: [value.length], value });
          break;
        }
        case 'Expand': {
          const x = get(0);
          set({ dtype: x.dtype, shape: broadcast([x.shape, known(1)], where) });
          break;
        }
        case 'Unsqueeze': {
          const x = get(0);
          const rank = x.shape.length + known(1).length;
          const axes = known(1).map((a) => normAxis(a, rank));
          const shape: number[] = [];
          let src = 0;
          for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x.shape[src++]!);
          set({ dtype: x.dtype, shape, value: x.value });
          break;
        }
        case 'Squeeze': {
          const x = get(0);
          const axes = opt(1) ? known(1).map((a) => normAxis(a, x.shape.length)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
          set({ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)), value: x.value });
          break;
        }
        case 'Pad': {
          const x = get(0);
          const pads = known(1);
          const r = x.shape.length;
          set({ dtype: x.dtype, shape: x.shape.map((d, i) => d + pads[i]! + pads[r + i]!) });
          break;
        }
        case 'Slice': {
          const x = get(0);
          const r = slicePlan(x.shape, known(1), known(2), opt(3) ? known(3) : undefined, opt(4) ? known(4) : undefined, where);
          set({ dtype: x.dtype, shape: r.shape });
          break;
        }
        case 'Transpose': {
          const x = get(0);
          const perm = intsAttr(n, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i);
          set({ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) });
          break;
        }
        case 'Split': {
          const x = get(0);
          const axis = normAxis(intAttr(n, 'axis', 0), x.shape.length);
          const sizes = opt(1) ? known(1) : n.outputs.map(() => x.shape[axis]! / n.outputs.length);
          sizes.forEach((s, i) => {
            const shape = [...x.shape];
            shape[axis] = s;
            set({ dtype: x.dtype, shape }, i);
          });
          break;
        }
        case 'ReduceSum':
        case 'ReduceMean':
        case 'ReduceMax': {
          const x = get(0);
          const axes = reduceAxes(n, x.shape.length, op === 'ReduceSum' ? (opt(1) ? known(1) : undefined) : intsAttr(n, 'axes'));
          const keep = intAttr(n, 'keepdims', 1) === 1;
          const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
          set({ dtype: x.dtype, shape });
          break;
        }
        case 'ArgMax':
        case 'ArgMin': {
          const x = get(0);
          const axis = normAxis(intAttr(n, 'axis', 0), x.shape.length);
          const keep = intAttr(n, 'keepdims', 1) === 1;
          set({ dtype: 'int64', shape: keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis) });
          break;
        }
        case 'Conv':
        case 'ConvTranspose': {
          const x = get(0).shape;
          const w = get(1).shape;
          const nd = x.length - 2;
          const kernel = intsAttr(n, 'kernel_shape') ?? w.slice(2);
          const pads = intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0);
          const strides = intsAttr(n, 'strides') ?? new Array<number>(nd).fill(1);
          const dil = intsAttr(n, 'dilations') ?? new Array<number>(nd).fill(1);
          const group = intAttr(n, 'group', 1);
          const spatial = x.slice(2).map((s, i) => {
            const k = (kernel[i]! - 1) * dil[i]! + 1;
            if (op === 'Conv') return Math.floor((s + pads[i]! + pads[nd + i]! - k) / strides[i]!) + 1;
            const outPad = intsAttr(n, 'output_padding')?.[i] ?? 0;
            return strides[i]! * (s - 1) + outPad + k - pads[i]! - pads[nd + i]!;
          });
          const channels = op === 'Conv' ? w[0]! : w[1]! * group;
          set({ dtype: get(0).dtype, shape: [x[0]!, channels, ...spatial] });
          break;
        }
        default:
          throw new Error(`${where}: no shape rule for op "${op}"; add one to src/onnx/autodiff.ts`);
      }
    }
  }
  return m;
}

function reduceAxes(n: GraphNode, rank: number, axes: readonly number[] | undefined): number[] {
  if (axes === undefined || axes.length === 0) {
    if (intAttr(n, 'noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank));
}

function slicePlan(
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

// ---------------------------------------------------------------- rules

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
  | { readonly kind: 'reduce'; readonly g: string; readonly from: readonly number[]; readonly to: readonly number[] };

export type GradTerm = string | LazyGrad;

const registry = new Map<string, GradientRule>();

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
const NON_DIFFERENTIABLE = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', ...BROADCAST_BOOL, 'Not', 'Floor', 'Ceil']);

function gemmAttrs(transA: boolean, transB: boolean, alpha: number): Record<string, Attr> {
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

registerGradient('Relu', (ctx, [g]) => {
  const { b, node: n } = ctx;
  // step(x) with step(0) = 0, as tfjs and PyTorch.
  return [b.op('Where', [b.op('Greater', [n.outputs[0]!, ctx.scalar(0)]), g!, ctx.scalar(0)])];
});

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
  readonly channelsLast: readonly number[];
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
    channelsLast: [0, ...spatialAxes, 1],
  };
}

/** A [N, C, ...spatial] tensor as rows [N·P, C] (channels last). */
function channelRows(ctx: GradContext, x: string, s: readonly number[], a: ConvAttrs): string {
  return ctx.b.op('Reshape', [ctx.b.op('Transpose', [x], { perm: attr.ints(a.channelsLast) }), ctx.b.int64s([s[0]! * prod(s.slice(2)), s[1]!])]);
}

/**
 * The weight gradient of a stride-1 correlation, dW[m, c, k] = Σ_{n,p} dyRows[(n,p), m] · xpad[n, c, p + k]:
 * per kernel offset k one Gemm of the dy rows with the shifted rows of x (channels last), then the
 * offsets stacked to [M, C, ...kernel]. `xShape` is x's shape, `outSpatial` dy's spatial shape.
 */
function correlationWeightGrad(ctx: GradContext, dyRows: string, x: string, xShape: readonly number[], a: ConvAttrs, outSpatial: readonly number[], wShape: readonly number[]): GradTerm {
  const { b } = ctx;
  const [M, C] = [wShape[0]!, wShape[1]!];
  const rows = xShape[0]! * prod(outSpatial);
  const paddedSpatial = xShape.slice(2).map((d, i) => d + a.pads[i]! + a.pads[a.nd + i]!);
  const padded = a.pads.some((p) => p !== 0) ? b.op('Pad', [x, b.int64s([0, 0, ...a.pads.slice(0, a.nd), 0, 0, ...a.pads.slice(a.nd)])]) : x;
  const xLast = b.op('Transpose', [padded], { perm: attr.ints(a.channelsLast) });
  const offsets: number[][] = [[]];
  for (const k of a.kernel) offsets.splice(0, offsets.length, ...offsets.flatMap((o) => Array.from({ length: k }, (_, j) => [...o, j])));
  const xRows = (o: number[]) => {
    const whole = o.every((v, i) => v === 0 && paddedSpatial[i] === outSpatial[i]);
    const shifted = whole ? xLast : b.op('Slice', [xLast, b.int64s(o), b.int64s(o.map((v, i) => v + outSpatial[i]!)), b.int64s(a.spatialAxes.map((x) => x - 1))]);
    return b.op('Reshape', [shifted, b.int64s([rows, C])]);
  };
  // A 1×1 kernel is a plain product of rows: lazy, so the stages' contributions chain.
  if (offsets.length === 1) return { kind: 'rowsProduct', a: dyRows, g: xRows(offsets[0]!), alpha: 1, shape: wShape };
  const parts = offsets.map((o) => b.op('Reshape', [b.op('Gemm', [dyRows, xRows(o)], gemmAttrs(true, false, 1)), b.int64s([M, C, 1])]));
  return b.op('Reshape', [b.op('Concat', parts, { axis: attr.int(2) }), b.int64s(wShape)]);
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
  const gRows = needs[1] || needs[2] ? channelRows(ctx, g!, ctx.shape(n.outputs[0]!), a) : undefined;
  if (needs[1]) dW = correlationWeightGrad(ctx, gRows!, X, ctx.shape(X), a, ctx.shape(n.outputs[0]!).slice(2), sw);
  if (B !== undefined && B !== '' && needs[2]) {
    const sy = ctx.shape(n.outputs[0]!);
    dB = { kind: 'reduce', g: gRows!, from: [sy[0]! * prod(sy.slice(2)), sy[1]!], to: [sy[1]!] };
  }
  return [dX, dW, dB];
});

registerGradient('ConvTranspose', (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [X, W, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  const a = convAttrs(ctx);
  const sw = ctx.shape(W); // [Cin, Cout, ...kernel]
  // ConvTranspose(·; W, p) is the adjoint of Conv(·; W, p): its input gradient is that convolution.
  const dX = needs[0] ? b.op('Conv', [g!, W], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads) }) : undefined;
  // dW[i, o, k] = Σ_{n,p} X[n, i, p] · dYpad[n, o, p + k].
  const dW = needs[1] ? correlationWeightGrad(ctx, channelRows(ctx, X, ctx.shape(X), a), g!, ctx.shape(n.outputs[0]!), a, ctx.shape(X).slice(2), sw) : undefined;
  let dB: GradTerm | undefined;
  if (B !== undefined && B !== '' && needs[2]) {
    const sy = ctx.shape(n.outputs[0]!);
    dB = { kind: 'reduce', g: channelRows(ctx, g!, sy, a), from: [sy[0]! * prod(sy.slice(2)), sy[1]!], to: [sy[1]!] };
  }
  return [dX, dW, dB];
});

// ---------------------------------------------------------------- the pass

export interface GradientOptions {
  /** Output names for the gradients, by differentiated value (default "grad/<name>"). */
  readonly names?: (wrt: string) => string;
  /**
   * Merge same-form contributions to a value (LazyGrad; default true =
   * 'chain', measured fastest: see scripts/bench-train.ts notes). false writes
   * every contribution as its own nodes and sums them (for comparison).
   */
  readonly merge?: boolean | MergeMode;
}

/**
 * How merged rowsProduct contributions are written: 'concat' = one Gemm over
 * the concatenated rows; 'chain' = a chain of Gemms accumulating through their
 * C input (no concatenation copies; bias rows via a ones-vector Gemm chain).
 */
export type MergeMode = 'concat' | 'chain';

export interface GradientResult {
  /** Gradient value name for each differentiated value. */
  readonly grads: Record<string, string>;
  /** Number of nodes appended. */
  readonly nodes: number;
  /** Static shapes of the forward values. */
  readonly shapes: ShapeMap;
}

/**
 * Append the gradient of the scalar `loss` with respect to each of `wrt`
 * (graph inputs or initializers) to the builder; returns the names of the
 * gradient values (named by options.names, default "grad/<name>").
 */
export function appendGradients(b: GraphBuilder, loss: string, wrt: readonly string[], options: GradientOptions = {}): GradientResult {
  const names = options.names ?? ((w: string) => `grad/${w}`);
  const end = b.nodes.length;
  const nodesBefore = b.nodes.length;
  const shapes = inferShapes(b, end);
  const lossMeta = shapes.get(loss);
  if (!lossMeta) throw new Error(`autodiff: loss ${loss} is not a value of the graph`);
  if (prod(lossMeta.shape) !== 1 || !FLOAT_TYPES.has(lossMeta.dtype)) {
    throw new Error(`autodiff: the loss must be a float scalar, ${loss} is ${lossMeta.dtype} [${lossMeta.shape.join(', ')}]`);
  }
  const produced = new Set(b.nodes.slice(0, end).flatMap((n) => n.outputs));
  for (const w of wrt) {
    if (produced.has(w)) throw new Error(`autodiff: ${w} is computed by the graph; differentiate with respect to graph inputs or initializers`);
    const meta = shapes.get(w);
    if (!meta) throw new Error(`autodiff: cannot differentiate with respect to ${w}: not a value of the graph`);
    if (!FLOAT_TYPES.has(meta.dtype)) throw new Error(`autodiff: cannot differentiate with respect to ${w}: it is ${meta.dtype}`);
  }

  // Values that depend on a differentiated value (through float outputs of differentiable ops).
  const active = new Set<string>(wrt);
  for (let k = 0; k < end; k++) {
    const n = b.nodes[k]!;
    if (NON_DIFFERENTIABLE.has(n.op) || !n.inputs.some((i) => active.has(i))) continue;
    for (const o of n.outputs) if (FLOAT_TYPES.has(shapes.get(o)!.dtype)) active.add(o);
  }
  // Values the loss depends on.
  const reaches = new Set<string>([loss]);
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (n.outputs.some((o) => reaches.has(o))) for (const i of n.inputs) if (i !== '') reaches.add(i);
  }
  if (!active.has(loss)) throw new Error(`autodiff: the loss ${loss} does not depend on ${wrt.join(', ')}`);

  const mode: MergeMode | false = options.merge === undefined || options.merge === true ? 'chain' : options.merge;
  const merge = mode !== false;
  const contributions = new Map<string, GradTerm[]>();
  const add = (name: string, term: GradTerm) => {
    // A reduction to the same shape is the gradient itself.
    const g = typeof term !== 'string' && term.kind === 'reduce' && sameShape(term.from, term.to) ? term.g : term;
    const list = contributions.get(name);
    if (list) list.push(g);
    else contributions.set(name, [g]);
  };
  const concats = new Map<string, string>();
  const concatRows = (xs: readonly string[]): string => {
    if (xs.length === 1) return xs[0]!;
    const key = xs.join('\u0000');
    let c = concats.get(key);
    if (!c) {
      c = b.op('Concat', xs, { axis: attr.int(0) });
      concats.set(key, c);
    }
    return c;
  };
  /** Sum of terms; the last node written gets the name `out` when given. */
  const sumTerms = (terms: readonly GradTerm[], out?: string): string => {
    const jobs: ((o?: string) => string)[] = [];
    const rows = new Map<string, { a: string[]; g: string[] }>();
    const reductions = new Map<string, { g: string[]; from: readonly number[]; to: readonly number[] }>();
    for (const t of terms) {
      if (typeof t === 'string') jobs.push((o) => (o === undefined ? t : b.op('Identity', [t], {}, o)));
      else if (t.kind === 'rowsProduct') {
        const key = merge ? `${t.alpha}|${t.shape?.join('x') ?? ''}` : String(jobs.length);
        let r = rows.get(key);
        if (!r) {
          r = { a: [], g: [] };
          rows.set(key, r);
          const group = r;
          const shape = t.shape;
          jobs.push((o) => {
            const last = shape === undefined ? o : undefined;
            let acc: string;
            if (mode !== 'chain' || group.a.length === 1) acc = b.op('Gemm', [concatRows(group.a), concatRows(group.g)], gemmAttrs(true, false, t.alpha), last);
            else {
              acc = b.op('Gemm', [group.a[0]!, group.g[0]!], gemmAttrs(true, false, t.alpha));
              for (let i = 1; i < group.a.length; i++) acc = b.op('Gemm', [group.a[i]!, group.g[i]!, acc], gemmAttrs(true, false, t.alpha), i === group.a.length - 1 ? last : undefined);
            }
            return shape === undefined ? acc : b.op('Reshape', [acc, b.int64s(shape)], {}, o);
          });
        }
        r.a.push(t.a);
        r.g.push(t.g);
      } else {
        const key = merge ? `${t.from.join('x')}>${t.to.join('x')}` : String(jobs.length);
        let r = reductions.get(key);
        if (!r) {
          r = { g: [], from: t.from, to: t.to };
          reductions.set(key, r);
          const group = r;
          jobs.push((o) => {
            if (group.g.length === 1) return sumToShape(group.g[0]!, group.from, group.to, o);
            // A bias of a layer used by every stage: sum the rows of the stages' gradients
            // (concatenated already for the weight gradient) in one reduction.
            if (group.from.length === 2 && group.to.length === 1 && group.to[0] === group.from[1]) {
              if (mode !== 'chain') return b.op('ReduceSum', [concatRows(group.g), b.int64s([0])], { keepdims: attr.int(0) }, o);
              const ones = b.scalar(1, [1, group.from[0]!]);
              let acc = b.op('Gemm', [ones, group.g[0]!]);
              for (let i = 1; i < group.g.length; i++) acc = b.op('Gemm', [ones, group.g[i]!, acc]);
              return b.op('Reshape', [acc, b.int64s(group.to)], {}, o);
            }
            return sumToShape(b.op('Sum', group.g), group.from, group.to, o);
          });
        }
        r.g.push(t.g);
      }
    }
    if (jobs.length === 1) return jobs[0]!(out);
    const parts = jobs.map((j) => j());
    return parts.length === 2 ? b.op('Add', parts, {}, out) : b.op('Sum', parts, {}, out);
  };
  const total = (name: string, out?: string): string | undefined => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return undefined;
    contributions.delete(name);
    return sumTerms(list, out);
  };
  const scalar = (v: number) => b.scalar(v);
  const meta = (name: string): ValueMeta => {
    const v = shapes.get(name);
    if (!v) throw new Error(`autodiff: no shape known for ${name}`);
    return v;
  };
  const sameShape = (p: readonly number[], q: readonly number[]) => p.length === q.length && p.every((d, i) => d === q[i]);
  const reshape = (x: string, from: readonly number[], to: readonly number[], out?: string) =>
    sameShape(from, to) ? (out === undefined ? x : b.op('Identity', [x], {}, out)) : b.op('Reshape', [x, b.int64s(to)], {}, out);
  const sumToShape = (g: string, from: readonly number[], to: readonly number[], out?: string): string => {
    if (sameShape(from, to)) return reshape(g, from, to, out);
    const lead = from.length - to.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    if (axes.length === 0) return reshape(g, from, to, out);
    // keepdims = 0 when the dims that stay are exactly `to` (a bias [N] of a [B, N] output).
    const dropped = from.filter((_, i) => !axes.includes(i));
    if (sameShape(dropped, to)) return b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(0) }, out);
    const summed = b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(1) });
    return reshape(summed, from.map((d, i) => (axes.includes(i) ? 1 : d)), to, out);
  };

  add(loss, lossMeta.shape.length === 0 ? scalar(1) : b.scalar(1, lossMeta.shape));
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (!n.outputs.some((o) => active.has(o) && reaches.has(o))) continue;
    const gOut = n.outputs.map((o) => total(o));
    if (gOut.every((g) => g === undefined)) continue;
    const needs = n.inputs.map((i) => i !== '' && active.has(i));
    if (!needs.some(Boolean)) continue;
    const rule = registry.get(n.op);
    if (!rule) {
      throw new Error(
        `autodiff: no gradient rule for op "${n.op}" (node ${n.name}, which lies between ${wrt.length === 1 ? wrt[0] : 'the parameters'} and the loss); ` +
          `ops with rules: ${gradientOps().join(', ')}`,
      );
    }
    const ctx: GradContext = { b, node: n, meta, shape: (x) => meta(x).shape, known: (x) => {
      const v = meta(x).value;
      if (!v) throw new Error(`autodiff: node ${n.name} (${n.op}): input ${x} must be a constant int64 tensor`);
      return v;
    }, sumToShape, scalar, reshape };
    const gIn = rule(ctx, gOut, needs);
    n.inputs.forEach((i, j) => {
      const g = gIn[j];
      if (needs[j] && g !== undefined) add(i, g);
    });
  }
  const grads: Record<string, string> = {};
  for (const w of wrt) {
    const out = names(w);
    const g = total(w, out);
    if (g !== undefined) grads[w] = g;
    else {
      // A parameter the loss does not depend on has a zero gradient.
      grads[w] = b.op('Expand', [scalar(0), b.int64s(meta(w).shape)], {}, out);
    }
  }
  return { grads, nodes: b.nodes.length - nodesBefore, shapes };
}
