/**
 * Model graphs (field, head, encoder, effective model) against a plain-JS
 * float64 reference forward, bundles written and read back, and the bundle
 * error messages.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { float32Ops, float64Ops } from '../src/engines/typed.js';
import { FileFormatError, ShapeError, SpecError } from '../src/errors.js';
import { paramShapes } from '../src/models/params.js';
import {
  augmentedShape,
  stateSize,
  type Activation,
  type FieldSpec,
  type Model,
  type Params,
} from '../src/models/types.js';
import { readBundle, writeBundle } from '../src/onnx/bundle.js';
import { evaluateBundle } from '../src/onnx/evaluate.js';
import {
  effectiveModelGraph,
  encoderGraph,
  fieldGraph,
  headGraph,
  solveGraph,
} from '../src/onnx/lower/model-graphs.js';
import { OnnxField, OnnxMap } from '../src/onnx/session.js';
import { solve, solveAsync } from '../src/solvers/integrate.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { Rng } from '../src/random.js';

// ---------- seeded numbers ----------

/** Seeded standard normals from the project's PRNG, so every run uses the same weights. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.normal();
}

function randomModel(field: FieldSpec, inputShape: number[], augment: number, classes: number, seed: number): Model {
  const normal = rng(seed);
  const config = { inputShape, augment, stateShape: augmentedShape(inputShape, augment), classes, field, t0: 0, t1: 1 };
  const params: Params = {};
  for (const p of paramShapes(config)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const std = p.fanIn > 0 ? Math.sqrt(1 / p.fanIn) : 0.3; // random biases too, so they are tested
    params[p.name] = { shape: [...p.shape], data: Float32Array.from({ length: n }, () => std * normal()) };
  }
  return { config, params };
}

function randomData(n: number, width: number, seed: number): Float32Array {
  const normal = rng(seed);
  return Float32Array.from({ length: n * width }, () => normal());
}

// ---------- float64 reference forward, one sample at a time ----------

const act = (kind: Activation, x: number) =>
  kind === 'tanh' ? Math.tanh(x) : kind === 'relu' ? Math.max(0, x) : Math.log1p(Math.exp(x));

function dense(x: Float64Array, w: Float32Array, b: Float32Array, out: number): Float64Array {
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < out; j++) y[j]! += x[i]! * w[i * out + j]!;
  return y;
}

/** 2-D convolution, NCHW single sample, stride 1, 'same' padding for odd square kernels. */
function conv2d(
  x: Float64Array,
  cin: number,
  H: number,
  W: number,
  w: Float32Array,
  b: Float32Array,
  cout: number,
  k: number,
): Float64Array {
  const pad = (k - 1) / 2;
  const y = new Float64Array(cout * H * W);
  for (let o = 0; o < cout; o++)
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++) {
        let s = b[o]!;
        for (let i = 0; i < cin; i++)
          for (let kr = 0; kr < k; kr++)
            for (let kc = 0; kc < k; kc++) {
              const rr = r + kr - pad;
              const cc = c + kc - pad;
              if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
              s += w[((o * cin + i) * k + kr) * k + kc]! * x[(i * H + rr) * W + cc]!;
            }
        y[(o * H + r) * W + c] = s;
      }
  return y;
}

const relu = (v: Float64Array) => v.map((x) => Math.max(0, x));

