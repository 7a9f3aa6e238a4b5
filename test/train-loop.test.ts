import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { makeSpheres } from '../src/data/spheres.js';
import { Rng } from '../src/data/random.js';
import { initParams } from '../src/models/params.js';
import { modelConfigFor, trainRun } from '../src/train/run.js';
import { train } from '../src/train/train.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

test.before(async () => {
  await initBackend('wasm');
});

const data = makeSpheres({ dim: 2, shells: 'dupont2019', seed: 3, nTrain: 256, nTest: 64 });

test.serial('memory stays flat: no tensor leaks over hundreds of iterations', async (t) => {
  const config = modelConfigFor(data, 'mlp:width=16', 0, 0, 1);
  const rng = new Rng(1);
  const model = { config, params: initParams(config, () => rng.normal()) };
  const before = tf.memory().numTensors;
  const counts = new Map<number, number>();
  await train(model, data.train, {
    solver: parseSolverSpec('rk4:0.25'),
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
  const run = await trainRun({ dataset: 'spheres:dupont2019:dim=2:n=256:testN=64', field: 'mlp:width=8', solver: 'dopri5:1e-3', iterations: 20, seed: 2, batchSize: 32, lr: 1e-2, logEvery: 5 }, { onLog: (e) => logs.push(e.nfeForward) });
  t.true(logs.length >= 4);
  for (const n of logs) t.is((n - 2) % 6, 0, `dopri5 NFE ${n} is 2 + 6k`);
  t.is(run.result.nfe.forward, run.result.nfe.backward);
  t.is(tf.memory().numTensors, before);
});

test.serial('NaN/Inf loss stops training with the iteration and step size, keeping the last good checkpoint', async (t) => {
  const config = modelConfigFor(data, 'mlp:width=16,act=relu', 0, 0, 1);
  const rng = new Rng(5);
  const model = { config, params: initParams(config, () => rng.normal()) };
  const res = await train(model, data.train, { solver: parseSolverSpec('euler:0.5'), iterations: 200, batchSize: 32, lr: 1e12, rng: rng.fork('b'), logEvery: 1 });
  t.truthy(res.diverged, 'expected divergence with lr = 1e12');
  t.regex(res.diverged!.message, /iteration \d+/);
  t.regex(res.diverged!.message, /euler:0\.5/);
  for (const p of Object.values(res.model.params)) t.true(p.data.every(Number.isFinite), 'checkpoint holds finite weights');
});
