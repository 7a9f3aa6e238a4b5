/**
 * Reverse-mode differentiation over ONNX graphs (src/graph/autodiff/gradients.ts): the
 * float64 training graph of every field type against central finite
 * differences, the rule registry, and the errors for unsupported ops.
 */
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { appendGradients, gradientOps, inferShapes, OPS, opRegistry } from '../src/graph/autodiff/gradients.js';
import { attr, GraphBuilder } from '../src/graph/ir/graph.js';
import { trainGraph } from '../src/onnx/lower/train-graph.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { createSession } from '../src/onnx/runtime/session.js';
import { configFor, normalStream, ortFeeds, randomBatch, randomModel } from './helpers/ort-compare.js';

const FD_CASES: [field: string, shape: number[], augment: number, classes: number, solver: string][] = [
  ['mlp:width=6,act=tanh,time', [2], 1, 3, 'rk4:0.3'],
  ['mlp:width=6,act=softplus', [2], 0, 2, 'midpoint:0.5'],
  ['mlp:width=6,act=relu,depth=1', [3], 0, 2, 'heun:0.5'],
  ['conv1d:channels=3', [3], 1, 2, 'rk4_38:0.5'],
  ['conv2d:channels=3', [1, 3, 3], 1, 2, 'euler:0.4'],
];

for (const [field, shape, augment, classes, solver] of FD_CASES) {
  test(`float64 graph passes a finite-difference check: ${field}, ${solver}`, async (t) => {
    const config = configFor(field, shape, augment, classes);
    const model = randomModel(config, 11);
    const { x, y } = randomBatch(config, 8, 5);
    const g = trainGraph(config, parseSolverSpec(solver), { batch: y.length, float: 'float64' });
    const session = await createSession(g.builder.toBytes());
    try {
      const base: Record<string, Float64Array> = {};
      for (const p of g.params) base[p] = Float64Array.from(model.params[p]!.data);
      const run = async (params: Record<string, Float64Array>) =>
        session.run(ortFeeds(model, g.params, x, y, 'float64', params));
      const r0 = await run(base);
      const lossAt = async (params: Record<string, Float64Array>) => Number((await run(params)).loss!.data[0]);
      const eps = 1e-6;
      // Directional derivative along a random direction over ALL parameters at once.
      const normal = normalStream(3);
      const dir: Record<string, Float64Array> = {};
      let predicted = 0;
      for (const p of g.params) {
        dir[p] = Float64Array.from(base[p]!, () => normal());
        const grad = r0[g.outputs.grads[p]!]!.data as Float64Array;
        t.true(grad instanceof Float64Array, `${p}: float64 gradient`);
        for (let i = 0; i < grad.length; i++) predicted += grad[i]! * dir[p]![i]!;
      }
      const shifted = (s: number) =>
        Object.fromEntries(g.params.map((p) => [p, base[p]!.map((v, i) => v + s * eps * dir[p]![i]!)])) as Record<
          string,
          Float64Array
        >;
      const fd = ((await lossAt(shifted(1))) - (await lossAt(shifted(-1)))) / (2 * eps);
      t.true(
        Math.abs(fd - predicted) <= 1e-6 * Math.max(1, Math.abs(fd)),
        `directional derivative: autodiff ${predicted}, finite differences ${fd}`,
      );
      // And single coordinates of every parameter (first, last, and one in the middle).
      let worst = 0;
      for (const p of g.params) {
        const grad = r0[g.outputs.grads[p]!]!.data as Float64Array;
        for (const i of new Set([0, Math.floor(grad.length / 2), grad.length - 1])) {
          const plus = { ...base, [p]: base[p]!.slice() };
          const minus = { ...base, [p]: base[p]!.slice() };
          plus[p]![i]! += eps;
          minus[p]![i]! -= eps;
          const fdi = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * eps);
          const err = Math.abs(fdi - grad[i]!);
          worst = Math.max(worst, err);
          t.true(err <= 1e-7 + 1e-6 * Math.abs(fdi), `${p}[${i}]: autodiff ${grad[i]}, finite differences ${fdi}`);
        }
      }
      t.log(
        `${g.builder.nodes.length} nodes; worst coordinate error ${worst.toExponential(1)}; directional ${Math.abs(fd - predicted).toExponential(1)}`,
      );
    } finally {
      await session.release();
    }
  });
}

test('the registry refuses a second rule for an op type', (t) => {
  t.true(gradientOps().includes('Gemm'));
  t.throws(() => opRegistry([...OPS.values(), OPS.get('Gemm')!]), { message: /already registered/ });
});

