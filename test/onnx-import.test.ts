/**
 * Bring your own vector field (`--field onnx:FILE`): the torch.onnx.export fixtures of
 * test/fixtures/onnx (scripts/onnx-fixtures.py) read, lowered and trained through the ort engine.
 *   - native equivalence: an imported MLP / conv1d / conv2d field with the native field's weights gives
 *     the same loss, NFE and gradients under rk4 and dopri5;
 *   - PyTorch: every fixture's loss gradient equals torch autograd's (Debian's python3-torch; CI installs it);
 *   - float64 finite differences per fixture;
 *   - the new ops' shape and gradient rules; one-line refusals naming op, node and file; export.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../src/engines/backend.js';
import { parseFieldSpec, formatFieldSpec } from '../src/models/spec.js';
import { initParams, paramShapes } from '../src/models/params.js';
import type { Model, Params } from '../src/models/types.js';
import { loadModel, saveModel } from '../src/models/io.js';
import { appendGradients, inferShapes } from '../src/graph/autodiff/gradients.js';
import { attr, GraphBuilder } from '../src/graph/ir/graph.js';
import { analyzeImported, PROBE_BATCH } from '../src/graph/ir/imported-field.js';
import { readOnnxField, withInitializers } from '../src/graph/ir/read.js';
import { planStudy } from '../src/study/plan.js';
import { readResults } from '../src/study/store.js';
import { cliResult, tempDir, writeStudy } from './helpers/procs.js';
import { fieldGraph } from '../src/onnx/lower/model-graphs.js';
import { writeBundle } from '../src/onnx/bundle.js';
import { parseSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import { AdaptiveSessions } from '../src/train/ort-adaptive.js';
import { createSession } from '../src/onnx/runtime/session.js';
import { getTableau } from '../src/solvers/tableau.js';
import { nchwcBlockSize } from '../src/onnx/nchwc.js';
import { trainGraph } from '../src/onnx/lower/train-graph.js';
import { prod } from '../src/graph/ops/index.js';
import { compareGrads, configFor, ortFeeds, ortLossAndGrads, randomBatch, randomModel } from './helpers/ort-compare.js';

const FIXTURES = path.resolve('test/fixtures/onnx');
const fixture = (name: string) => path.join(FIXTURES, `${name}.onnx`);
const TORCH_PYTHON = '/usr/bin/python3';

interface Case {
  readonly input: number[];
  readonly augment: number;
  readonly classes: number;
  /** The native field with the same architecture, and how its weights map to the file's. */
  readonly native?: { readonly spec: string; readonly transpose: boolean };
}

const CASES: Record<string, Case> = {
  'mlp-time': { input: [2], augment: 1, classes: 2, native: { spec: 'mlp:width=16,time', transpose: true } },
  'conv1d-sphere': { input: [3], augment: 0, classes: 2, native: { spec: 'conv1d:channels=16', transpose: false } },
  'conv2d-image': { input: [1, 4, 4], augment: 1, classes: 3, native: { spec: 'conv2d:channels=8', transpose: false } },
  'softplus-pow': { input: [2], augment: 1, classes: 2 },
};

test.before(async () => {
  await initBackend('wasm');
});

function importedModel(name: string, seed = 5): Model {
  const c = CASES[name]!;
  return randomModel(configFor(`onnx:${fixture(name)}`, c.input, c.augment, c.classes), seed);
}

/** Native parameter l (field.l.*) ↔ the file's net.(2l).* (PyTorch's Sequential with activations between). */
function toNative(model: Model, c: Case): Model {
  const config = configFor(c.native!.spec, c.input, c.augment, c.classes);
  const params: Params = {};
  for (const p of paramShapes(config)) {
    const m = /^field\.(\d+)\.(weight|bias)$/.exec(p.name);
    const src = m ? model.params[`field.net.${2 * Number(m[1])}.${m[2]}`]! : model.params[p.name]!;
    params[p.name] =
      c.native!.transpose && m?.[2] === 'weight'
        ? { shape: p.shape, data: transpose(src.data, src.shape) }
        : { shape: p.shape, data: src.data };
  }
  return { config, params };
}

function transpose(data: Float32Array, [r, c]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < r!; i++) for (let j = 0; j < c!; j++) out[j * r! + i] = data[i * c! + j]!;
  return out;
}

/** The imported model's gradients under the native names (and layout). */
function gradsAsNative(grads: Record<string, ArrayLike<number>>, model: Model, c: Case): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, g] of Object.entries(grads)) {
    const m = /^field\.net\.(\d+)\.(weight|bias)$/.exec(name);
    const key = m ? `field.${Number(m[1]) / 2}.${m[2]}` : name;
    const data = Float32Array.from(g);
    out[key] = c.native!.transpose && m?.[2] === 'weight' ? transpose(data, model.params[name]!.shape) : data;
  }
  return out;
}

