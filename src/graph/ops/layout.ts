/**
 * Op records of the ops that move values without arithmetic: Reshape and its kin, Concat / Split,
 * Slice / Pad, Transpose, Expand, and Shape (whose int64 result the shape rules fold, so Reshape and
 * Expand targets built from it are known).
 */
import { attr, intAttr, intsAttr, stringAttr } from '../ir/attrs.js';
import { broadcast, CAST_TO, normAxis, prod, slicePlan, type GradContext, type OpDef } from './op.js';

function reshapeBack(ctx: GradContext, g: string): string {
  const n = ctx.node;
  return ctx.reshape(g, ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!));
}

function zerosOf(ctx: GradContext, shape: readonly number[]): string {
  return ctx.b.op('Expand', [ctx.scalar(0), ctx.b.int64s(shape)]);
}

/**
 * d Gather(x, idx; axis) / dx with indices known at build time (exporters' index ops on parameters or on the
 * state): g [pre, J, post] (J = indices) scattered back by a one-hot [N, J] product, MatMul(onehot, g) →
 * [pre, N, post]; repeated indices add up.
 */
function gatherGrad(ctx: GradContext, g: string): string {
  const { b, node: n } = ctx;
  const x = ctx.shape(n.inputs[0]!);
  const axis = normAxis(intAttr(n, 'axis', 0), x.length);
  const size = x[axis]!;
  const idx = ctx.known(n.inputs[1]!).map((i) => normAxis(i, size));
  const onehot = new Array<number>(size * idx.length).fill(0);
  idx.forEach((i, j) => (onehot[i * idx.length + j] = 1));
  const m = b.initializer('gather_onehot', b.float, [size, idx.length], b.floatData(onehot));
  const rows = b.op('Reshape', [g, b.int64s([-1, idx.length, prod(x.slice(axis + 1))])]);
  // A leading batch dimension stays −1 (graphs with a symbolic batch).
  return b.op('Reshape', [b.op('MatMul', [m, rows]), b.int64s(axis > 0 ? [-1, ...x.slice(1)] : x)]);
}

