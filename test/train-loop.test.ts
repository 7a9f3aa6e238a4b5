import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { makeSpheres } from '../src/data/spheres.js';
import { Rng } from '../src/random.js';
import { initParams } from '../src/models/params.js';
import { modelConfigFor, trainRun } from '../src/train/run.js';
import { train } from '../src/train/train.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

test.before(async () => {
  await initBackend('wasm');
});

const data = makeSpheres({ dim: 2, shells: 'dupont2019', rng: new Rng(3), nTrain: 256, nTest: 64 });

test.serial('memory stays flat: no tensor leaks over hundreds of iterations', async (t) => {
  const config = modelConfigFor(data, 'mlp:width=16', 0, 0, 1);
  const rng = new Rng(1);
  const model = { config, params: initParams(config, () => rng.normal()) };
  const before = tf.memory().numTensors;
  const counts = new Map<number, number>();
  await train(model, data.train, {
    solver: parseSolverSpec('rk4:0.25'),
    engine: 'tfjs', // the engine that holds tensors (the ort engine holds typed arrays)
    iterations: 300,
    batchSize: 32,
    lr: 1e-3,
    rng: rng.fork('b'),
    logEvery: 50,
    onIteration: (it) => counts.set(it, tf.memory().numTensors),
  });
  t.is(counts.get(300), counts.get(20), 'tensor count grew during training');
  t.is(tf.memory().numTensors, before, 'tensors left behind after training');
});

test.serial('adaptive training solver: NFE logged, backprop through accepted steps, no leaks', async (t) => {
  const before = tf.memory().numTensors;
  const logs: number[] = [];
  const run = await trainRun(
    {
      dataset: 'spheres:dupont2019:dim=2:n=256:testN=64',
      field: 'mlp:width=8',
      solver: 'dopri5:1e-3',
      iterations: 20,
      seed: 2,
      batchSize: 32,
      lr: 1e-2,
      logEvery: 5,
    },
    { onLog: (e) => logs.push(e.nfeForward) },
  );
  t.true(logs.length >= 4);
  for (const n of logs) t.is((n - 2) % 6, 0, `dopri5 NFE ${n} is 2 + 6k`);
  t.is(run.result.nfe.forward, run.result.nfe.backward);
  t.is(tf.memory().numTensors, before);
});

test.serial(
  'NaN/Inf loss stops training with the iteration and step size, keeping the last good checkpoint',
  async (t) => {
    const config = modelConfigFor(data, 'mlp:width=16,act=relu', 0, 0, 1);
    const rng = new Rng(5);
    const model = { config, params: initParams(config, () => rng.normal()) };
    const res = await train(model, data.train, {
      solver: parseSolverSpec('euler:0.5'),
      iterations: 200,
      batchSize: 32,
      lr: 1e12,
      rng: rng.fork('b'),
      logEvery: 1,
    });
    t.truthy(res.diverged, 'expected divergence with lr = 1e12');
    t.regex(res.diverged!.message, /iteration \d+/);
    t.regex(res.diverged!.message, /euler:0\.5/);
    for (const p of Object.values(res.model.params))
      t.true(p.data.every(Number.isFinite), 'checkpoint holds finite weights');
  },
);

test.serial(
  'conv fields train on tfjs-wasm (engine tfjs, adaptive solver): the conv filter gradient matches finite differences',
  async (t) => {
    const x = tf.randomNormal([2, 5, 4, 3], 0, 1, 'float32', 1);
    const f = tf.variable(tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2));
    const loss = () =>
      tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, f as unknown as tf.Tensor4D, 1, 'same'))) as tf.Scalar;
    const { value, grads } = tf.variableGrads(loss, [f]);
    const g = grads[f.name]!.dataSync();
    const base = f.dataSync().slice();
    for (const k of [0, 13, 50, 107]) {
      const e = 1e-2;
      const at = (d: number) => {
        const p = base.slice();
        p[k]! += d;
        f.assign(tf.tensor(p, f.shape));
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      const fd = (at(e) - at(-e)) / (2 * e);
      t.true(Math.abs(fd - g[k]!) <= 2e-3 * Math.max(1, Math.abs(fd)), `∂L/∂f[${k}]: ${g[k]} vs ${fd}`);
    }
    f.assign(tf.tensor(base, f.shape));
    tf.dispose([x, f, value, ...Object.values(grads)]);
    const run = await trainRun({
      dataset: 'spheres:ott2021:dim=3:n=128:testN=32',
      field: 'conv1d:channels=4',
      solver: 'dopri5:1e-3',
      iterations: 3,
      seed: 1,
      batchSize: 16,
      lr: 1e-3,
      logEvery: 1,
      engine: 'tfjs',
    });
    t.is(run.training.engine, 'tfjs');
    t.is(run.result.iterations, 3);
    t.true(run.result.log.every((e) => Number.isFinite(e.loss)));
  },
);