async function adaptiveLoss(model: Model, spec: SolverSpec, x: Float32Array, y: Int32Array) {
  const s = await AdaptiveSessions.create(model.config, getTableau(spec.method), y.length, { session: { threads: 1 } });
  try {
    const S = model.config.stateShape.reduce((a, b) => a * b, 1);
    const inW = x.length / y.length;
    const z = new Float32Array(y.length * S);
    for (let b = 0; b < y.length; b++) for (let i = 0; i < inW; i++) z[b * S + i] = x[b * inW + i]!;
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, p] of Object.entries(model.params))
      feeds[name] = new ort.Tensor('float32', Float32Array.from(p.data), [...p.shape]);
    return await s.lossAndGrads(
      z,
      BigInt64Array.from(y, (v) => BigInt(v)),
      spec,
      feeds,
    );
  } finally {
    await s.release();
  }
}

for (const name of ['mlp-time', 'conv1d-sphere', 'conv2d-image']) {
  test.serial(
    `native equivalence: imported ${name} trains like ${CASES[name]!.native!.spec} (loss, NFE, gradients; rk4 and dopri5)`,
    async (t) => {
      const c = CASES[name]!;
      const imported = importedModel(name);
      const native = toNative(imported, c);
      const { x, y } = randomBatch(imported.config, 16, 3);
      const rk4 = parseSolverSpec('rk4:steps=3');
      const [gi, gn] = [await ortLossAndGrads(imported, rk4, x, y), await ortLossAndGrads(native, rk4, x, y)];
      t.is(gi.nfe, gn.nfe, 'rk4 NFE');
      t.true(Math.abs(gi.loss - gn.loss) <= 1e-6 * Math.max(1, Math.abs(gn.loss)), `rk4 loss ${gi.loss} vs ${gn.loss}`);
      const tol = (scale: number) => 2e-5 * scale + 1e-7;
      const worst = compareGrads(gradsAsNative(gi.grads, imported, c), gn.grads, tol, (m) => t.fail(`rk4 ${m}`), name);
      const dopri5 = parseSolverSpec('dopri5:1e-4');
      const [ai, an] = [await adaptiveLoss(imported, dopri5, x, y), await adaptiveLoss(native, dopri5, x, y)];
      t.deepEqual(ai.stats, an.stats, 'dopri5 accepted/rejected/NFE');
      t.true(
        Math.abs(ai.loss - an.loss) <= 2e-6 * Math.max(1, Math.abs(an.loss)),
        `dopri5 loss ${ai.loss} vs ${an.loss}`,
      );
      const worstA = compareGrads(
        gradsAsNative(ai.grads, imported, c),
        an.grads as Record<string, Float32Array>,
        tol,
        (m) => t.fail(`dopri5 ${m}`),
        name,
      );
      t.log(
        `rk4: nfe ${gi.nfe}, worst gradient error ${worst.toExponential(1)}; dopri5: nfe ${ai.stats.nfe}, worst ${worstA.toExponential(1)}`,
      );
    },
  );
}

test.serial(
  'gradients against PyTorch autograd: every fixture, one batch, the same weights and rk4 solve',
  async (t) => {
    const probe = spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.fail(
        `${TORCH_PYTHON} has no torch (install Debian's python3-torch; .ci/run does): ${probe.stderr?.trim().split('\n').pop() ?? probe.error?.message}`,
      );
      return;
    }
    const names = Object.keys(CASES);
    const steps = 4;
    const runs = names.map((name) => {
      const model = importedModel(name, 9);
      return { name, model, ...randomBatch(model.config, 8, 4) };
    });
    const requests = runs.map(({ name, model, x, y }) => ({
      fixture: name,
      params: Object.fromEntries(
        Object.entries(model.params).map(([k, p]) => [
          k.replace(/^field\./, ''),
          { shape: p.shape, data: Array.from(p.data) },
        ]),
      ),
      x: Array.from(x),
      labels: Array.from(y),
      augment: CASES[name]!.augment,
      steps,
      t0: 0,
      t1: 1,
    }));
    const r = spawnSync(TORCH_PYTHON, ['scripts/onnx-fixtures.py', 'grads'], {
      input: JSON.stringify(requests),
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) return t.fail(`the PyTorch reference failed: ${r.stderr.trim().split('\n').pop()}`);
    const torch = JSON.parse(r.stdout) as { loss: number; grads: Record<string, number[]> }[];
    for (const [k, { name, model, x, y }] of runs.entries()) {
      const ours = await ortLossAndGrads(model, parseSolverSpec(`rk4:steps=${steps}`), x, y, 'float64');
      const ref = Object.fromEntries(
        Object.entries(torch[k]!.grads).map(([p, g]) => [p.startsWith('head.') ? p : `field.${p}`, g]),
      );
      t.true(
        Math.abs(ours.loss - torch[k]!.loss) <= 1e-6 * Math.max(1, Math.abs(torch[k]!.loss)),
        `${name}: loss ${ours.loss} vs torch ${torch[k]!.loss}`,
      );
      t.deepEqual(Object.keys(ours.grads).sort(), Object.keys(ref).sort(), `${name}: the same parameters`);
      const worst = compareGrads(
        ours.grads,
        ref,
        (scale) => 1e-5 * scale + 1e-9,
        (m) => t.fail(`${name} vs torch: ${m}`),
        name,
      );
      t.log(`${name}: loss ${ours.loss.toFixed(6)}, worst gradient error vs torch ${worst.toExponential(1)}`);
    }
  },
);