function refField(model: Model, t: number, z: Float64Array): Float64Array {
  const { config, params: P } = model;
  const f = config.field;
  const S = stateSize(config);
  if (f.kind === 'mlp') {
    let h: Float64Array = f.time ? Float64Array.from([...z, t]) : z;
    for (let l = 0; l <= f.depth; l++) {
      const w = P[`field.${l}.weight`]!;
      h = dense(h, w.data, P[`field.${l}.bias`]!.data, w.shape[1]!);
      if (l < f.depth) h = h.map((x) => act(f.activation, x));
    }
    return h;
  }
  if (f.kind === 'onnx') throw new Error('the JS reference has no imported fields');
  const C = f.channels;
  if (f.kind === 'conv1d') {
    // Treat [1, D] as an image of height 1 with kernels [k] → [1, k].
    let h = relu(conv1d(z, 1, S, P['field.0.weight']!.data, P['field.0.bias']!.data, C, 1));
    h = relu(conv1d(h, C, S, P['field.1.weight']!.data, P['field.1.bias']!.data, C, 3));
    return conv1d(h, C, S, P['field.2.weight']!.data, P['field.2.bias']!.data, 1, 1);
  }
  const [c0, H, W] = config.stateShape as [number, number, number];
  let h = relu(conv2d(z, c0, H, W, P['field.0.weight']!.data, P['field.0.bias']!.data, C, 1));
  h = relu(conv2d(h, C, H, W, P['field.1.weight']!.data, P['field.1.bias']!.data, C, 3));
  return conv2d(h, C, H, W, P['field.2.weight']!.data, P['field.2.bias']!.data, c0, 1);
}

function conv1d(
  x: Float64Array,
  cin: number,
  D: number,
  w: Float32Array,
  b: Float32Array,
  cout: number,
  k: number,
): Float64Array {
  const pad = (k - 1) / 2;
  const y = new Float64Array(cout * D);
  for (let o = 0; o < cout; o++)
    for (let p = 0; p < D; p++) {
      let s = b[o]!;
      for (let i = 0; i < cin; i++)
        for (let kk = 0; kk < k; kk++) {
          const q = p + kk - pad;
          if (q >= 0 && q < D) s += w[(o * cin + i) * k + kk]! * x[i * D + q]!;
        }
      y[o * D + p] = s;
    }
  return y;
}

function refHead(model: Model, z: Float64Array): Float64Array {
  return dense(z, model.params['head.weight']!.data, model.params['head.bias']!.data, model.config.classes);
}

function refEncode(model: Model, x: Float64Array): Float64Array {
  const { inputShape, augment } = model.config;
  // Vector: append zeros; image CHW: append zero channels — both are zeros at the end in row-major order.
  const out = new Float64Array(
    x.length + (inputShape.length === 1 ? augment : augment * inputShape[1]! * inputShape[2]!),
  );
  out.set(x);
  return out;
}

