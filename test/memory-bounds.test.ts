/**
 * Memory-bounded evaluation: chunking field calls by a memory budget changes
 * no result, leaves no tensors behind, and the budget and worker counts are
 * parsed and capped with messages that say why.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { chunkedField, DEFAULT_MEMORY_BYTES, parseMemory, rowsWithin } from '../src/engines/memory.js';
import { fieldBytesPerSample } from '../src/models/memory.js';
import { makeSpheres } from '../src/data/spheres.js';
import { Rng } from '../src/random.js';
import { initParams } from '../src/models/params.js';
import { modelConfigFor } from '../src/train/run.js';
import { evaluateModel } from './helpers/tfjs-evaluate.js';
import { evaluate } from '../src/onnx/evaluate.js';
import { memorySource } from '../src/onnx/source.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { capThreads, WORKER_MEMORY_BYTES } from '../src/study/local.js';

test.before(async () => {
  await initBackend('wasm');
});

test('memory sizes: binary units, errors name the value', (t) => {
  t.is(parseMemory('512m'), 512 * 2 ** 20);
  t.is(parseMemory('2g'), 2 * 2 ** 30);
  t.is(parseMemory('1.5GiB'), 1.5 * 2 ** 30);
  t.is(parseMemory('67108864'), 64 * 2 ** 20);
  t.throws(() => parseMemory('lots'), { message: /memory "lots" is not a size like 512m/ });
  t.throws(() => parseMemory('1k'), { message: /memory "1k" is below the minimum of 16 MiB/ });
  t.is(rowsWithin(100, 30), 3);
  t.is(rowsWithin(10, 30), 1, 'at least one row');
  t.is(rowsWithin(1e9, 1, 4096), 4096);
});

test('a chunked field gives the unchunked values and never sees more rows than the chunk', async (t) => {
  const width = 3;
  const n = 10;
  const seen: number[] = [];
  const make = (rows: number) => (time: number, z: Float32Array) => {
    seen.push(rows);
    t.is(z.length, rows * width);
    return z.map((v, i) => Math.sin(v * (i % width) + time));
  };
  const z = Float32Array.from({ length: n * width }, (_, i) => i / 7);
  const whole = await make(n)(0.5, z);
  seen.length = 0;
  const chunked = await chunkedField(make, n, width, 4)(0.5, z);
  t.deepEqual(chunked, whole);
  t.deepEqual(seen, [4, 4, 2]);
});

const data = makeSpheres({ dim: 2, shells: 'dupont2019', rng: new Rng(3), nTrain: 64, nTest: 300 });
// A wide field: ~130 KB per sample per call, so a 16 MiB budget makes chunks of ~128 rows.
const config = modelConfigFor(data, 'mlp:width=4096,depth=1', 0, 0, 1);
const rng = new Rng(4);
const model = { config, params: initParams(config, () => rng.normal() * 0.5) };
const specs = ['rk4:steps=5', 'euler:0.25', 'dopri5:1e-4'].map((s) => parseSolverSpec(s));

test.serial('evaluateModel: the same rows under any memory budget, and no tensors left', (t) => {
  t.true(rowsWithin(16 * 2 ** 20, fieldBytesPerSample(config)) < data.test.n / 2, 'the small budget must really chunk');
  const before = tf.memory().numTensors;
  const wide = evaluateModel(model, data.test, specs, { memoryBytes: DEFAULT_MEMORY_BYTES });
  const narrow = evaluateModel(model, data.test, specs, { memoryBytes: 16 * 2 ** 20 });
  t.deepEqual(narrow, wide);
  t.is(tf.memory().numTensors, before, 'tensors left behind');
  t.true(wide[0]!.accuracy > 0 && wide[0]!.nfe === 20);
});

test.serial('evaluate on a model in memory (the CLI path) agrees with the tfjs reference', async (t) => {
  const tfRows = evaluateModel(model, data.test, specs);
  const source = await memorySource(model, {}, { memoryBytes: 16 * 2 ** 20 });
  const ortRows = await evaluate(source, data.test, specs).finally(() => source.release());
  t.is(ortRows.length, tfRows.length);
  for (let i = 0; i < specs.length; i++) {
    t.is(ortRows[i]!.spec, tfRows[i]!.spec);
    // float32 in both engines; summation order may flip a point on the decision boundary.
    t.true(
      Math.abs(ortRows[i]!.accuracy - tfRows[i]!.accuracy) <= 2 / data.test.n,
      `${ortRows[i]!.spec}: ${ortRows[i]!.accuracy} vs ${tfRows[i]!.accuracy}`,
    );
  }
  t.is(ortRows[0]!.nfe, tfRows[0]!.nfe);
  t.is(ortRows[1]!.nfe, tfRows[1]!.nfe);
});

test('worker counts are capped by cores and by memory, saying which', (t) => {
  const GiB = 2 ** 30;
  t.deepEqual(capThreads(2, { cores: 2, memoryBytes: 23 * GiB }), { threads: 2 });
  const byCores = capThreads(1000, { cores: 2, memoryBytes: 23 * GiB });
  t.is(byCores.threads, 2);
  t.regex(byCores.note!, /^1000 workers requested; using 2 \(this machine has 2 cores\)$/);
  const byMemory = capThreads(64, { cores: 64, memoryBytes: 4 * GiB });
  t.is(byMemory.threads, Math.floor((4 * GiB) / WORKER_MEMORY_BYTES));
  t.regex(byMemory.note!, /4\.0 GiB of memory at ~1\.5 GiB per worker/);
  t.is(capThreads(3, { cores: 1, memoryBytes: 0.5 * GiB }).threads, 1, 'always at least one');
});