for (const name of Object.keys(CASES)) {
  test.serial(`float64 finite differences: ${name}`, async (t) => {
    t.true((await finiteDifferences(t, importedModel(name, 13))) >= 8);
  });
}

/** A float64 training graph's gradient of some elements of every parameter (first and last) against central differences. */
async function finiteDifferences(
  t: ExecutionContext,
  model: Model,
  elements = (length: number) => [0, length - 1],
): Promise<number> {
  const { x, y } = randomBatch(model.config, 6, 2);
  const spec = parseSolverSpec('rk4:steps=2');
  const base = await ortLossAndGrads(model, spec, x, y, 'float64');
  const g = ortGraphRunner(model, spec, y.length);
  const eps = 1e-6;
  let checked = 0;
  for (const pname of Object.keys(model.params)) {
    const p = model.params[pname]!;
    for (const i of elements(p.data.length)) {
      const at = async (d: number) => {
        const v = Float64Array.from(p.data);
        v[i]! += d;
        return g(x, y, { [pname]: v });
      };
      const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      const a = base.grads[pname]![i]!;
      t.true(
        Math.abs(fd - a) <= 1e-6 * Math.max(1, Math.abs(a)),
        `${pname}[${i}]: autodiff ${a} vs finite difference ${fd}`,
      );
      checked++;
    }
  }
  return checked;
}

for (const [label, state, wShape, geometry] of [
  ['1-D, stride 2, pads 1/0', [1, 10], [2, 1, 3], { strides: [2], dilations: [1], pads: [1, 0] }],
  [
    '2-D, stride 2×1, dilation 1×2, pads 1',
    [1, 4, 6],
    [2, 1, 3, 2],
    { strides: [2, 1], dilations: [1, 2], pads: [1, 1, 1, 1] },
  ],
] as const) {
  test.serial(
    `a strided Conv in float64 (${label}): onnxruntime's float32 Conv's loss, and finite differences`,
    async (t) => {
      // z → strided Conv (2 channels, half the positions) → Tanh → z's shape again.
      const file = tmpOnnx((b) => {
        b.input('z', 'float32', ['batch', ...state]);
        const w = b.initializer('w', 'float32', [...wShape], new Float32Array(prod(wShape)));
        const conv = b.op('Conv', ['z', w, b.initializer('b', 'float32', [2], new Float32Array(2))], {
          kernel_shape: attr.ints(wShape.slice(2)),
          strides: attr.ints(geometry.strides),
          dilations: attr.ints(geometry.dilations),
          pads: attr.ints(geometry.pads),
        });
        b.output(
          'dz',
          'float32',
          ['batch', ...state],
          b.op('Reshape', [b.op('Tanh', [conv]), b.int64s([-1, ...state])]),
        );
      });
      const model = randomModel(configFor(`onnx:${file}`, [...state], 0, 2), 7);
      const { x, y } = randomBatch(model.config, 6, 2);
      const spec = parseSolverSpec('rk4:steps=2');
      const [f64, f32] = [
        await ortLossAndGrads(model, spec, x, y, 'float64'),
        await ortLossAndGrads(model, spec, x, y),
      ];
      t.true(
        Math.abs(f64.loss - f32.loss) <= 1e-5 * Math.max(1, Math.abs(f32.loss)),
        `loss ${f64.loss} vs ${f32.loss}`,
      );
      t.true((await finiteDifferences(t, model)) >= 4);
    },
  );
}

/** The float64 forward loss of the training graph, with some parameters overridden. */
function ortGraphRunner(model: Model, spec: SolverSpec, batch: number) {
  let session: Promise<{ s: ort.InferenceSession; params: readonly string[] }> | undefined;
  return async (x: Float32Array, y: Int32Array, override: Record<string, Float64Array>): Promise<number> => {
    session ??= (async () => {
      const { trainGraph } = await import('../src/onnx/lower/train-graph.js');
      const tg = trainGraph(model.config, spec, { batch, float: 'float64', gradients: false });
      return { s: await createSession(tg.builder.toBytes(), { threads: 1 }), params: tg.params };
    })();
    const { s, params } = await session;
    const r = await s.run(ortFeeds(model, params, x, y, 'float64', override));
    return Number(r.loss!.data[0]);
  };
}

/** d/dx of each new elementwise op, as a JS reference. */
const OP_CASES: [
  op: string,
  attrs: Record<string, ReturnType<typeof attr.float>>,
  f: (x: number) => number,
  df: (x: number) => number,
][] = [
  ['LeakyRelu', { alpha: attr.float(0.2) }, (x) => (x > 0 ? x : 0.2 * x), (x) => (x > 0 ? 1 : 0.2)],
  [
    'Elu',
    { alpha: attr.float(0.7) },
    (x) => (x > 0 ? x : 0.7 * (Math.exp(x) - 1)),
    (x) => (x > 0 ? 1 : 0.7 * Math.exp(x)),
  ],
  ['Sin', {}, Math.sin, Math.cos],
  ['Cos', {}, Math.cos, (x) => -Math.sin(x)],
  ['Pow', {}, (x) => x ** 3, (x) => 3 * x ** 2],
];