/** Batched float64 reference field over flat [n × S]. */
function refBatchField(model: Model, n: number) {
  const S = stateSize(model.config);
  return (t: number, z: Float64Array) => {
    const out = new Float64Array(n * S);
    for (let i = 0; i < n; i++) out.set(refField(model, t, z.subarray(i * S, (i + 1) * S)), i * S);
    return out;
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e;
}

// ---------- the models under test ----------

const MODELS: { name: string; model: Model }[] = [
  ...(['tanh', 'relu', 'softplus'] as const).map((a, i) => ({
    name: `mlp ${a}`,
    model: randomModel({ kind: 'mlp', width: 8, depth: 2, activation: a, time: false }, [2], 1, 3, 10 + i),
  })),
  {
    name: 'mlp tanh time depth 1',
    model: randomModel({ kind: 'mlp', width: 6, depth: 1, activation: 'tanh', time: true }, [3], 0, 2, 20),
  },
  {
    name: 'mlp softplus time',
    model: randomModel({ kind: 'mlp', width: 5, depth: 2, activation: 'softplus', time: true }, [2], 2, 2, 21),
  },
  { name: 'conv1d', model: randomModel({ kind: 'conv1d', channels: 8 }, [3], 2, 2, 30) },
  { name: 'conv2d', model: randomModel({ kind: 'conv2d', channels: 4 }, [1, 6, 6], 1, 3, 40) },
];

const isTime = (m: Model) => m.config.field.kind === 'mlp' && m.config.field.time;

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'odeness-onnx-models-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const B = 5;

test('field and head graphs match the float64 reference forward (every field kind)', async (t) => {
  for (const { name, model } of MODELS) {
    const S = stateSize(model.config);
    const file = path.join(dir, `field-${name.replace(/ /g, '-')}.onnx`);
    await fieldGraph(model).save(file);
    const field = await OnnxField.load(file);
    t.deepEqual([...field.stateShape], [...model.config.stateShape], name);
    t.is(field.autonomous, !isTime(model), name);
    const z = randomData(B, S, 99);
    const tt = 0.37;
    const got = await field.evaluate(tt, z, B);
    const want = refBatchField(model, B)(tt, Float64Array.from(z));
    const err = maxAbsDiff(got, want);
    t.true(err <= 1e-4, `${name}: field max abs error ${err}`);
    await field.release();

    const headFile = path.join(dir, `head-${name.replace(/ /g, '-')}.onnx`);
    await headGraph(model).save(headFile);
    const head = await OnnxMap.load(headFile);
    const logits = (await head.run(z, B)).data;
    const wantLogits = new Float64Array(B * model.config.classes);
    for (let i = 0; i < B; i++)
      wantLogits.set(refHead(model, Float64Array.from(z.subarray(i * S, (i + 1) * S))), i * model.config.classes);
    const herr = maxAbsDiff(logits, wantLogits);
    t.true(herr <= 1e-4, `${name}: head max abs error ${herr}`);
    await head.release();
  }
});

test('encoder graphs zero-augment vectors and images', async (t) => {
  for (const { name, model } of MODELS.filter((m) => m.model.config.augment > 0)) {
    const width = model.config.inputShape.reduce((a, b) => a * b, 1);
    const file = path.join(dir, `enc-${name.replace(/ /g, '-')}.onnx`);
    await encoderGraph(model).save(file);
    const enc = await OnnxMap.load(file);
    const x = randomData(B, width, 7);
    const got = (await enc.run(x, B)).data;
    const want = new Float64Array(B * stateSize(model.config));
    for (let i = 0; i < B; i++)
      want.set(
        refEncode(model, Float64Array.from(x.subarray(i * width, (i + 1) * width))),
        i * stateSize(model.config),
      );
    t.is(maxAbsDiff(got, want), 0, name);
    await enc.release();
  }
});

const SPECS = ['euler:0.3', 'midpoint:0.3', 'rk4:0.3'].map((s) => parseSolverSpec(s));

test('effective model logits equal solving the bundle with solveAsync (euler, midpoint, rk4 with h = 0.3)', async (t) => {
  let worst = 0;
  for (const { name, model } of MODELS.filter((m) =>
    ['mlp tanh', 'mlp softplus time', 'conv1d', 'conv2d'].includes(m.name),
  )) {
    const bundleDir = path.join(dir, `bundle-${name.replace(/ /g, '-')}`);
    await writeBundle(model, bundleDir, { trainSolver: SPECS[2], dataset: 'random', seed: 1 });
    const bundle = await readBundle(bundleDir);
    const width = bundle.inputShape.reduce((a, b) => a * b, 1);
    const x = randomData(B, width, 5);
    const z0 = await bundle.encode(x, B);
    for (const spec of SPECS) {
      const r = await solveAsync(float32Ops, bundle.field.asAsyncField(B), z0, spec, {
        t0: bundle.manifest.t0,
        t1: bundle.manifest.t1,
      });
      const viaSolve = await bundle.logits(r.z1, B);
      const session = await ort.InferenceSession.create(effectiveModelGraph(model, spec).toBytes(), {
        intraOpNumThreads: 1,
      });
      const out = await session.run({ x: new ort.Tensor('float32', x, [B, ...model.config.inputShape]) });
      const err = maxAbsDiff(out.logits!.data as Float32Array, viaSolve);
      t.true(err <= 1e-4, `${name} ${spec.method}: effective model vs solveAsync max abs error ${err}`);
      worst = Math.max(worst, err);
      await session.release();
    }
    await bundle.release();
  }
  t.log(`worst max abs error: ${worst.toExponential(2)}`);
});

test('float64 effective models and unrolled solves match the float64 reference solve (rk4, h = 0.3)', async (t) => {
  const spec = parseSolverSpec('rk4:0.3');
  for (const { name, model } of MODELS.filter((m) => ['mlp softplus time', 'conv1d', 'conv2d'].includes(m.name))) {
    const S = stateSize(model.config);
    const width = model.config.inputShape.reduce((a, b) => a * b, 1);
    const x = Float64Array.from(randomData(B, width, 6));
    const z0 = new Float64Array(B * S);
    for (let i = 0; i < B; i++) z0.set(refEncode(model, x.subarray(i * width, (i + 1) * width)), i * S);
    const ref = solve(float64Ops, refBatchField(model, B), z0, spec, { t0: 0, t1: 1 });

    const solveSession = await ort.InferenceSession.create(solveGraph(model, spec, { float: 'float64' }).toBytes(), {
      intraOpNumThreads: 1,
    });
    const z1 = (await solveSession.run({ z: new ort.Tensor('float64', z0, [B, ...model.config.stateShape]) })).z1!
      .data as Float64Array;
    t.true(maxAbsDiff(z1, ref.z1) < 1e-10, `${name}: unrolled solve error ${maxAbsDiff(z1, ref.z1)}`);

    const wantLogits = new Float64Array(B * model.config.classes);
    for (let i = 0; i < B; i++)
      wantLogits.set(refHead(model, ref.z1.subarray(i * S, (i + 1) * S)), i * model.config.classes);
    const eff = await ort.InferenceSession.create(effectiveModelGraph(model, spec, { float: 'float64' }).toBytes(), {
      intraOpNumThreads: 1,
    });
    const logits = (await eff.run({ x: new ort.Tensor('float64', x, [B, ...model.config.inputShape]) })).logits!
      .data as Float64Array;
    t.true(maxAbsDiff(logits, wantLogits) < 1e-10, `${name}: effective model error ${maxAbsDiff(logits, wantLogits)}`);
    t.log(
      `${name}: unrolled ${maxAbsDiff(z1, ref.z1).toExponential(2)}, logits ${maxAbsDiff(logits, wantLogits).toExponential(2)}`,
    );
    await solveSession.release();
    await eff.release();
  }
});

test('effective model refuses adaptive solvers with a SpecError', (t) => {
  const e = t.throws(() => effectiveModelGraph(MODELS[0]!.model, parseSolverSpec('dopri5:1e-4')), {
    instanceOf: SpecError,
  });
  t.regex(e!.message, /fixed-step solver.*dopri5/);
});

test('bundle round trip: manifest, inferred manifest without manifest.json, evaluateBundle rows', async (t) => {
  const { model } = MODELS.find((m) => m.name === 'mlp tanh time depth 1')!;
  const bundleDir = path.join(dir, 'bundle-roundtrip');
  const written = await writeBundle(model, bundleDir, {
    trainSolver: 'rk4:0.1',
    dataset: 'spheres',
    seed: 'abc',
    provenance: { note: 'test' },
  });
  t.is(written.formatVersion, 1);
  const b1 = await readBundle(bundleDir);
  t.deepEqual(b1.manifest, written);
  t.true(b1.hasManifest);
  t.is(b1.encoder, undefined);
  t.deepEqual([...b1.inputShape], [3]);
  await b1.release();

  await rm(path.join(bundleDir, 'manifest.json'));
  const b2 = await readBundle(bundleDir);
  t.false(b2.hasManifest);
  t.deepEqual(b2.manifest, { formatVersion: 1, t0: 0, t1: 1, stateShape: [3], classes: 2 });
  await b2.release();

  // Accuracy from evaluateBundle equals the argmax of the float64 reference solve (labels = reference predictions on half).
  const n = 40;
  const x = randomData(n, 3, 8);
  const spec = parseSolverSpec('rk4:steps=4');
  const ref = solve(float64Ops, refBatchField(model, n), Float64Array.from(x), spec);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = refHead(model, ref.z1.subarray(i * 3, (i + 1) * 3));
    const pred = l[1]! > l[0]! ? 1 : 0;
    y[i] = i % 2 === 0 ? pred : 1 - pred;
  }
  const rows = await evaluateBundle(bundleDir, { x, y, n }, [spec, parseSolverSpec('dopri5:1e-5')], { chunk: 16 });
  t.is(rows.length, 2);
  t.like(rows[0], { solver: 'rk4', param: 0.25, spec: 'rk4:steps=4', accuracy: 0.5, nfe: 16 });
  t.like(rows[1], { solver: 'dopri5', param: 1e-5, spec: 'dopri5:0.00001' });
  t.true(rows[1]!.nfe > 0 && Math.abs(rows[1]!.accuracy - 0.5) <= 0.05);
});

