/**
 * Export → import round trips: a bundle evaluated with onnxruntime matches the
 * tfjs model it came from (logits to 1e-4 for every field type; the same
 * accuracy table under several test solvers through the CLI), and foreign
 * fields are solved against exact solutions through `odeness solve`.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { float32Ops } from '../src/engines/typed.js';
import { Rng } from '../src/random.js';
import { initParams } from '../src/models/params.js';
import { buildTfModel } from '../src/models/tf-model.js';
import { writeBundle, readBundle } from '../src/onnx/bundle.js';
import { GraphBuilder } from '../src/graph/ir/graph.js';
import { solveAsync } from '../src/solvers/integrate.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { forward } from '../src/models/forward.js';
import { modelConfigFor } from '../src/train/run.js';
import { runCli } from './helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-export-'));

test.before(async () => {
  await initBackend('wasm');
});

const cases = [
  { field: 'mlp:width=16,act=tanh', shape: [3], augment: 2 },
  { field: 'mlp:width=8,depth=3,act=softplus,time', shape: [2], augment: 0 },
  { field: 'mlp:width=8,act=relu', shape: [4], augment: 1 },
  { field: 'conv1d:channels=8', shape: [6], augment: 0 },
  { field: 'conv2d:channels=4', shape: [1, 5, 5], augment: 1 },
];

for (const c of cases) {
  for (const solver of ['euler:0.3', 'rk4:0.25', 'dopri5:1e-4']) {
    test(`bundle logits match tfjs to 1e-4: ${c.field} (augment ${c.augment}) under ${solver}`, async (t) => {
      const config = modelConfigFor({ inputShape: c.shape, classes: 3 }, c.field, c.augment, 0, 1);
      const rng = new Rng(`${c.field}/${solver}`);
      const model = { config, params: initParams(config, () => 0.5 * rng.normal()) };
      const n = 7;
      const width = c.shape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n * width }, () => rng.normal());
      const spec = parseSolverSpec(solver);
      const m = buildTfModel(model, false);
      const tfLogits = tf.tidy(
        () => forward(m, tf.tensor2d(x, [n, width]), spec, true).logits.dataSync() as Float32Array,
      );
      m.dispose();
      const dir = path.join(tmp, `${c.field}-${solver}`.replace(/[^a-z0-9]/gi, '_'));
      await writeBundle(model, dir, { trainSolver: solver });
      const b = await readBundle(dir);
      try {
        const z0 = await b.encode(x, n);
        const r = await solveAsync(float32Ops, b.field.asAsyncField(n), z0, spec, { t0: 0, t1: 1 });
        const logits = await b.logits(r.z1, n);
        let maxAbs = 0;
        for (let i = 0; i < logits.length; i++) maxAbs = Math.max(maxAbs, Math.abs(logits[i]! - tfLogits[i]!));
        t.true(maxAbs <= 1e-4, `max |Δlogit| = ${maxAbs}`);
        t.is(logits.length, n * 3);
      } finally {
        await b.release();
      }
    });
  }
}

test('CLI round trip: train → export → evaluate --model and --bundle give the same table under 6 solvers', async (t) => {
  const model = path.join(tmp, 'cli-model');
  const bundle = path.join(tmp, 'cli-bundle');
  const tr = await runCli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2,n=512,testN=300',
    '--solver',
    'euler:0.5',
    '--iterations',
    '150',
    '--out',
    model,
    '--json',
  ]);
  t.is(tr.code, 0, tr.stderr);
  const ex = await runCli(['export', '--model', model, '--out', bundle]);
  t.is(ex.code, 0, ex.stderr);
  for (const f of ['field.onnx', 'head.onnx', 'manifest.json']) t.true(fs.existsSync(path.join(bundle, f)), f);
  const solvers = 'euler:0.5,euler:0.25,midpoint:0.5,rk4:0.1,rk4_38:0.2,heun:0.5,dopri5:1e-5';
  const a = await runCli(['evaluate', '--model', model, '--solvers', solvers, '--json']);
  const b = await runCli(['evaluate', '--bundle', bundle, '--solvers', solvers, '--json']);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  const ra = JSON.parse(a.stdout).results;
  const rb = JSON.parse(b.stdout).results;
  t.is(ra.length, 7);
  t.deepEqual(
    rb.map((r: { spec: string }) => r.spec),
    ra.map((r: { spec: string }) => r.spec),
  );
  for (let i = 0; i < ra.length; i++) {
    t.true(
      Math.abs(ra[i].accuracy - rb[i].accuracy) <= 1 / 300 + 1e-9,
      `${ra[i].spec}: ${ra[i].accuracy} vs ${rb[i].accuracy}`,
    );
    t.is(ra[i].nfe, rb[i].nfe, ra[i].spec);
    t.is(rb[i].steps, ra[i].steps, ra[i].spec);
    t.is(rb[i].param, ra[i].param, ra[i].spec);
  }
  const eff = await runCli([
    'export',
    '--model',
    model,
    '--effective',
    'dopri5:1e-3',
    '--out',
    path.join(tmp, 'e.onnx'),
  ]);
  t.not(eff.code, 0);
  t.regex(eff.stderr, /fixed-step/);
});

test("odeness solve: a foreign linear field z' = Az (MatMul graph, no t) against exp(At)", async (t) => {
  // A = [[-0.5, -2], [2, -0.5]]: exp(At) = e^{-t/2} [[cos 2t, -sin 2t], [sin 2t, cos 2t]]
  const g = new GraphBuilder({ name: 'linear' });
  const z = g.input('state', 'float32', ['batch', 2]);
  // z' = z·Aᵀ for row vectors.
  const At = g.initializer('At', 'float32', [2, 2], Float32Array.from([-0.5, 2, -2, -0.5]));
  g.output('dz', 'float32', ['batch', 2], g.op('MatMul', [z, At]));
  const file = path.join(tmp, 'linear.onnx');
  await g.save(file);
  const z0 = [
    [1, 0],
    [0.5, -1],
    [0, 2],
  ];
  fs.writeFileSync(path.join(tmp, 'z0.json'), JSON.stringify(z0));
  const r = await runCli([
    'solve',
    '--field',
    file,
    '--z0',
    path.join(tmp, 'z0.json'),
    '--solver',
    'rk4:0.01',
    '--t1',
    '1.5',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.nfe, 600);
  t.is(out.accepted, 150);
  t.is(out.rejected, 0);
  const T = 1.5;
  const e = Math.exp(-T / 2);
  const [c, s] = [Math.cos(2 * T), Math.sin(2 * T)];
  z0.forEach((row, i) => {
    const exact = [e * (c * row[0]! - s * row[1]!), e * (s * row[0]! + c * row[1]!)];
    for (let j = 0; j < 2; j++)
      t.true(Math.abs(out.z1[i][j] - exact[j]!) < 1e-5, `row ${i}[${j}]: ${out.z1[i][j]} vs ${exact[j]}`);
  });
  const bad = await runCli(['solve', '--field', file, '--z0', path.join(tmp, 'missing.json'), '--solver', 'rk4:0.1']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /missing\.json: file not found/);
});