for (const [op, attrs, f, df] of OP_CASES) {
  test(`op ${op}: shape rule and gradient rule against the derivative`, async (t) => {
    const b = new GraphBuilder({ name: op });
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.input('w', 'float32', [2, 3]);
    const y = b.op(op, op === 'Pow' ? [x, b.scalar(3)] : [x], attrs, 'y');
    const loss = b.op('ReduceSum', [b.op('Mul', [y, w])], { keepdims: attr.int(0) }, 'loss');
    t.deepEqual(inferShapes(b).get(y)!.shape, [2, 3]);
    const { grads } = appendGradients(b, loss, [x]);
    b.output('y', 'float32', [2, 3]);
    b.output(grads[x]!, 'float32', [2, 3]);
    const s = await ort.InferenceSession.create(b.toBytes());
    const xs = Float32Array.of(-1.3, -0.4, -0.05, 0.1, 0.6, 1.7);
    const ws = Float32Array.of(0.5, -1, 2, 1.5, -0.3, 0.8);
    const r = await s.run({ x: new ort.Tensor('float32', xs, [2, 3]), w: new ort.Tensor('float32', ws, [2, 3]) });
    t.deepEqual([...r.y!.dims], [2, 3]);
    const gx = r[grads[x]!]!.data as Float32Array;
    xs.forEach((v, i) => {
      t.true(Math.abs((r.y!.data as Float32Array)[i]! - f(v)) < 1e-5, `${op}(${v})`);
      t.true(
        Math.abs(gx[i]! - ws[i]! * df(v)) < 1e-5 * Math.max(1, Math.abs(ws[i]! * df(v))),
        `${op}'(${v}): ${gx[i]} vs ${ws[i]! * df(v)}`,
      );
    });
  });
}

test('shape arithmetic around the symbolic batch folds at build time (Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Equal, Where)', (t) => {
  const g = readOnnxField(readFileSync(fixture('mlp-time')), 'mlp-time.onnx');
  const a = analyzeImported(g, [3]);
  const expand = g.nodes.find((n) => n.op === 'Expand')!;
  t.deepEqual(a.metas.get(expand.inputs[1]!)!.value, [PROBE_BATCH, 1], 'the Expand target is [batch, 1]');
  for (const op of ['Shape', 'Gather', 'ConstantOfShape', 'Equal', 'Where'])
    t.true(
      g.nodes.some((n) => n.op === op),
      `the export has ${op}`,
    );
  const model = { config: configFor(`onnx:${fixture('mlp-time')}`, [3], 0, 2), params: {} as Params };
  model.params = initParams(model.config, () => 0);
  const ops = fieldGraph(model).nodes.map((n) => n.op);
  for (const op of ['Gather', 'ConstantOfShape', 'Equal', 'Where']) t.false(ops.includes(op), `${op} folded away`);
  t.deepEqual(
    ops,
    ['Reshape', 'Shape', 'Concat', 'Expand', 'Concat', 'Gemm', 'Tanh', 'Gemm', 'Tanh', 'Gemm'],
    "the native mlp field's nodes",
  );
  // Gather and ConstantOfShape rules on their own.
  const b = new GraphBuilder();
  const xin = b.input('x', 'float32', [4, 3]);
  const dim = b.op('Gather', [b.op('Shape', [xin]), b.initializer('i', 'int64', [], BigInt64Array.of(1n))]);
  const filled = b.op('ConstantOfShape', [b.op('Unsqueeze', [dim, b.int64s([0])])], {
    value: attr.floats([2]),
    to: attr.int(7),
  });
  const m = inferShapes(b);
  t.deepEqual([m.get(dim)!.shape, m.get(dim)!.value], [[], [3]]);
  t.deepEqual([m.get(filled)!.shape, m.get(filled)!.value], [[3], [2, 2, 2]]);
});

function tmpOnnx(build: (b: GraphBuilder) => void): string {
  const b = new GraphBuilder({ name: 'bad' });
  build(b);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'odeness-onnx-')), 'field.onnx');
  const bytes = b.toBytes();
  writeFileSync(file, bytes);
  return file;
}

test.serial(
  'Gather on a parameter (repeated indices) and on the state: its gradient rule passes float64 finite differences',
  async (t) => {
    // dz = tanh(z[:, [2, 0, 1]] · W[[2, 0, 2]] + b): exporters' index ops on a parameter table and on the state.
    const file = tmpOnnx((b) => {
      b.input('z', 'float32', ['batch', 3]);
      const table = b.initializer('table', 'float32', [4, 3], new Float32Array(12));
      const rows = b.op('Gather', [table, b.int64s([2, 0, 2])], { axis: attr.int(0) });
      const picked = b.op('Gather', ['z', b.int64s([2, 0, 1])], { axis: attr.int(1) });
      const bias = b.initializer('bias', 'float32', [3], new Float32Array(3));
      b.output('dz', 'float32', ['batch', 3], b.op('Tanh', [b.op('Add', [b.op('MatMul', [picked, rows]), bias])]));
    });
    const model = randomModel(configFor(`onnx:${file}`, [3], 0, 2), 3);
    // Every element: rows gathered once, twice (row 2) and never (rows 1, 3).
    t.true((await finiteDifferences(t, model, (n) => Array.from({ length: n }, (_, k) => k))) >= 15);
    // Row 1 of the table is never gathered: no gradient; row 2 twice.
    const { x, y } = randomBatch(model.config, 6, 2);
    const g = (await ortLossAndGrads(model, parseSolverSpec('rk4:steps=2'), x, y, 'float64')).grads['field.table']!;
    t.deepEqual(Array.from(g.slice(3, 6)), [0, 0, 0]);
    t.true(g.slice(6, 9).some((v) => v !== 0));
  },
);