test('bad bundles and data: errors name the file', async (t) => {
  const { model } = MODELS[0]!; // mlp tanh, input [2] + augment 1 → state [3], 3 classes
  const bundleDir = path.join(dir, 'bundle-bad');
  await writeBundle(model, bundleDir);
  const n = 4;

  // Data width does not match the encoder input.
  const e1 = await t.throwsAsync(
    evaluateBundle(bundleDir, { x: new Float32Array(n * 3), y: new Int32Array(n), n }, SPECS),
    { instanceOf: ShapeError },
  );
  t.true(e1!.message.includes(path.join(bundleDir, 'encoder.onnx')), e1!.message);
  t.regex(e1!.message, /expects 2 values per sample \[2\], the data has 3/);

  // The shape checks below are what a bundle without recorded hashes (an older export, or a foreign tool's) gets.
  const manifestFile = path.join(bundleDir, 'manifest.json');
  const { files: _files, ...unhashed } = JSON.parse(await readFile(manifestFile, 'utf8'));
  await writeFile(manifestFile, JSON.stringify(unhashed));

  // A head whose input width does not match the state.
  const other = randomModel({ kind: 'mlp', width: 8, depth: 2, activation: 'tanh', time: false }, [4], 0, 3, 50);
  await headGraph(other).save(path.join(bundleDir, 'head.onnx'));
  const e2 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: ShapeError });
  t.true(e2!.message.startsWith(path.join(bundleDir, 'head.onnx')), e2!.message);
  t.regex(e2!.message, /takes 4 values per sample .* has 3/);

  // Missing head, corrupt field.
  await rm(path.join(bundleDir, 'head.onnx'));
  const e3 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: FileFormatError });
  t.true(e3!.message.startsWith(path.join(bundleDir, 'head.onnx')), e3!.message);
  await headGraph(model).save(path.join(bundleDir, 'head.onnx'));
  const bytes = fieldGraph(model).toBytes();
  await writeFile(path.join(bundleDir, 'field.onnx'), bytes.subarray(0, bytes.length - 20));
  const e4 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: FileFormatError });
  t.true(e4!.message.startsWith(path.join(bundleDir, 'field.onnx')), e4!.message);
  await fieldGraph(model).save(path.join(bundleDir, 'field.onnx'));

  // Manifests: a typo'd key, a class count that disagrees with the head, bad JSON.
  const manifest = path.join(bundleDir, 'manifest.json');
  await writeFile(manifest, JSON.stringify({ formatVersion: 1, t_1: 2, stateShape: [3], classes: 3 }));
  const e5 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: FileFormatError });
  t.is(
    e5!.message,
    `${manifest}: unknown key "t_1"; expected formatVersion, t0, t1, stateShape, classes, trainSolver, dataset, seed, files, effectiveSolver, provenance`,
  );
  await writeFile(manifest, JSON.stringify({ formatVersion: 1, stateShape: [3], classes: 4 }));
  const e6 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: ShapeError });
  t.true(e6!.message.includes('head.onnx') && e6!.message.includes('4'), e6!.message);
  await writeFile(manifest, '{"formatVersion": 1,');
  const e7 = await t.throwsAsync(readBundle(bundleDir), { instanceOf: FileFormatError });
  t.true(e7!.message.startsWith(`${manifest}: not valid JSON`), e7!.message);

  // Without an encoder, the data must match the field's state.
  await rm(manifest);
  await rm(path.join(bundleDir, 'encoder.onnx'));
  const e8 = await t.throwsAsync(
    evaluateBundle(bundleDir, { x: new Float32Array(n * 2), y: new Int32Array(n), n }, SPECS),
    { instanceOf: ShapeError },
  );
  t.true(e8!.message.startsWith(path.join(bundleDir, 'field.onnx')), e8!.message);
});
