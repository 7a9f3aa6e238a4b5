/**
 * The ort training engine: from the same weights and batch its loss and every
 * gradient equal the tfjs engine's to float32 precision for every field type
 * and every fixed-step solver; whole training steps agree; it reproduces the
 * paper's effect; adaptation, divergence, engine choice and the session cache.
 *
 * tfjs-wasm has no Conv2DBackpropFilter kernel, so the tfjs reference of the
 * conv fields is computed on tfjs's cpu backend (the tfjs engine cannot train
 * conv fields on wasm at all; the ort engine can).
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { evaluateModel } from './helpers/tfjs-evaluate.js';
import { makeSpheres } from '../src/data/spheres.js';
import { Rng } from '../src/random.js';
import { initBackend } from '../src/engines/backend.js';
import { trainMicroBatch } from '../src/models/memory.js';
import { decodeModel } from '../src/graph/ir/graph.js';
import { fieldGraph } from '../src/onnx/lower/model-graphs.js';
import { nchwcBlockSize } from '../src/onnx/nchwc.js';
import { trainGraph } from '../src/onnx/lower/train-graph.js';
import { FIXED_METHODS } from '../src/solvers/tableau.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { parseSolver } from '../src/solvers/solver.js';
import { createSession } from '../src/onnx/runtime/session.js';
import { OrtEngine, createTrainSessionCache } from '../src/train/ort-engine.js';
import { modelConfigFor, trainRun } from '../src/train/run.js';
import { createTfjsEngine } from '../src/train/tfjs-engine.js';
import { chooseEngine, train } from '../src/train/train.js';
import {
  compareGrads,
  configFor,
  ortLossAndGrads,
  randomBatch,
  randomModel,
  relMaxDiff,
  tfjsLossAndGrads,
} from './helpers/ort-compare.js';

test.before(async () => {
  await initBackend('wasm');
});

const FIELDS: [field: string, shape: number[], augment: number, classes: number][] = [
  ['mlp:width=8,act=tanh,time', [3], 1, 3],
  ['mlp:width=8,act=relu', [2], 0, 2],
  ['mlp:width=8,act=softplus,depth=3', [2], 2, 2],
  ['conv1d:channels=4', [3], 1, 3],
  ['conv2d:channels=4', [1, 4, 4], 1, 3],
];

for (const [field, shape, augment, classes] of FIELDS) {
  test.serial(
    `loss and every gradient equal the tfjs engine's for ${field} under every fixed-step solver`,
    async (t) => {
      const config = configFor(field, shape, augment, classes);
      const model = randomModel(config, 7);
      const { x, y } = randomBatch(config, 16, 3);
      t.deepEqual([...FIXED_METHODS].sort(), ['euler', 'heun', 'midpoint', 'rk4', 'rk4_38']);
      const lines: string[] = [];
      // h = 0.3 does not divide [0, 1]: the grid ends with a shorter step, as in fixedGrid.
      for (const solver of FIXED_METHODS.map((m) => `${m}:0.3`)) {
        const spec = parseSolverSpec(solver);
        if (field.startsWith('conv')) await tf.setBackend('cpu');
        const ref = tfjsLossAndGrads(model, spec, x, y);
        await tf.setBackend('wasm');
        const got = await ortLossAndGrads(model, spec, x, y);
        t.true(
          Math.abs(got.loss - ref.loss) <= 2e-6 * Math.max(1, Math.abs(ref.loss)),
          `${solver}: loss ${got.loss} vs ${ref.loss}`,
        );
        t.is(got.accuracy, ref.accuracy, `${solver}: accuracy`);
        // float32 precision: a few ulps of the parameter's largest gradient, plus ~1 ulp of the loss for sums that cancel.
        const worst = compareGrads(
          got.grads,
          ref.grads,
          (scale) => 2e-5 * scale + 2e-7,
          (m) => t.fail(m),
          solver,
        );
        lines.push(
          `${solver} loss Δ ${Math.abs(got.loss - ref.loss).toExponential(1)}, worst gradient error ${worst.toExponential(1)} of its parameter's scale (${got.nodes} nodes, nfe ${got.nfe})`,
        );
      }
      t.log(lines.join('\n'));
    },
  );
}

// onnxruntime's blocked-channel (NCHWc) conv kernels, used by the engines where this machine has them.
const BLOCKED: [field: string, shape: number[], augment: number, classes: number, what: string][] = [
  ['conv1d:channels=16', [5], 1, 3, 'plain 1-channel input, 1×1 closing layer to 1 channel'],
  ['conv2d:channels=16', [1, 4, 4], 1, 3, 'plain 2-channel input, 1×1 closing layer to 2 channels'],
  ['conv2d:channels=16', [15, 3, 3], 1, 2, 'a whole block of input channels (reordered in and out)'],
];

test.serial('the NCHWc block of this machine is found, and ODENESS_NCHWC=0 turns it off', async (t) => {
  const block = await nchwcBlockSize();
  if (process.arch === 'x64') t.true(block === 8 || block === 16, `x86-64 with onnxruntime's MLAS: block ${block}`);
  else t.true(block === 0 || block === 8 || block === 16, `block ${block}`);
  const saved = process.env.ODENESS_NCHWC;
  process.env.ODENESS_NCHWC = '0';
  try {
    t.is(await nchwcBlockSize(), 0);
  } finally {
    if (saved === undefined) delete process.env.ODENESS_NCHWC;
    else process.env.ODENESS_NCHWC = saved;
  }
});

for (const [field, shape, augment, classes, what] of BLOCKED) {
  test.serial(
    `blocked (NCHWc) graph: loss and every gradient equal the tfjs engine's for ${field}, ${what}`,
    async (t) => {
      const block = await nchwcBlockSize();
      if (block === 0) return t.pass('no NCHWc kernels in this onnxruntime: the plain graph is used, tested above');
      const config = configFor(field, shape, augment, classes);
      const model = randomModel(config, 9);
      const { x, y } = randomBatch(config, 16, 4);
      for (const solver of ['euler:0.3', 'rk4:0.5']) {
        const spec = parseSolverSpec(solver);
        await tf.setBackend('cpu');
        const ref = tfjsLossAndGrads(model, spec, x, y);
        await tf.setBackend('wasm');
        const got = await ortLossAndGrads(model, spec, x, y, 'float32', block);
        t.true(got.blocked, `${solver}: the graph uses the blocked kernels`);
        t.true(
          Math.abs(got.loss - ref.loss) <= 2e-6 * Math.max(1, Math.abs(ref.loss)),
          `${solver}: loss ${got.loss} vs ${ref.loss}`,
        );
        t.is(got.accuracy, ref.accuracy, `${solver}: accuracy`);
        const worst = compareGrads(
          got.grads,
          ref.grads,
          (scale) => 2e-5 * scale + 2e-7,
          (m) => t.fail(m),
          solver,
        );
        t.log(`${solver}: worst gradient error ${worst.toExponential(1)} of its parameter's scale`);
      }
    },
  );
}

test.serial(
  'fields with hidden channels that are not whole blocks, and exported graphs, stay plain ONNX',
  async (t) => {
    const block = await nchwcBlockSize();
    const spec = parseSolverSpec('euler:0.5');
    const odd = configFor('conv1d:channels=20', [5], 0, 2);
    const plain = trainGraph(odd, spec, { batch: 4, nchwcBlock: block || 16 });
    t.false(
      plain.builder.nodes.some((n) => n.op.includes(':')),
      'conv1d:channels=20 under a block of 8 or 16',
    );
    const even = randomModel(configFor('conv1d:channels=32', [5], 0, 2), 1);
    t.true(
      trainGraph(even.config, spec, { batch: 4, nchwcBlock: 16 }).builder.nodes.some(
        (n) => n.op === 'com.microsoft.nchwc:Conv',
      ),
    );
    const exported = decodeModel(fieldGraph(even).toBytes());
    t.deepEqual(
      exported.opsetImport.map((o) => o.domain),
      [''],
      'a field file declares the default domain only',
    );
    t.false(exported.graph!.node!.some((n) => (n.domain ?? '') !== ''));
  },
);

test.serial(
  "the blocked field graph (symbolic batch, as the engine evaluates accuracy with it) gives the plain one's f(z)",
  async (t) => {
    const block = await nchwcBlockSize();
    if (block === 0) return t.pass('no NCHWc kernels in this onnxruntime');
    for (const [field, shape, augment] of [
      ['conv1d:channels=32', [7], 0],
      ['conv2d:channels=16', [1, 4, 4], 1],
    ] as const) {
      const model = randomModel(configFor(field, [...shape], augment, 2), 4);
      const batch = 5;
      const S = model.config.stateShape.reduce((a, b) => a * b, 1);
      const z = Float32Array.from(randomBatch({ ...model.config, inputShape: model.config.stateShape }, batch, 6).x);
      const run = async (nchwcBlock: number) => {
        const b = fieldGraph(model, { nchwcBlock });
        const session = await createSession(b.toBytes());
        try {
          const blocked = b.nodes.some((n) => n.op.startsWith('com.microsoft.nchwc:'));
          return {
            blocked,
            dz: (await session.run({ z: new ort.Tensor('float32', z, [batch, ...model.config.stateShape]) })).dz!
              .data as Float32Array,
          };
        } finally {
          await session.release();
        }
      };
      const [blocked, plain] = [await run(block), await run(0)];
      t.true(blocked.blocked && !plain.blocked, field);
      t.is(blocked.dz.length, batch * S);
      t.true(
        relMaxDiff(blocked.dz, plain.dz) < 1e-6,
        `${field}: f(z) differs by ${relMaxDiff(blocked.dz, plain.dz)} of its largest value`,
      );
    }
  },
);

const spheres = makeSpheres({ dim: 2, shells: 'dupont2019', rng: new Rng(3), nTrain: 256, nTest: 64 });

test.serial('training steps of both engines agree from the same weights and batches', async (t) => {
  const config = modelConfigFor(spheres, 'mlp:width=16,time', 1, 0, 1);
  const model = randomModel(config, 5);
  const spec = parseSolverSpec('rk4:0.25');
  const opts = { batchSize: 32, lr: 1e-2 };
  const ortE = await OrtEngine.create(model, opts);
  const tfE = createTfjsEngine(model, opts);
  const rng = new Rng(2);
  try {
    for (let k = 0; k < 5; k++) {
      const idx = rng.permutation(spheres.train.n).slice(0, 32);
      const x = new Float32Array(32 * 2);
      const y = new Int32Array(32);
      idx.forEach((i, j) => (x.set(spheres.train.x.subarray(i * 2, i * 2 + 2), j * 2), (y[j] = spheres.train.y[i]!)));
      const a = await ortE.step(x, y, spec);
      const b = await tfE.step(x, y, spec);
      t.true(Math.abs(a.loss - b.loss) < 1e-5, `step ${k}: loss ${a.loss} vs ${b.loss}`);
      t.is(a.nfe, 16);
      t.is(b.nfe, 16);
    }
    const [p, q] = [ortE.params(), tfE.params()];
    for (const name of Object.keys(q)) {
      const [u, v] = [p[name]!.data, q[name]!.data];
      for (let i = 0; i < v.length; i++)
        t.true(Math.abs(u[i]! - v[i]!) < 1e-5, `${name}[${i}] after 5 steps: ${u[i]} vs ${v[i]}`);
    }
    t.is(ortE.builds.length, 1);
    t.true(ortE.builds[0]!.nodes > 0);
  } finally {
    await ortE.dispose();
    await tfE.dispose();
  }
});

// The paper's effect (test/train-effect.test.ts) with the ort engine and the same thresholds.
const base = {
  dataset: 'spheres:dupont2019:dim=2',
  field: 'mlp:width=32',
  seed: 1,
  batchSize: 128,
  lr: 1e-3,
  engine: 'ort' as const,
};

test.serial(
  'ort engine: euler:0.5 exploits the discretisation: ≥ 95 % own solver, loses ≥ 20 points under rk4:0.01',
  async (t) => {
    const run = await trainRun({ ...base, solver: 'euler:0.5', iterations: 1000 });
    t.is(run.result.engine, 'ort');
    t.is(run.training.engine, 'ort');
    const [own, fine] = evaluateModel(run.model, run.dataset.test, [
      parseSolverSpec('euler:0.5'),
      parseSolverSpec('rk4:0.01'),
    ]);
    t.log(
      `euler:0.5 → own ${own!.accuracy}, rk4:0.01 ${fine!.accuracy}; ${(run.result.wallMs / 1000).toFixed(1)} s for 1000 iterations`,
    );
    t.true(own!.accuracy >= 0.95, `own-solver accuracy ${own!.accuracy}`);
    t.true(own!.accuracy - fine!.accuracy >= 0.2, `drop ${own!.accuracy - fine!.accuracy}`);
    t.is(run.result.nfe.forward, 1000 * 2);
    t.is(run.result.nfe.backward, 1000 * 2);
  },
);

test.serial('ort engine: rk4:0.05 keeps ODE semantics: loses ≤ 2 points under rk4:0.01', async (t) => {
  const run = await trainRun({ ...base, solver: 'rk4:0.05', iterations: 250 });
  t.is(run.result.engine, 'ort');
  const [own, fine] = evaluateModel(run.model, run.dataset.test, [
    parseSolverSpec('rk4:0.05'),
    parseSolverSpec('rk4:0.01'),
  ]);
  t.log(
    `rk4:0.05 → own ${own!.accuracy}, rk4:0.01 ${fine!.accuracy}; ${(run.result.wallMs / 1000).toFixed(1)} s for 250 iterations`,
  );
  t.true(own!.accuracy > 0.6, `the model learned something: ${own!.accuracy}`);
  t.true(own!.accuracy - fine!.accuracy <= 0.02, `drop ${own!.accuracy - fine!.accuracy}`);
  t.is(run.result.log[0]!.nfeForward, 80);
});

test.serial(
  'ort engine adaptation: Hairer start as on tfjs, checks counted, a new graph per step size with its build time',
  async (t) => {
    const config = modelConfigFor(spheres, 'mlp:width=16', 0, 0, 1);
    const model = randomModel(config, 3);
    const common = {
      solver: parseSolverSpec('euler:0.1'),
      iterations: 40,
      batchSize: 32,
      lr: 1e-2,
      logEvery: 10,
      adapt: { checkEvery: 10, threshold: 0.1 },
    };
    const ort = await train(model, spheres.train, { ...common, rng: new Rng(4), engine: 'ort' });
    const tfjs = await train(model, spheres.train, { ...common, rng: new Rng(4), engine: 'tfjs' });
    t.is(ort.engine, 'ort');
    t.is(tfjs.engine, 'tfjs');
    t.is(ort.adaptation.length, 4);
    const h0 = (r: typeof ort) => r.adaptation[0]!.paramBefore;
    t.true(Math.abs(h0(ort) - h0(tfjs)) <= 1e-5 * h0(tfjs), `initial step ${h0(ort)} vs ${h0(tfjs)}`);
    t.true(ort.nfe.checks > 0);
    const sizes = new Set(ort.adaptation.flatMap((d) => [d.before, d.after]));
    const built = ort.graphBuilds.filter((b) => !b.cached);
    t.true(
      ort.graphBuilds.length >= 1 && ort.graphBuilds.length <= sizes.size,
      `${ort.graphBuilds.length} graphs for ${sizes.size} step sizes`,
    );
    for (const b of built) t.true(b.graphMs > 0 && b.sessionMs > 0);
    t.log(ort.adaptation.map((d) => `${d.iteration}: ${d.action} ${d.before} → ${d.after}`).join('; '));
    t.log(
      ort.graphBuilds
        .map(
          (b) =>
            `${b.solver}: ${b.nodes} nodes, graph ${b.graphMs.toFixed(0)} ms + session ${b.sessionMs.toFixed(0)} ms${b.cached ? ' (cached)' : ''}`,
        )
        .join('; '),
    );
  },
);

test.serial(
  'ort engine: a NaN/Inf loss stops training with the iteration and step size, keeping the last good checkpoint',
  async (t) => {
    const config = modelConfigFor(spheres, 'mlp:width=16,act=relu', 0, 0, 1);
    const rng = new Rng(5);
    const model = { config, params: randomModel(config, 5).params };
    const res = await train(model, spheres.train, {
      solver: parseSolverSpec('euler:0.5'),
      iterations: 200,
      batchSize: 32,
      lr: 1e12,
      rng: rng.fork('b'),
      logEvery: 1,
      engine: 'ort',
    });
    t.is(res.engine, 'ort');
    t.truthy(res.diverged, 'expected divergence with lr = 1e12');
    t.regex(res.diverged!.message, /iteration \d+/);
    t.regex(res.diverged!.message, /euler:0\.5/);
    for (const p of Object.values(res.model.params))
      t.true(p.data.every(Number.isFinite), 'checkpoint holds finite weights');
  },
);

test.serial(
  'engine choice: both engines take every solver; auto picks ort on wasm for fixed and adaptive steps; ort trains dopri5',
  async (t) => {
    const config = modelConfigFor(spheres, 'mlp:width=8', 0, 0, 1);
    const model = randomModel(config, 1);
    const { x, y } = randomBatch(config, 8, 1);
    const o = { batchSize: 8, lr: 1e-3 };
    t.is(await chooseEngine('ort', model, parseSolver('dopri5:1e-3'), x, y, o), 'ort');
    t.is(await chooseEngine('auto', model, parseSolver('dopri5:1e-3'), x, y, o), 'ort');
    t.is(await chooseEngine('auto', model, parseSolver('rk4:0.1'), x, y, o), 'ort');
    t.is(await chooseEngine('tfjs', model, parseSolver('rk4:0.1'), x, y, o), 'tfjs');
    const res = await train(model, spheres.train, {
      solver: parseSolverSpec('dopri5:1e-3'),
      iterations: 3,
      batchSize: 8,
      lr: 1e-3,
      rng: new Rng(1),
      engine: 'ort',
      logEvery: 1,
    });
    t.is(res.engine, 'ort');
    t.is(res.log.length, 3);
    for (const e of res.log)
      t.true(
        e.nfeForward >= 8 && Number.isFinite(e.loss),
        `iteration ${e.iteration}: nfe ${e.nfeForward}, loss ${e.loss}`,
      );
    t.notDeepEqual(
      res.model.params['field.0.weight']!.data,
      model.params['field.0.weight']!.data,
      'Adam moved the weights',
    );
  },
);

test.serial(
  'sessions are cached per architecture, solver grid and batch size in the cache the caller shares; threads are configurable',
  async (t) => {
    const config = modelConfigFor(spheres, 'mlp:width=12', 0, 0, 1);
    const spec = parseSolverSpec('midpoint:0.2');
    const { x, y } = randomBatch(config, 16, 2);
    let sessions = createTrainSessionCache();
    const make = (seed: number, threads?: number) =>
      OrtEngine.create(randomModel(config, seed), { batchSize: 16, lr: 1e-3, threads, sessions });
    const [a, b, c] = [await make(1), await make(2), await make(3, 2)];
    try {
      await a.step(x, y, spec);
      await b.step(x, y, spec); // another model of the same architecture: same session
      await c.step(x, y, spec); // two intra-op threads: its own session
      await a.step(x, y, parseSolverSpec('midpoint:steps=4')); // a new step size: a new graph
      await a.step(x, y, spec); // back to the first one: cached
      t.false(a.builds[0]!.cached);
      t.true(b.builds[0]!.cached);
      t.false(c.builds[0]!.cached);
      t.deepEqual(
        a.builds.map((x) => x.cached),
        [false, false, true],
      );
      t.deepEqual(
        a.builds.map((x) => x.solver),
        ['midpoint:0.2', 'midpoint:steps=4', 'midpoint:0.2'],
      );
    } finally {
      await Promise.all([a.dispose(), b.dispose(), c.dispose()]);
    }
    t.is(sessions.size, 3, 'the engines are gone, their sessions stay in the shared cache');
    // An engine without a cache keeps its own and releases it on dispose.
    const own = await OrtEngine.create(randomModel(config, 5), { batchSize: 16, lr: 1e-3 });
    await own.step(x, y, spec);
    t.false(own.builds[0]!.cached, 'not shared with the cache above');
    await own.dispose();
    // Idle sessions beyond the cache size are released, least recently used first.
    await sessions.clear();
    t.is(sessions.size, 0);
    sessions = createTrainSessionCache(1);
    const d = await make(4);
    try {
      // Eviction runs when a new session is built: building euler:0.1 evicts euler:0.5 (least recently
      // used of the two idle ones), building euler:0.5 again evicts euler:0.25; euler:0.2 stays.
      for (const s of ['euler:0.5', 'euler:0.25', 'euler:0.2', 'euler:0.1', 'euler:0.5', 'euler:0.2'])
        await d.step(x, y, parseSolverSpec(s));
      t.deepEqual(
        d.builds.map((x) => x.cached),
        [false, false, false, false, false, true],
      );
    } finally {
      await d.dispose();
      await sessions.clear();
    }
  },
);

test.serial('a study job trims the cache to its most recent idle session (each holds its memory arena)', async (t) => {
  const sessions = createTrainSessionCache();
  const config = modelConfigFor(spheres, 'mlp:width=12', 0, 0, 1);
  const { x, y } = randomBatch(config, 16, 2);
  const make = () => OrtEngine.create(randomModel(config, 1), { batchSize: 16, lr: 1e-3, sessions });
  const first = await make();
  for (const s of ['euler:0.5', 'euler:0.25', 'euler:0.2']) await first.step(x, y, parseSolverSpec(s));
  await first.dispose();
  await sessions.trim(1);
  const next = await make();
  try {
    for (const s of ['euler:0.2', 'euler:0.5', 'euler:0.25']) await next.step(x, y, parseSolverSpec(s));
    t.deepEqual(
      next.builds.map((b) => b.cached),
      [true, false, false],
      'only the last-used session (euler:0.2) survived the trim',
    );
  } finally {
    await next.dispose();
    await sessions.clear();
  }
});

test.serial('Adam as a second graph updates the parameters bit for bit like Adam on typed arrays', async (t) => {
  const config = modelConfigFor(spheres, 'mlp:width=12', 0, 0, 1);
  const model = randomModel(config, 8);
  const spec = parseSolverSpec('heun:0.25');
  const { x, y } = randomBatch(config, 16, 4);
  const typed = await OrtEngine.create(model, { batchSize: 16, lr: 1e-2, optimizer: 'typed' });
  const graph = await OrtEngine.create(model, { batchSize: 16, lr: 1e-2, optimizer: 'graph' });
  try {
    t.is(typed.optimizer, 'typed');
    t.is(graph.optimizer, 'graph');
    for (let k = 0; k < 4; k++) {
      const [a, b] = [await typed.step(x, y, spec), await graph.step(x, y, spec)];
      t.is(a.loss, b.loss);
    }
    const [p, q] = [typed.params(), graph.params()];
    for (const name of Object.keys(p)) t.deepEqual(Array.from(p[name]!.data), Array.from(q[name]!.data), name);
    const acc = [await typed.accuracy(x, y, spec), await graph.accuracy(x, y, spec)];
    t.deepEqual(acc[0], acc[1]);
  } finally {
    await typed.dispose();
    await graph.dispose();
  }
});

test.serial(
  'micro-batches: steps in 4 micro-batches have the loss, accuracy and updates of whole batches (float32 sums)',
  async (t) => {
    const config = configFor('conv1d:channels=6', [12], 0, 3);
    const model = randomModel(config, 9);
    const spec = parseSolverSpec('rk4:0.25');
    const whole = await OrtEngine.create(model, { batchSize: 32, lr: 1e-2, optimizer: 'typed', microBatch: 32 });
    const parts = await OrtEngine.create(model, { batchSize: 32, lr: 1e-2, optimizer: 'typed', microBatch: 8 });
    try {
      t.is(parts.microBatch, 8);
      // Three different batches: Adam's later updates weigh each step's gradient against the earlier ones, so a
      // micro-batch gradient that is not the batch's mean gradient moves the parameters elsewhere.
      for (let k = 0; k < 3; k++) {
        const { x, y } = randomBatch(config, 32, 5 + k);
        const [a, b] = [await whole.step(x, y, spec), await parts.step(x, y, spec)];
        t.true(Math.abs(a.loss - b.loss) <= 2e-6 * Math.abs(a.loss), `step ${k}: loss ${a.loss} vs ${b.loss}`);
        t.true(Math.abs(a.accuracy - b.accuracy) < 1e-6, `step ${k}: accuracy ${a.accuracy} vs ${b.accuracy}`);
      }
      t.is(parts.builds[0]!.batch, 8, 'the session is built for the micro-batch');
      const [p, q] = [whole.params(), parts.params()];
      let moved = 0;
      for (const name of Object.keys(p)) {
        const [u, v, w] = [p[name]!.data, q[name]!.data, model.params[name]!.data];
        for (let i = 0; i < u.length; i++) {
          t.true(Math.abs(u[i]! - v[i]!) <= 2e-5, `${name}[${i}]: ${u[i]} vs ${v[i]}`);
          if (Math.abs(u[i]! - w[i]!) > 1e-3) moved++;
        }
      }
      t.true(moved > 100, `only ${moved} parameters moved`);
      await t.throwsAsync(OrtEngine.create(model, { batchSize: 32, lr: 1e-3, microBatch: 5 }), {
        message: /micro-batch 5 must be a positive divisor of the batch size 32/,
      });
    } finally {
      await whole.dispose();
      await parts.dispose();
    }
  },
);

test('trainMicroBatch: the whole batch while its widest activation fits the cache budget, else the largest fitting divisor ≥ 8', (t) => {
  const conv900 = configFor('conv1d:channels=32', [900], 0, 2); // 115 200 bytes per sample
  t.is(trainMicroBatch(conv900, 128), 16);
  t.is(trainMicroBatch(conv900, 100), 10);
  t.is(trainMicroBatch(conv900, 127), 127, 'a prime batch stays whole');
  t.is(trainMicroBatch(conv900, 16), 16);
  const mnist = configFor('conv2d:channels=128', [1, 28, 28], 0, 10); // 401 408 bytes per sample: none fits, 8 is the floor
  t.is(trainMicroBatch(mnist, 256), 8);
  t.is(trainMicroBatch(configFor('mlp:width=256', [900], 0, 2), 256), 256, 'the d=900 MLP at batch 256 fits');
  t.is(trainMicroBatch(configFor('mlp:width=64', [2], 0, 2), 4096), 4096);
});

test.serial(
  'the tfjs engine behind the shared loop leaks no tensors (the default engine is now auto → ort for fixed steps)',
  async (t) => {
    const config = modelConfigFor(spheres, 'mlp:width=8', 0, 0, 1);
    const before = tf.memory().numTensors;
    const counts = new Map<number, number>();
    const res = await train(randomModel(config, 6), spheres.train, {
      solver: parseSolverSpec('rk4:0.5'),
      iterations: 40,
      batchSize: 32,
      lr: 1e-3,
      rng: new Rng(1),
      logEvery: 10,
      engine: 'tfjs',
      adapt: { checkEvery: 20, start: 'spec' },
      onIteration: (it) => counts.set(it, tf.memory().numTensors),
    });
    t.is(res.engine, 'tfjs');
    t.is(counts.get(40), counts.get(10));
    t.is(tf.memory().numTensors, before);
  },
);