test.serial(
  'a grouped Conv field (group 2, and depthwise): float64 finite differences; float32 gradients equal float64 ones',
  async (t) => {
    // dz = Conv_depthwise(tanh(Conv_group2(z))): z [batch, 4, 5], 4 → 4 channels in 2 groups, then per channel.
    const file = tmpOnnx((b) => {
      b.input('z', 'float32', ['batch', 4, 5]);
      const w = (name: string, shape: number[]) => b.initializer(name, 'float32', shape, new Float32Array(prod(shape)));
      const h = b.op('Conv', ['z', w('g.weight', [4, 2, 3]), w('g.bias', [4])], {
        group: attr.int(2),
        pads: attr.ints([1, 1]),
      });
      const d = b.op('Conv', [b.op('Tanh', [h]), w('d.weight', [4, 1, 3])], {
        group: attr.int(4),
        pads: attr.ints([1, 1]),
      });
      b.output('dz', 'float32', ['batch', 4, 5], d);
    });
    const model = randomModel(configFor(`onnx:${file}`, [4, 5], 0, 2), 11);
    t.true((await finiteDifferences(t, model)) >= 6);
    const { x, y } = randomBatch(model.config, 6, 2);
    const spec = parseSolverSpec('rk4:steps=2');
    const [f32, f64] = [await ortLossAndGrads(model, spec, x, y), await ortLossAndGrads(model, spec, x, y, 'float64')];
    t.true(Math.abs(f32.loss - f64.loss) <= 1e-5 * Math.max(1, Math.abs(f64.loss)), `loss ${f32.loss} vs ${f64.loss}`);
    const worst = compareGrads(
      f32.grads,
      f64.grads,
      (scale) => 1e-4 * scale + 1e-6,
      (m) => t.fail(m),
      'float32',
    );
    t.log(`worst float32 gradient error against float64 ${worst.toExponential(1)}`);
  },
);

/** A training graph's nodes as op and attributes (value names differ between an imported and a native field). */
function trainSignature(field: string, c: Case, nchwcBlock: number): string[] {
  const config = configFor(field, c.input, c.augment, c.classes);
  const g = trainGraph(config, parseSolverSpec('rk4:steps=2'), { batch: 8, nchwcBlock });
  return g.builder.nodes.map((n) => `${n.op} ${JSON.stringify(n.attrs)}`);
}

const isBlocked = (ops: readonly string[]) => ops.some((o) => o.startsWith('com.microsoft.nchwc:'));

test.serial(
  "imported conv fields compile to the native field's kernels: NCHWc where native uses it, portable with ODENESS_NCHWC=0 and on webgpu",
  async (t) => {
    // conv2d-image has 8 hidden channels: whole blocks of 8, not of 16 (then native and imported stay plain).
    const expected: [name: string, block: number, blocked: boolean][] = [
      ['conv1d-sphere', 8, true],
      ['conv1d-sphere', 16, true],
      ['conv2d-image', 8, true],
      ['conv2d-image', 16, false],
      ['conv1d-sphere', 0, false],
      ['conv2d-image', 0, false],
    ];
    for (const [name, block, blocked] of expected) {
      const c = CASES[name]!;
      const imported = trainSignature(`onnx:${fixture(name)}`, c, block);
      t.deepEqual(imported, trainSignature(c.native!.spec, c, block), `${name}, block ${block}: node for node`);
      t.is(isBlocked(imported), blocked, `${name}, block ${block}: blocked kernels`);
    }
    t.is(await nchwcBlockSize('webgpu'), 0, 'webgpu graphs are portable');
    const saved = process.env.ODENESS_NCHWC;
    process.env.ODENESS_NCHWC = '0';
    try {
      t.is(await nchwcBlockSize(), 0, 'ODENESS_NCHWC=0');
    } finally {
      if (saved === undefined) delete process.env.ODENESS_NCHWC;
      else process.env.ODENESS_NCHWC = saved;
    }
    // On this machine's kernels: the imported blocked graph trains like the native blocked one.
    const block = await nchwcBlockSize();
    if (block === 0) return t.log('no NCHWc kernels in this onnxruntime: the portable graphs are compared above');
    const c = CASES['conv1d-sphere']!;
    const model = importedModel('conv1d-sphere', 31);
    const { x, y } = randomBatch(model.config, 16, 3);
    const rk4 = parseSolverSpec('rk4:steps=3');
    const [gi, gn] = [
      await ortLossAndGrads(model, rk4, x, y, 'float32', block),
      await ortLossAndGrads(toNative(model, c), rk4, x, y, 'float32', block),
    ];
    t.true(gi.blocked && gn.blocked);
    t.is(gi.loss, gn.loss);
    t.deepEqual(gradsAsNative(gi.grads, model, c), gn.grads);
  },
);