test('an op without a gradient rule on the path to the loss is named in the error', (t) => {
  const b = new GraphBuilder({ name: 'erf' });
  const w = b.input('w', 'float32', [2, 3]);
  const loss = b.op('ReduceSum', [b.op('Erf', [w])], { keepdims: attr.int(0) });
  const err = t.throws(() => appendGradients(b, loss, [w]));
  t.regex(err!.message, /no gradient rule for op "Erf"/);
});

test('ops off the path to the loss need no rule; an unused parameter gets a zero gradient', async (t) => {
  const b = new GraphBuilder({ name: 'side' });
  const w = b.input('w', 'float32', [2]);
  const u = b.input('u', 'float32', [2]);
  b.op('Erf', [w]); // a dead branch
  const loss = b.op('ReduceSum', [b.op('Mul', [w, w])], { keepdims: attr.int(0) }, 'loss');
  const { grads } = appendGradients(b, loss, [w, u]);
  b.output('loss', 'float32', []);
  b.output(grads.w!, 'float32', [2]);
  b.output(grads.u!, 'float32', [2]);
  const s = await createSession(b.toBytes());
  const r = await s.run({
    w: new ort.Tensor('float32', Float32Array.of(1.5, -2), [2]),
    u: new ort.Tensor('float32', Float32Array.of(1, 1), [2]),
  });
  t.deepEqual(Array.from(r[grads.w!]!.data as Float32Array), [3, -4]);
  t.deepEqual(Array.from(r[grads.u!]!.data as Float32Array), [0, 0]);
  await s.release();
});

test('broadcasting gradients sum back to the operand shape (Add/Sub/Mul/Div, Expand, Concat, Transpose, Softmax)', async (t) => {
  const b = new GraphBuilder({ name: 'bcast', float: 'float64' });
  const a = b.input('a', 'float64', [3, 4]);
  const c = b.input('c', 'float64', [4]);
  const d = b.input('d', 'float64', [3, 1]);
  let v = b.op('Div', [b.op('Mul', [b.op('Sub', [b.op('Add', [a, c]), d]), c]), b.op('Add', [d, b.scalar(3)])]);
  v = b.op('Concat', [v, b.op('Expand', [d, b.int64s([3, 2])])], { axis: attr.int(1) });
  v = b.op('Softmax', [b.op('Transpose', [v], { perm: attr.ints([1, 0]) })], { axis: attr.int(0) });
  const loss = b.op('ReduceSum', [b.op('Mul', [v, v])], { keepdims: attr.int(0) }, 'loss');
  const { grads } = appendGradients(b, loss, [a, c, d]);
  b.output('loss', 'float64', []);
  for (const [k, s] of [
    ['a', [3, 4]],
    ['c', [4]],
    ['d', [3, 1]],
  ] as const)
    b.output(grads[k]!, 'float64', s);
  const shapes = inferShapes(b);
  t.deepEqual(shapes.get(grads.c!)?.shape, [4]);
  t.deepEqual(shapes.get(grads.d!)?.shape, [3, 1]);
  const s = await createSession(b.toBytes());
  const normal = normalStream(9);
  const vals = {
    a: Float64Array.from({ length: 12 }, normal),
    c: Float64Array.from({ length: 4 }, normal),
    d: Float64Array.from({ length: 3 }, () => 0.5 + Math.abs(normal())),
  };
  const dims = { a: [3, 4], c: [4], d: [3, 1] };
  const feeds = (o: typeof vals) =>
    Object.fromEntries(Object.entries(o).map(([k, arr]) => [k, new ort.Tensor('float64', arr, dims[k as 'a'])]));
  const r = await s.run(feeds(vals));
  for (const k of ['a', 'c', 'd'] as const) {
    const g = r[grads[k]!]!.data as Float64Array;
    for (let i = 0; i < vals[k].length; i++) {
      const plus = { ...vals, [k]: vals[k].slice() };
      const minus = { ...vals, [k]: vals[k].slice() };
      plus[k][i]! += 1e-6;
      minus[k][i]! -= 1e-6;
      const fd =
        (Number((await s.run(feeds(plus))).loss!.data[0]) - Number((await s.run(feeds(minus))).loss!.data[0])) / 2e-6;
      t.true(Math.abs(fd - g[i]!) < 1e-7, `${k}[${i}]: ${g[i]} vs ${fd}`);
    }
  }
  await s.release();
});