export const LAYOUT_OPS: readonly OpDef[] = [
  {
    // Shape arithmetic of exporters (a dimension picked out of Shape); folded when data and indices are known.
    name: 'Gather',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const idx = ctx.get(1);
      const axis = normAxis(intAttr(ctx.node, 'axis', 0), x.shape.length);
      const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
      const value =
        x.value && idx.value && x.shape.length === 1
          ? idx.value.map((i) => x.value![normAxis(i, x.shape[0]!)]!)
          : undefined;
      ctx.set({ dtype: x.dtype, shape, value });
    },
    grad: (ctx, [g]) => [gatherGrad(ctx, g!), undefined],
  },
  {
    // A tensor of the shape given by input 0, every element `value` (the reader turns the tensor attribute into
    // floats + to).
    name: 'ConstantOfShape',
    differentiable: false,
    inferShape: (ctx) => {
      const shape = ctx.known(0);
      const dtype = CAST_TO[intAttr(ctx.node, 'to', 1)] ?? 'float32';
      const v =
        intsAttr(ctx.node, 'value')?.[0] ??
        (ctx.node.attrs.value?.kind === 'floats' ? ctx.node.attrs.value.value[0]! : 0);
      ctx.set({
        dtype,
        shape,
        value: dtype === 'int64' && prod(shape) <= 64 ? new Array<number>(prod(shape)).fill(v) : undefined,
      });
    },
  },
  {
    name: 'Concat',
    inferShape: (ctx) => {
      const ins = ctx.node.inputs.map((_, i) => ctx.get(i));
      const rank = ins[0]!.shape.length;
      const axis = normAxis(intAttr(ctx.node, 'axis', 0), rank);
      const shape = [...ins[0]!.shape];
      shape[axis] = ins.reduce((s, v) => s + v.shape[axis]!, 0);
      const value = ins.every((v) => v.value) ? ins.flatMap((v) => [...v.value!]) : undefined;
      ctx.set({ dtype: ins[0]!.dtype, shape, value });
    },
    grad: (ctx, [g], needs) => {
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
    },
  },
  {
    name: 'Reshape',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const target = [...ctx.known(1)];
      const total = prod(x.shape);
      target.forEach((d, i) => {
        if (d === 0) target[i] = x.shape[i]!;
      });
      const neg = target.indexOf(-1);
      if (neg >= 0) target[neg] = total / prod(target.filter((_, i) => i !== neg));
      if (prod(target) !== total)
        throw new Error(`${ctx.where}: cannot reshape [${x.shape.join(', ')}] to [${ctx.known(1).join(', ')}]`);
      ctx.set({ dtype: x.dtype, shape: target, value: x.value });
    },
    grad: (ctx, [g]) => [reshapeBack(ctx, g!), undefined],
  },
  {
    name: 'Flatten',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const axis = normAxis(intAttr(ctx.node, 'axis', 1), x.shape.length);
      ctx.set({ dtype: x.dtype, shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))] });
    },
    grad: (ctx, [g]) => [reshapeBack(ctx, g!)],
  },
  {
    name: 'Unsqueeze',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const rank = x.shape.length + ctx.known(1).length;
      const axes = ctx.known(1).map((a) => normAxis(a, rank));
      const shape: number[] = [];
      let src = 0;
      for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x.shape[src++]!);
      ctx.set({ dtype: x.dtype, shape, value: x.value });
    },
    grad: (ctx, [g]) => [reshapeBack(ctx, g!), undefined],
  },
  {
    name: 'Squeeze',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const axes = ctx.opt(1)
        ? ctx.known(1).map((a) => normAxis(a, x.shape.length))
        : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      ctx.set({ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)), value: x.value });
    },
    grad: (ctx, [g]) => [reshapeBack(ctx, g!), undefined],
  },
  {
    name: 'Shape',
    differentiable: false,
    inferShape: (ctx) => {
      const s = ctx.get(0).shape;
      const r = s.length;
      const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
      const value = s.slice(clamp(intAttr(ctx.node, 'start', 0)), clamp(intAttr(ctx.node, 'end', r)));
      ctx.set({ dtype: 'int64', shape: [value.length], value });
    },
  },
  {
    name: 'Expand',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      ctx.set({ dtype: x.dtype, shape: broadcast([x.shape, ctx.known(1)], ctx.where) });
    },
    grad: (ctx, [g]) => {
      const n = ctx.node;
      return [ctx.sumToShape(g!, ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!)), undefined];
    },
  },
  {
    name: 'Pad',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const pads = ctx.known(1);
      const r = x.shape.length;
      ctx.set({ dtype: x.dtype, shape: x.shape.map((d, i) => d + pads[i]! + pads[r + i]!) });
    },
    grad: (ctx, [g]) => {
      const { b, node: n } = ctx;
      const mode = stringAttr(n, 'mode');
      if (mode !== undefined && mode !== 'constant')
        throw new Error(`autodiff: Pad mode "${mode}" has no gradient rule (only constant)`);
      const pads = ctx.known(n.inputs[1]!);
      if (pads.some((p) => p < 0)) throw new Error(`autodiff: Pad with negative pads has no gradient rule`);
      const shape = ctx.shape(n.inputs[0]!);
      const r = shape.length;
      const axes = shape.map((_, i) => i).filter((i) => pads[i] !== 0 || pads[r + i] !== 0);
      if (axes.length === 0) return [g, undefined, undefined];
      const starts = axes.map((a) => pads[a]!);
      const ends = axes.map((a) => pads[a]! + shape[a]!);
      return [b.op('Slice', [g!, b.int64s(starts), b.int64s(ends), b.int64s(axes)]), undefined, undefined];
    },
  },
  {
    name: 'Slice',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const opt = (i: number) => (ctx.opt(i) ? ctx.known(i) : undefined);
      const r = slicePlan(x.shape, ctx.known(1), ctx.known(2), opt(3), opt(4), ctx.where);
      ctx.set({ dtype: x.dtype, shape: r.shape });
    },
    grad: (ctx, [g]) => {
      const { b, node: n } = ctx;
      const shape = ctx.shape(n.inputs[0]!);
      const opt = (i: number) =>
        n.inputs[i] === undefined || n.inputs[i] === '' ? undefined : ctx.known(n.inputs[i]!);
      const plan = slicePlan(
        shape,
        ctx.known(n.inputs[1]!),
        ctx.known(n.inputs[2]!),
        opt(3),
        opt(4),
        `autodiff: node ${n.name}`,
      );
      const pads = [...plan.begin, ...plan.end.map((e, i) => shape[i]! - e)];
      return [
        b.op('Pad', [g!, b.int64s(pads)], { mode: attr.string('constant') }),
        undefined,
        undefined,
        undefined,
        undefined,
      ];
    },
  },
  {
    name: 'Transpose',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const perm = intsAttr(ctx.node, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i);
      ctx.set({ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) });
    },
    grad: (ctx, [g]) => {
      const n = ctx.node;
      const rank = ctx.shape(n.inputs[0]!).length;
      const perm = intsAttr(n, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const inv = new Array<number>(rank);
      perm.forEach((p, i) => (inv[p] = i));
      return [ctx.b.op('Transpose', [g!], { perm: attr.ints(inv) })];
    },
  },
  {
    name: 'Split',
    inferShape: (ctx) => {
      const x = ctx.get(0);
      const n = ctx.node;
      const axis = normAxis(intAttr(n, 'axis', 0), x.shape.length);
      const sizes = ctx.opt(1) ? ctx.known(1) : n.outputs.map(() => x.shape[axis]! / n.outputs.length);
      sizes.forEach((s, i) => {
        const shape = [...x.shape];
        shape[axis] = s;
        ctx.set({ dtype: x.dtype, shape }, i);
      });
    },
    grad: (ctx, gs, needs) => {
      const { b, node: n } = ctx;
      if (!needs[0]) return [undefined];
      const rank = ctx.shape(n.inputs[0]!).length;
      const axis = normAxis(intAttr(n, 'axis', 0), rank);
      const parts = n.outputs.map((o, i) => gs[i] ?? zerosOf(ctx, ctx.shape(o)));
      return [b.op('Concat', parts, { axis: attr.int(axis) })];
    },
  },
];