test.serial(
  'an imported Conv chain without biases, with causal pads and no ReLU between two Convs: blocked gives the portable loss and gradients',
  async (t) => {
    const block = await nchwcBlockSize();
    const file = tmpOnnx((b) => {
      b.input('z', 'float32', ['batch', 2, 6]);
      const w = (name: string, shape: number[]) => b.initializer(name, 'float32', shape, new Float32Array(prod(shape)));
      // 2 → 16 (kernel 3, pads 2/0: causal, no bias) → 16 (1×1, no ReLU) → ReLU → 2 (1×1, bias) → Tanh.
      const h0 = b.op('Conv', ['z', w('c0.weight', [16, 2, 3])], {
        kernel_shape: attr.ints([3]),
        pads: attr.ints([2, 0]),
      });
      const h1 = b.op('Conv', [h0, w('c1.weight', [16, 16, 1]), w('c1.bias', [16])]);
      const h2 = b.op('Conv', [b.op('Relu', [h1]), w('c2.weight', [2, 16, 1]), w('c2.bias', [2])]);
      b.output('dz', 'float32', ['batch', 2, 6], b.op('Tanh', [h2]));
    });
    const model = randomModel(configFor(`onnx:${file}`, [2, 6], 0, 2), 17);
    const { x, y } = randomBatch(model.config, 8, 5);
    const spec = parseSolverSpec('rk4:steps=2');
    const ops = (bl: number) =>
      trainGraph(model.config, spec, { batch: 8, nchwcBlock: bl }).builder.nodes.map((n) => n.op);
    t.true(isBlocked(ops(16)) && isBlocked(ops(8)), 'the chain is blocked under blocks of 8 and 16');
    t.true(ops(16).includes('Tanh'), 'the Tanh after the chain stays');
    if (block === 0) return t.log('no NCHWc kernels in this onnxruntime: the graphs are checked, not run');
    const [blocked, plain] = [
      await ortLossAndGrads(model, spec, x, y, 'float32', block),
      await ortLossAndGrads(model, spec, x, y, 'float32', 0),
    ];
    t.true(blocked.blocked && !plain.blocked);
    t.true(Math.abs(blocked.loss - plain.loss) <= 1e-6 * Math.max(1, Math.abs(plain.loss)), `loss ${blocked.loss}`);
    const worst = compareGrads(
      blocked.grads,
      plain.grads,
      (scale) => 2e-5 * scale + 1e-7,
      (m) => t.fail(m),
      'blocked',
    );
    t.log(`worst gradient error of the blocked chain ${worst.toExponential(1)}`);
  },
);

test('refusals are one line naming the op, the node and the file, before any training', (t) => {
  const erf = tmpOnnx((b) => {
    b.input('z', 'float32', ['batch', 3]);
    b.output('dz', 'float32', ['batch', 3], b.op('Erf', ['z']));
  });
  t.throws(() => parseFieldSpec(`onnx:${erf}`), {
    message: new RegExp(`^${erf}: node n_Erf \\(Erf\\): op Erf is not supported`),
  });
  const autoPad = tmpOnnx((b) => {
    b.input('z', 'float32', ['batch', 2, 4]);
    const w = b.initializer('w', 'float32', [2, 2, 3], new Float32Array(12));
    b.output('dz', 'float32', ['batch', 2, 4], b.op('Conv', ['z', w], { auto_pad: attr.string('SAME_UPPER') }));
  });
  t.throws(() => parseFieldSpec(`onnx:${autoPad}`), {
    message: /field\.onnx: node n_Conv \(Conv\): attribute auto_pad="SAME_UPPER" is not supported$/,
  });
  const strided = tmpOnnx((b) => {
    b.input('z', 'float32', ['batch', 1, 4]);
    const w = b.initializer('w', 'float32', [1, 1, 1], Float32Array.of(1));
    b.output('dz', 'float32', ['batch', 1, 2], b.op('Conv', ['z', w], { strides: attr.ints([2]) }));
  });
  t.throws(
    () => configFor(`onnx:${strided}`, [1, 4], 0, 2) && paramShapes(configFor(`onnx:${strided}`, [1, 4], 0, 2)),
    {
      message:
        /field\.onnx: the output dz has shape \[batch, 1, 2\], the state z has \[batch, 1, 4\]; dz\/dt must have z's shape$/,
    },
  );
  const narrowing = tmpOnnx((b) => {
    b.input('z', 'float32', ['batch', 3]);
    const w = b.initializer('w', 'float32', [3, 2], new Float32Array(6));
    b.output('dz', 'float32', ['batch', 2], b.op('MatMul', ['z', w]));
  });
  t.throws(() => paramShapes(configFor(`onnx:${narrowing}`, [3], 0, 2)), {
    message: /the output dz has shape \[batch, 2\], the state z has \[batch, 3\]/,
  });
  t.throws(() => paramShapes(configFor(`onnx:${fixture('mlp-time')}`, [2], 0, 2)), {
    message: /its state z is \[batch, 3\], the data's state is \[batch, 2\]$/,
  });
});

