/** Op records of the reductions (ReduceSum / Mean / Max, ArgMax / ArgMin) and the softmaxes. */
import { attr, intAttr, intsAttr } from '../ir/attrs.js';
import { normAxis, prod, reduceAxes, type GradContext, type OpDef, type ShapeContext } from './op.js';

function reduceShape(ctx: ShapeContext): void {
  const x = ctx.get(0);
  const n = ctx.node;
  // ReduceSum reads its axes from input 1 (opset 13); the others from the attribute until opset 18.
  const axesIn = n.op === 'ReduceSum' || ctx.opt(1) ? (ctx.opt(1) ? ctx.known(1) : undefined) : intsAttr(n, 'axes');
  const axes = reduceAxes(n, x.shape.length, axesIn);
  const keep = intAttr(n, 'keepdims', 1) === 1;
  const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  ctx.set({ dtype: x.dtype, shape });
}

function argShape(ctx: ShapeContext): void {
  const x = ctx.get(0);
  const axis = normAxis(intAttr(ctx.node, 'axis', 0), x.shape.length);
  const keep = intAttr(ctx.node, 'keepdims', 1) === 1;
  ctx.set({
    dtype: 'int64',
    shape: keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis),
  });
}

function reduceGrad(ctx: GradContext, g: string, axes: number[], mean: boolean): string {
  const { b, node: n } = ctx;
  const sx = ctx.shape(n.inputs[0]!);
  const kept = sx.map((d, i) => (axes.includes(i) ? 1 : d));
  let gk = ctx.reshape(g, ctx.shape(n.outputs[0]!), kept);
  if (mean) gk = b.op('Mul', [gk, ctx.scalar(1 / prod(axes.map((a) => sx[a]!)))]);
  return kept.every((d, i) => d === sx[i]) ? gk : b.op('Expand', [gk, b.int64s(sx)]);
}

/**
 * The axes a reduction node reduces: input 1 when given (ReduceSum, and every reduction from opset 18), else the
 * attribute.
 */
function nodeAxes(ctx: GradContext): number[] {
  const n = ctx.node;
  const rank = ctx.shape(n.inputs[0]!).length;
  return reduceAxes(
    n,
    rank,
    n.inputs[1] ? ctx.known(n.inputs[1]) : n.op === 'ReduceSum' ? undefined : intsAttr(n, 'axes'),
  );
}

const unaryShape = (ctx: ShapeContext) => ctx.set({ dtype: ctx.get(0).dtype, shape: ctx.get(0).shape });

export const REDUCE_OPS: readonly OpDef[] = [
  {
    name: 'ReduceSum',
    inferShape: reduceShape,
    grad: (ctx, [g]) => [reduceGrad(ctx, g!, nodeAxes(ctx), false), undefined],
  },
  {
    name: 'ReduceMean',
    inferShape: reduceShape,
    grad: (ctx, [g]) => [reduceGrad(ctx, g!, nodeAxes(ctx), true), undefined],
  },
  { name: 'ReduceMax', inferShape: reduceShape },
  { name: 'ArgMax', inferShape: argShape, differentiable: false },
  { name: 'ArgMin', inferShape: argShape, differentiable: false },
  {
    name: 'LogSoftmax',
    inferShape: unaryShape,
    grad: (ctx, [g]) => {
      const { b, node: n } = ctx;
      const rank = ctx.shape(n.inputs[0]!).length;
      const axis = normAxis(intAttr(n, 'axis', -1), rank);
      const s = b.op('ReduceSum', [g!, b.int64s([axis])], { keepdims: attr.int(1) });
      return [b.op('Sub', [g!, b.op('Mul', [b.op('Exp', [n.outputs[0]!]), s])])];
    },
  },
  {
    name: 'Softmax',
    inferShape: unaryShape,
    grad: (ctx, [g]) => {
      const { b, node: n } = ctx;
      const rank = ctx.shape(n.inputs[0]!).length;
      const axis = normAxis(intAttr(n, 'axis', -1), rank);
      const y = n.outputs[0]!;
      const s = b.op('ReduceSum', [b.op('Mul', [g!, y]), b.int64s([axis])], { keepdims: attr.int(1) });
      return [b.op('Mul', [y, b.op('Sub', [g!, s])])];
    },
  },
];