test('chained, concatenated and per-stage gradient forms give the same gradients', async (t) => {
  const config = configFor('mlp:width=8,time', [2], 0, 2);
  const model = randomModel(config, 2);
  const { x, y } = randomBatch(config, 8, 2);
  const out: Record<string, Float64Array>[] = [];
  const nodes: number[] = [];
  for (const merge of ['chain', 'concat', false] as const) {
    const g = trainGraph(config, parseSolverSpec('rk4:0.25'), { batch: 8, float: 'float64', merge });
    nodes.push(g.builder.nodes.length);
    const s = await createSession(g.builder.toBytes());
    const r = await s.run(ortFeeds(model, g.params, x, y, 'float64'));
    out.push(Object.fromEntries(g.params.map((p) => [p, r[g.outputs.grads[p]!]!.data as Float64Array])));
    await s.release();
  }
  for (const k of [0, 1]) {
    for (const p of Object.keys(out[2]!)) {
      const [m, u] = [out[k]![p]!, out[2]![p]!];
      for (let i = 0; i < m.length; i++)
        t.true(Math.abs(m[i]! - u[i]!) <= 1e-12 * Math.max(1, Math.abs(u[i]!)), `${p}[${i}]`);
    }
  }
  t.true(nodes[1]! < nodes[2]!, `concat-merged ${nodes[1]} nodes, per-stage ${nodes[2]}`);
});

test('ConvTranspose (and Conv) gradients of a quadratic loss equal exact central differences (float32)', async (t) => {
  for (const op of ['ConvTranspose', 'Conv'] as const) {
    for (const [spatial, kernel, pads] of [
      [
        [5, 4],
        [3, 3],
        [1, 1, 1, 1],
      ],
      [[6], [3], [0, 2]],
      [[4], [1], [0, 0]],
    ] as const) {
      const nd = spatial.length;
      const [N, Cin, Cout] = [2, 3, 4];
      const b = new GraphBuilder({ name: op });
      const xs = [N, Cin, ...spatial];
      const ws = op === 'Conv' ? [Cout, Cin, ...kernel] : [Cin, Cout, ...kernel];
      const x = b.input('x', 'float32', xs);
      const w = b.input('w', 'float32', ws);
      const bias = b.input('bias', 'float32', [Cout]);
      const y = b.op(op, [x, w, bias], { kernel_shape: attr.ints(kernel), pads: attr.ints(pads) });
      const loss = b.op('ReduceSum', [b.op('Mul', [y, y])], { keepdims: attr.int(0) }, 'loss');
      const { grads } = appendGradients(b, loss, [x, w, bias]);
      b.output('loss', 'float32', []);
      const shapes: Record<string, readonly number[]> = { x: xs, w: ws, bias: [Cout] };
      for (const k of ['x', 'w', 'bias']) b.output(grads[k]!, 'float32', shapes[k]!);
      const s = await createSession(b.toBytes());
      const normal = normalStream(spatial.length * 7 + kernel[0]!);
      const vals: Record<string, Float32Array> = Object.fromEntries(
        Object.entries(shapes).map(([k, sh]) => [
          k,
          Float32Array.from({ length: sh.reduce((p, q) => p * q, 1) }, () => normal()),
        ]),
      );
      const feeds = (v: Record<string, Float32Array>) =>
        Object.fromEntries(Object.entries(v).map(([k, arr]) => [k, new ort.Tensor('float32', arr, [...shapes[k]!])]));
      const r = await s.run(feeds(vals));
      for (const k of ['x', 'w', 'bias']) {
        const g = r[grads[k]!]!.data as Float32Array;
        for (const i of new Set([0, 1, Math.floor(g.length / 2), g.length - 1])) {
          const eps = 0.25; // the loss is quadratic in each input: central differences are exact up to rounding
          const plus = { ...vals, [k]: vals[k]!.slice() };
          const minus = { ...vals, [k]: vals[k]!.slice() };
          plus[k]![i]! += eps;
          minus[k]![i]! -= eps;
          const fd =
            (Number((await s.run(feeds(plus))).loss!.data[0]) - Number((await s.run(feeds(minus))).loss!.data[0])) /
            (2 * eps);
          t.true(
            Math.abs(fd - g[i]!) <= 2e-3 * Math.max(1, Math.abs(fd)),
            `${op} ${nd}-d kernel ${kernel} pads ${pads}: d/d${k}[${i}] ${g[i]} vs ${fd}`,
          );
        }
      }
      await s.release();
    }
  }
});