test('spec: canonical form with the content hash; init=keep|kaiming; freeze keeps initializers out of the parameters', (t) => {
  const file = fixture('softplus-pow');
  const spec = parseFieldSpec(`onnx:${file}`);
  const text = formatFieldSpec(spec);
  const sha = createHashHex(readFileSync(file));
  // Canonical: the file's name, not where it lies; located: with its path, read back to the same spec.
  t.is(text, `onnx:${path.basename(file)},init=keep,sha256=${sha}`);
  const located = formatFieldSpec(spec, { located: true });
  t.is(located, `onnx:${file},init=keep,sha256=${sha}`);
  t.deepEqual(parseFieldSpec(located), spec);
  t.throws(() => parseFieldSpec(`onnx:${file},sha256=${'0'.repeat(64)}`), {
    message: /has sha256 [0-9a-f]{64}, the spec asks for 0{64}/,
  });
  const keep = configFor(`onnx:${file}`, [3], 0, 2);
  const params = initParams(keep, () => 1);
  const g = readOnnxField(readFileSync(file), file);
  t.deepEqual(
    params['field.inner.weight']!.data,
    g.tensors.get('inner.weight')!.data,
    'init=keep starts from the stored values',
  );
  const kaiming = initParams(configFor(`onnx:${file},init=kaiming`, [3], 0, 2), () => 1);
  t.is(kaiming['field.inner.weight']!.data[0], Math.fround(Math.sqrt(2 / 3)));
  t.is(kaiming['field.inner.bias']!.data[0], 0);
  const frozen = configFor(`onnx:${file},freeze=inner.weight|inner.bias`, [3], 0, 2);
  t.deepEqual(
    paramShapes(frozen).map((p) => p.name),
    ['field.outer.weight', 'field.outer.bias', 'head.weight', 'head.bias'],
  );
  t.throws(() => parseFieldSpec(`onnx:${file},freeze=nope`), {
    message:
      /freeze=nope is not a float initializer of the file; it has inner.weight, inner.bias, outer.weight, outer.bias/,
  });
});

test("export: the bundle field.onnx is the user's graph with the trained initializers, names kept", async (t) => {
  const model = importedModel('conv1d-sphere', 21);
  const dir = mkdtempSync(path.join(tmpdir(), 'odeness-byof-'));
  await writeBundle(model, dir);
  const out = readOnnxField(readFileSync(path.join(dir, 'field.onnx')), 'field.onnx');
  const src = readOnnxField(readFileSync(fixture('conv1d-sphere')), 'src');
  t.deepEqual(out.floatInitializers, src.floatInitializers);
  t.deepEqual(
    out.nodes.map((n) => n.name),
    src.nodes.map((n) => n.name),
  );
  for (const name of out.floatInitializers)
    t.deepEqual(out.tensors.get(name)!.data, model.params[`field.${name}`]!.data, name);
  t.true(existsSync(path.join(dir, 'head.onnx')));
});

function createHashHex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

for (const [label, xShape, wShape, geometry] of [
  ['1-D, stride 2, dilation 2, pads 1/2', [2, 2, 9], [3, 2, 3], { strides: [2], dilations: [2], pads: [1, 2] }],
  [
    '2-D, stride 2×1, dilation 1×2, pads 1',
    [2, 2, 6, 7],
    [3, 2, 3, 2],
    { strides: [2, 1], dilations: [1, 2], pads: [1, 1, 1, 1] },
  ],
  ['1-D, group 2, stride 2, pads 1', [2, 4, 9], [6, 2, 3], { strides: [2], dilations: [1], pads: [1, 1], group: 2 }],
  [
    '2-D depthwise (group 3), pads 1',
    [2, 3, 5, 5],
    [3, 1, 3, 3],
    { strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group: 3 },
  ],
] as const) {
  test(`op Conv ${label}: shape rule and gradient rule against finite differences of the (linear) loss`, async (t) => {
    const b = new GraphBuilder({ name: 'conv' });
    const x = b.input('x', 'float32', xShape);
    const w = b.input('w', 'float32', wShape);
    const attrs = {
      kernel_shape: attr.ints(wShape.slice(2)),
      strides: attr.ints(geometry.strides),
      dilations: attr.ints(geometry.dilations),
      pads: attr.ints(geometry.pads),
      ...('group' in geometry ? { group: attr.int(geometry.group) } : {}),
    };
    const y = b.op('Conv', [x, w], attrs, 'y');
    const yShape = inferShapes(b).get(y)!.shape;
    const r = b.input('r', 'float32', yShape);
    const loss = b.op('ReduceSum', [b.op('Mul', [y, r])], { keepdims: attr.int(0) }, 'loss');
    const { grads } = appendGradients(b, loss, [x, w]);
    b.output('loss', 'float32', []);
    b.output('y', 'float32', yShape);
    b.output(grads[x]!, 'float32', xShape);
    b.output(grads[w]!, 'float32', wShape);
    const s = await ort.InferenceSession.create(b.toBytes());
    const size = (d: readonly number[]) => d.reduce((a, c) => a * c, 1);
    const vals = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(1.3 * i + k));
    const feeds = { x: vals(size(xShape), 0), w: vals(size(wShape), 1), r: vals(size(yShape), 2) };
    const run = (f: typeof feeds) =>
      s.run({
        x: new ort.Tensor('float32', f.x, [...xShape]),
        w: new ort.Tensor('float32', f.w, [...wShape]),
        r: new ort.Tensor('float32', f.r, [...yShape]),
      });
    const base = await run(feeds);
    t.deepEqual([...base.y!.dims], [...yShape], "the shape rule gives onnxruntime's output shape");
    for (const [name, key] of [
      [grads[x]!, 'x'],
      [grads[w]!, 'w'],
    ] as const) {
      const g = base[name]!.data as Float32Array;
      for (let i = 0; i < g.length; i += 5) {
        const at = async (d: number) => {
          const v = Float32Array.from(feeds[key]);
          v[i]! += d;
          return Number((await run({ ...feeds, [key]: v })).loss!.data[0]);
        };
        // The loss is linear in x and in w: a central difference with a unit step is exact up to rounding.
        const fd = ((await at(0.5)) - (await at(-0.5))) / 1;
        t.true(
          Math.abs(fd - g[i]!) <= 1e-4 * Math.max(1, Math.abs(g[i]!)),
          `d loss / d ${key}[${i}]: autodiff ${g[i]} vs ${fd}`,
        );
      }
    }
  });
}

