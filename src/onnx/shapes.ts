/**
 * Static shape inference over the nodes of a GraphBuilder: the dtype and
 * shape of every value (and the values of small int64 tensors — Reshape
 * targets, Shape, Concat of them), which the gradient rules need because
 * every graph odeness differentiates has fixed dimensions.
 */
import { NCHWC_CONV, NCHWC_REORDER_INPUT, NCHWC_REORDER_OUTPUT } from '../models/fields/graph-ops.js';
import type { DType, GraphBuilder, GraphNode } from './graph.js';

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

export const UNARY_SAME = new Set([
  'Identity', 'Tanh', 'Relu', 'Softplus', 'Sigmoid', 'Exp', 'Log', 'Neg', 'Abs', 'Sign', 'Sqrt', 'Reciprocal',
  'Softmax', 'LogSoftmax', 'Erf', 'Floor', 'Ceil', 'Not',
]);
export const BROADCAST_SAME = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sum', 'Max', 'Min']);
export const BROADCAST_BOOL = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or']);

export function intAttr(n: GraphNode, key: string, fallback: number): number {
  const a = n.attrs[key];
  return a && a.kind === 'int' ? a.value : fallback;
}

export function intsAttr(n: GraphNode, key: string): readonly number[] | undefined {
  const a = n.attrs[key];
  return a && a.kind === 'ints' ? a.value : undefined;
}

export function broadcast(shapes: readonly (readonly number[])[], where: string): number[] {
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

export const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
export const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

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
        case NCHWC_REORDER_INPUT:
          set({ dtype: get(0).dtype, shape: get(0).shape });
          break;
        case NCHWC_REORDER_OUTPUT: {
          const x = get(0).shape;
          set({ dtype: get(0).dtype, shape: [x[0]!, intAttr(n, 'channels', x[1]!), ...x.slice(2)] });
          break;
        }
        case NCHWC_CONV:
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
            if (op !== 'ConvTranspose') return Math.floor((s + pads[i]! + pads[nd + i]! - k) / strides[i]!) + 1;
            const outPad = intsAttr(n, 'output_padding')?.[i] ?? 0;
            return strides[i]! * (s - 1) + outPad + k - pads[i]! - pads[nd + i]!;
          });
          const channels = op !== 'ConvTranspose' ? w[0]! : w[1]! * group;
          set({ dtype: get(0).dtype, shape: [x[0]!, channels, ...spatial] });
          break;
        }
        default:
          throw new Error(`${where}: no shape rule for op "${op}"; add one to src/onnx/shapes.ts`);
      }
    }
  }
  return m;
}

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
