/** Op records of the elementwise ops: activations, arithmetic with broadcasting, comparisons, Where, Cast. */
import { attr, intAttr } from '../ir/attrs.js';
import { broadcast, CAST_CODE, CAST_TO, FLOAT_TYPES, type GradContext, type GradientRule, type OpDef, type ShapeContext } from './op.js';

const unaryShape = (ctx: ShapeContext) => {
  const x = ctx.get(0);
  ctx.set({ dtype: x.dtype, shape: x.shape, value: ctx.node.op === 'Identity' ? x.value : undefined });
};
const broadcastShape = (ctx: ShapeContext) => {
  const ins = ctx.node.inputs.map((_, i) => ctx.get(i));
  ctx.set({ dtype: ins[0]!.dtype, shape: broadcast(ins.map((v) => v.shape), ctx.where) });
};
const boolShape = (ctx: ShapeContext) => ctx.set({ dtype: 'bool', shape: broadcast(ctx.node.inputs.map((_, i) => ctx.get(i).shape), ctx.where) });

const unary = (name: string, grad?: GradientRule, differentiable?: false): OpDef => ({ name, inferShape: unaryShape, grad, differentiable });
const binary = (name: string, grad?: GradientRule): OpDef => ({ name, inferShape: broadcastShape, grad });
const comparison = (name: string): OpDef => ({ name, inferShape: boolShape, differentiable: false });

function binaryShapes(ctx: GradContext): [readonly number[], readonly number[], readonly number[]] {
  const n = ctx.node;
  return [ctx.shape(n.outputs[0]!), ctx.shape(n.inputs[0]!), ctx.shape(n.inputs[1]!)];
}

/**
 * ReLU's gradient g · step(x) with step(0) = 0, as tfjs and PyTorch, from y = relu(x). Written as a multiply
 * by the cast mask: about 2× faster on the CPU provider than Where(y > 0, g, 0) or g · Sign(y).
 */
export function reluGrad(ctx: GradContext, g: string, y: string): string {
  const { b } = ctx;
  return b.op('Mul', [g, b.op('Cast', [b.op('Greater', [y, ctx.scalar(0)])], { to: attr.int(CAST_CODE[b.float]!) })]);
}

export const ELEMENTWISE_OPS: readonly OpDef[] = [
  unary('Identity', (_ctx, [g]) => [g]),
  unary('Neg', (ctx, [g]) => [ctx.b.op('Neg', [g!])]),
  unary('Tanh', (ctx, [g]) => {
    const { b, node: n } = ctx;
    const y = n.outputs[0]!;
    // tanh' = 1 − y²
    return [b.op('Mul', [g!, b.op('Sub', [ctx.scalar(1), b.op('Mul', [y, y])])])];
  }),
  unary('Relu', (ctx, [g]) => [reluGrad(ctx, g!, ctx.node.outputs[0]!)]),
  unary('Softplus', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.b.op('Sigmoid', [ctx.node.inputs[0]!])])]),
  unary('Sigmoid', (ctx, [g]) => {
    const { b, node: n } = ctx;
    const y = n.outputs[0]!;
    return [b.op('Mul', [g!, b.op('Mul', [y, b.op('Sub', [ctx.scalar(1), y])])])];
  }),
  unary('Exp', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.node.outputs[0]!])]),
  unary('Log', (ctx, [g]) => [ctx.b.op('Div', [g!, ctx.node.inputs[0]!])]),
  unary('Abs', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.b.op('Sign', [ctx.node.inputs[0]!])])]),
  unary('Sign', () => [undefined]),
  unary('Sqrt', (ctx, [g]) => [ctx.b.op('Div', [g!, ctx.b.op('Mul', [ctx.node.outputs[0]!, ctx.scalar(2)])])]),
  unary('Reciprocal'),
  unary('Erf'),
  unary('Floor', undefined, false),
  unary('Ceil', undefined, false),
  unary('Not', undefined, false),
  binary('Add', (ctx, [g], needs) => {
    const [sy, sa, sb] = binaryShapes(ctx);
    const part = (s: readonly number[]) => ({ kind: 'reduce', g: g!, from: sy, to: s }) as const;
    return [needs[0] ? part(sa) : undefined, needs[1] ? part(sb) : undefined];
  }),
  binary('Sub', (ctx, [g], needs) => {
    const [sy, sa, sb] = binaryShapes(ctx);
    return [needs[0] ? ctx.sumToShape(g!, sy, sa) : undefined, needs[1] ? ctx.b.op('Neg', [ctx.sumToShape(g!, sy, sb)]) : undefined];
  }),
  binary('Mul', (ctx, [g], needs) => {
    const { b, node: n } = ctx;
    const [sy, sa, sb] = binaryShapes(ctx);
    return [
      needs[0] ? ctx.sumToShape(b.op('Mul', [g!, n.inputs[1]!]), sy, sa) : undefined,
      needs[1] ? ctx.sumToShape(b.op('Mul', [g!, n.inputs[0]!]), sy, sb) : undefined,
    ];
  }),
  binary('Div', (ctx, [g], needs) => {
    const { b, node: n } = ctx;
    const [sy, sa, sb] = binaryShapes(ctx);
    const y = n.outputs[0]!;
    return [
      needs[0] ? ctx.sumToShape(b.op('Div', [g!, n.inputs[1]!]), sy, sa) : undefined,
      // d(a/b)/db = −(a/b)/b
      needs[1] ? ctx.sumToShape(b.op('Neg', [b.op('Div', [b.op('Mul', [g!, y]), n.inputs[1]!])]), sy, sb) : undefined,
    ];
  }),
  binary('Pow'),
  binary('Sum', (ctx, [g], needs) => {
    const n = ctx.node;
    const sy = ctx.shape(n.outputs[0]!);
    return n.inputs.map((x, i) => (needs[i] ? ctx.sumToShape(g!, sy, ctx.shape(x)) : undefined));
  }),
  binary('Max'),
  binary('Min'),
  ...['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or'].map(comparison),
  {
    name: 'Where',
    inferShape: (ctx) => ctx.set({ dtype: ctx.get(1).dtype, shape: broadcast([ctx.get(0).shape, ctx.get(1).shape, ctx.get(2).shape], ctx.where) }),
    grad: (ctx, [g], needs) => {
      const { b, node: n } = ctx;
      const sy = ctx.shape(n.outputs[0]!);
      const zero = ctx.scalar(0);
      const c = n.inputs[0]!;
      return [
        undefined,
        needs[1] ? ctx.sumToShape(b.op('Where', [c, g!, zero]), sy, ctx.shape(n.inputs[1]!)) : undefined,
        needs[2] ? ctx.sumToShape(b.op('Where', [c, zero, g!]), sy, ctx.shape(n.inputs[2]!)) : undefined,
      ];
    },
  },
  {
    name: 'Cast',
    inferShape: (ctx) => {
      const to = CAST_TO[intAttr(ctx.node, 'to', 1)];
      if (!to) throw new Error(`${ctx.where}: unsupported cast target ${intAttr(ctx.node, 'to', 1)}`);
      ctx.set({ dtype: to, shape: ctx.get(0).shape, value: to === 'int64' ? ctx.get(0).value : undefined });
    },
    grad: (ctx, [g]) => {
      const from = ctx.meta(ctx.node.inputs[0]!).dtype;
      if (!FLOAT_TYPES.has(from)) return [undefined];
      return [ctx.b.op('Cast', [g!], { to: attr.int(CAST_CODE[from]!) })];
    },
  },
];
