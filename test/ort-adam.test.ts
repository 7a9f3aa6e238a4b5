/** Adam on typed arrays (src/train/adam.ts) equals tf.train.adam bit for bit; the graph variant agrees. */
import test from 'ava';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { Adam, AdamGraph, TFJS_EPSILON_FLOAT32 } from '../src/train/adam.js';
import { normalStream } from './helpers/ort-compare.js';

test.before(async () => {
  await initBackend('wasm');
});

const shapes = [[3, 5], [5], [7]];

function series(seed: number, steps: number) {
  const normal = normalStream(seed);
  const init = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => normal()));
  const grads = Array.from({ length: steps }, (_, k) =>
    shapes.map((s) =>
      Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => normal() * 10 ** ((k % 3) - 1)),
    ),
  );
  return { init, grads };
}

test('the default epsilon is the wasm backend epsilon tf.train.adam uses', (t) => {
  t.is(tf.backend().epsilon(), TFJS_EPSILON_FLOAT32);
});

for (const [lr, b1, b2] of [
  [1e-3, 0.9, 0.999],
  [0.05, 0.8, 0.99],
] as const) {
  test(`typed-array Adam equals tf.train.adam bit for bit (lr ${lr}, betas ${b1}/${b2}, 12 steps)`, (t) => {
    const { init, grads } = series(4, 12);
    const vars = init.map((d, k) => tf.variable(tf.tensor(d, shapes[k]!)));
    const opt = tf.train.adam(lr, b1, b2);
    const params = init.map((d) => d.slice());
    const adam = new Adam(
      params.map((p) => p.length),
      { lr, beta1: b1, beta2: b2 },
    );
    for (const g of grads) {
      const gt = g.map((d, k) => tf.tensor(d, shapes[k]!));
      opt.applyGradients(vars.map((v, k) => ({ name: v.name, tensor: gt[k]! })));
      tf.dispose(gt);
      adam.step(params, g);
      vars.forEach((v, k) => t.deepEqual(Array.from(params[k]!), Array.from(v.dataSync()), `parameter ${k}`));
    }
    t.is(adam.iterations, grads.length);
    opt.dispose();
    tf.dispose(vars);
  });
}

test('the Adam graph matches the typed-array update to float32 rounding', async (t) => {
  const { init, grads } = series(8, 6);
  const params = init.map((d) => d.slice());
  const adam = new Adam(
    params.map((p) => p.length),
    { lr: 0.01 },
  );
  const graph = await AdamGraph.create(init, shapes, { lr: 0.01 });
  for (const g of grads) {
    adam.step(params, g);
    await graph.step(g.map((d, k) => new ort.Tensor('float32', d, shapes[k]!)));
  }
  params.forEach((p, k) => {
    const q = graph.params[k]!.data as Float32Array;
    for (let i = 0; i < p.length; i++)
      t.true(Math.abs(p[i]! - q[i]!) <= 1e-6 * Math.max(1, Math.abs(p[i]!)), `${k}[${i}]: ${p[i]} vs ${q[i]}`);
  });
  await graph.release();
});
