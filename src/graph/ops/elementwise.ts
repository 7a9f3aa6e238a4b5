/** Op records of the elementwise ops: activations, arithmetic with broadcasting, comparisons, Where, Cast. */
import { attr, floatAttr, intAttr } from '../ir/attrs.js';
import {
  broadcast,
  CAST_CODE,
  CAST_TO,
  FLOAT_TYPES,
  foldBroadcast,
  type GradContext,
  type GradientRule,
  type OpDef,
  type ShapeContext,
} from './op.js';

const unaryShape = (ctx: ShapeContext) => {
  const x = ctx.get(0);
  ctx.set({ dtype: x.dtype, shape: x.shape, value: ctx.node.op === 'Identity' ? x.value : undefined });
};
/** Integer arithmetic folded on known values (exporters' shape arithmetic); Div truncates as ONNX's int64 Div. */
const INT_FOLD: Readonly<Partial<Record<string, (...xs: number[]) => number>>> = {
  Add: (a, b) => a! + b!,
  Sub: (a, b) => a! - b!,
  Mul: (a, b) => a! * b!,
  Div: (a, b) => Math.trunc(a! / b!),
  Equal: (a, b) => (a === b ? 1 : 0),
  Where: (c, a, b) => (c ? a! : b!),
};

function foldInts(ctx: ShapeContext, shape: readonly number[]): number[] | undefined {
  const ins = ctx.node.inputs.map((_, i) => ctx.get(i));
  const f = INT_FOLD[ctx.node.op];
  const data = ctx.node.op === 'Where' ? ins.slice(1) : ins;
  return f && data.every((v) => v.dtype === 'int64' || v.dtype === 'bool') ? foldBroadcast(ins, shape, f) : undefined;
}

const broadcastShape = (ctx: ShapeContext) => {
  const ins = ctx.node.inputs.map((_, i) => ctx.get(i));
  const shape = broadcast(
    ins.map((v) => v.shape),
    ctx.where,
  );
  ctx.set({ dtype: ins[0]!.dtype, shape, value: foldInts(ctx, shape) });
};
const boolShape = (ctx: ShapeContext) => {
  const shape = broadcast(
    ctx.node.inputs.map((_, i) => ctx.get(i).shape),
    ctx.where,
  );
  ctx.set({ dtype: 'bool', shape, value: foldInts(ctx, shape) });
};

const unary = (name: string, grad?: GradientRule, differentiable?: false): OpDef => ({
  name,
  inferShape: unaryShape,
  grad,
  differentiable,
});
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

/** 1 where x > 0, else 0, in the graph's float type. */
function positive(ctx: GradContext, x: string): string {
  const { b } = ctx;
  return b.op('Cast', [b.op('Greater', [x, ctx.scalar(0)])], { to: attr.int(CAST_CODE[b.float]!) });
}

/** d(x^p)/dx = p·x^(p−1) for an exponent p that is not differentiated (a constant of the file). */
const powGrad: GradientRule = (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  if (needs[1])
    throw new Error(
      `autodiff: node ${n.name} (Pow): the exponent ${n.inputs[1]} depends on the parameters; only constant ` +
        `exponents have a gradient rule`,
    );
  const [x, p] = [n.inputs[0]!, n.inputs[1]!];
  const local = b.op('Mul', [p, b.op('Pow', [x, b.op('Sub', [p, ctx.scalar(1)])])]);
  return [ctx.sumToShape(b.op('Mul', [g!, local]), ctx.shape(n.outputs[0]!), ctx.shape(x)), undefined];
};

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
  unary('Sin', (ctx, [g]) => [ctx.b.op('Mul', [g!, ctx.b.op('Cos', [ctx.node.inputs[0]!])])]),
  unary('Cos', (ctx, [g]) => [ctx.b.op('Neg', [ctx.b.op('Mul', [g!, ctx.b.op('Sin', [ctx.node.inputs[0]!])])])]),
  // slope α + (1 − α)·[x > 0]
  unary('LeakyRelu', (ctx, [g]) => {
    const alpha = floatAttr(ctx.node, 'alpha', 0.01);
    const slope = ctx.b.op('Add', [
      ctx.scalar(alpha),
      ctx.b.op('Mul', [positive(ctx, ctx.node.inputs[0]!), ctx.scalar(1 - alpha)]),
    ]);
    return [ctx.b.op('Mul', [g!, slope])];
  }),
  // elu' = 1 for x > 0, else y + α: [x > 0] + (1 − [x > 0])·(y + α)
  unary('Elu', (ctx, [g]) => {
    const { b, node: n } = ctx;
    const pos = positive(ctx, n.inputs[0]!);
    const neg = b.op('Mul', [
      b.op('Sub', [ctx.scalar(1), pos]),
      b.op('Add', [n.outputs[0]!, ctx.scalar(floatAttr(n, 'alpha', 1))]),
    ]);
    return [b.op('Mul', [g!, b.op('Add', [pos, neg])])];
  }),
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
    return [
      needs[0] ? ctx.sumToShape(g!, sy, sa) : undefined,
      needs[1] ? ctx.b.op('Neg', [ctx.sumToShape(g!, sy, sb)]) : undefined,
    ];
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
  binary('Pow', powGrad),
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
    inferShape: (ctx) => {
      const shape = broadcast([ctx.get(0).shape, ctx.get(1).shape, ctx.get(2).shape], ctx.where);
      ctx.set({ dtype: ctx.get(1).dtype, shape, value: foldInts(ctx, shape) });
    },
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
