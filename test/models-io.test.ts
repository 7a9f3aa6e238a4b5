import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../src/random.js';
import { loadModel, saveModel } from '../src/models/io.js';
import { initParams, paramShapes } from '../src/models/params.js';
import { parseFieldSpec, formatFieldSpec } from '../src/models/spec.js';
import { modelConfigFor } from '../src/train/run.js';
import { FileFormatError, SpecError } from '../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-io-'));
const training = {
  dataset: 'spheres:dupont2019:dim=2',
  solver: 'euler:0.5',
  seed: 7,
  iterations: 10,
  batchSize: 16,
  lr: 1e-3,
  status: 'complete' as const,
};

for (const [field, shape] of [
  ['mlp:width=8,depth=3,act=softplus,time', [3]],
  ['conv1d', [5]],
  ['conv2d:channels=4', [1, 6, 6]],
] as const) {
  test(`save → load round-trips ${field} exactly`, async (t) => {
    const config = modelConfigFor({ inputShape: [...shape], classes: 3 }, field, shape.length === 1 ? 1 : 0, 0, 1);
    const rng = new Rng(1);
    const params = initParams(config, () => rng.normal());
    const dir = path.join(tmp, field.replace(/[^a-z0-9]/g, '_'));
    await saveModel(dir, { config, params }, training);
    const back = await loadModel(dir);
    t.deepEqual(back.config, config);
    t.deepEqual(back.training, training);
    for (const p of paramShapes(config))
      t.deepEqual(Array.from(back.params[p.name]!.data), Array.from(params[p.name]!.data));
  });
}

test('Kaiming-normal init: zero biases, weight std ≈ √(2/fan_in), seeded', (t) => {
  const config = modelConfigFor({ inputShape: [2], classes: 2 }, 'mlp:width=256', 0, 0, 1);
  const a = initParams(
    config,
    (
      (r) => () =>
        r.normal()
    )(new Rng(3)),
  );
  const b = initParams(
    config,
    (
      (r) => () =>
        r.normal()
    )(new Rng(3)),
  );
  t.deepEqual(a['field.1.weight']!.data, b['field.1.weight']!.data);
  t.true(a['field.0.bias']!.data.every((v) => v === 0));
  const w = a['field.1.weight']!.data;
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  t.true(Math.abs(std - Math.sqrt(2 / 256)) < 0.01 * Math.sqrt(2 / 256) * 10, `std ${std}`);
});

test('field specs parse, format and reject bad input by name', (t) => {
  t.deepEqual(parseFieldSpec('mlp:width=64,depth=3,act=relu,time'), {
    kind: 'mlp',
    width: 64,
    depth: 3,
    activation: 'relu',
    time: true,
  });
  t.is(formatFieldSpec(parseFieldSpec('conv1d')), 'conv1d:channels=32');
  t.is(formatFieldSpec(parseFieldSpec('mlp:width=16')), 'mlp:width=16,depth=2,act=tanh');
  t.throws(() => parseFieldSpec('mlp:width=0'), { instanceOf: SpecError, message: /mlp:width=0.*width/ });
  t.throws(() => parseFieldSpec('mlp:act=gelu'), { instanceOf: SpecError, message: /gelu/ });
  t.throws(() => parseFieldSpec('mlp:height=3'), { instanceOf: SpecError, message: /unknown option "height"/ });
  t.throws(() => parseFieldSpec('transformer'), { instanceOf: SpecError, message: /unknown field "transformer"/ });
  t.throws(() => modelConfigFor({ inputShape: [2], classes: 2 }, 'conv2d', 0, 0, 1), {
    instanceOf: SpecError,
    message: /image/,
  });
});

test('loading a missing or damaged model directory names the file', async (t) => {
  await t.throwsAsync(loadModel(path.join(tmp, 'missing')), {
    instanceOf: FileFormatError,
    message: /missing.*does not exist/,
  });
  const dir = path.join(tmp, 'damaged');
  const config = modelConfigFor({ inputShape: [2], classes: 2 }, 'mlp:width=4', 0, 0, 1);
  await saveModel(dir, { config, params: initParams(config, () => 0.5) }, training);
  fs.truncateSync(path.join(dir, 'params.bin'), 12);
  await t.throwsAsync(loadModel(dir), { instanceOf: FileFormatError, message: /params\.bin: has 12 bytes/ });
});