test.serial(
  "a study with field: onnx:… runs on the local pool; the file's content hash is part of every job id",
  async (t) => {
    const dir = tempDir();
    const file = path.join(dir, 'f.onnx');
    const bytes = readFileSync(fixture('mlp-time'));
    writeFileSync(file, bytes);
    const study = writeStudy(
      dir,
      's.yaml',
      [
        'datasets: ["spheres:ott2021:dim=3,n=128,testN=32"]',
        `field: onnx:${file}`,
        'grid: [{solver: rk4, steps: [0.5]}]',
        'iterations: 20',
        'batchSize: 32',
        'testSolvers: ["rk4:0.25"]',
        '',
      ].join('\n'),
    );
    const before = planStudy(study).jobs.map((j) => j.id);
    const out = path.join(dir, 'out');
    const r = await cliResult(['study', 'run', study, '--out', out, '--workers', '1']);
    t.is(r.code, 0, r.err);
    const results = readResults(out).all;
    t.is(results.length, 1);
    t.like(results[0], { status: 'done' });
    t.is(results[0]!.job.field, `onnx:f.onnx,init=keep,sha256=${createHashHex(bytes)}`);
    // The same file at another path plans the same jobs (the id follows the content, not the location).
    mkdirSync(path.join(dir, 'elsewhere'));
    writeFileSync(path.join(dir, 'elsewhere', 'f.onnx'), bytes);
    const moved = writeStudy(
      dir,
      'moved.yaml',
      readFileSync(study, 'utf8').replace(file, path.join(dir, 'elsewhere', 'f.onnx')),
    );
    t.deepEqual(
      planStudy(moved).jobs.map((j) => j.id),
      before,
    );
    // The same path with other weights is another job.
    const g = readOnnxField(bytes, file);
    writeFileSync(
      file,
      withInitializers(
        bytes,
        { [g.floatInitializers[0]!]: new Float32Array(g.tensors.get(g.floatInitializers[0]!)!.data.length) },
        file,
      ),
    );
    const after = planStudy(study).jobs.map((j) => j.id);
    t.notDeepEqual(after, before);
  },
);

test('a saved model carries its imported field file: it loads after the original file is gone', async (t) => {
  const dir = tempDir();
  const copy = path.join(dir, 'mine.onnx');
  writeFileSync(copy, readFileSync(fixture('mlp-time')));
  const c = CASES['mlp-time']!;
  const model = randomModel(configFor(`onnx:${copy}`, c.input, c.augment, c.classes), 3);
  const modelDir = path.join(dir, 'model');
  const training = { dataset: 'spheres:dupont2019:dim=2', solver: 'rk4:0.25', seed: 0, iterations: 0 };
  await saveModel(modelDir, model, { ...training, batchSize: 8, lr: 0.01, status: 'complete' } as never);
  rmSync(copy);
  // model.json names the copy beside it, relative to itself (a cluster worker's cache path would not travel).
  const stored = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).config.field;
  t.is(stored.file, 'field-source.onnx');
  const moved = path.join(dir, 'moved');
  renameSync(modelDir, moved);
  const loaded = await loadModel(moved);
  t.is((loaded.config.field as { file: string }).file, path.join(moved, 'field-source.onnx'));
  t.deepEqual(Object.keys(loaded.params).sort(), Object.keys(model.params).sort());
  // The copy is checked by its hash like any field file.
  writeFileSync(path.join(moved, 'field-source.onnx'), readFileSync(fixture('softplus-pow')));
  await t.throwsAsync(loadModel(moved), { message: /sha256/ });
});
