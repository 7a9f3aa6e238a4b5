/**
 * Training-step speed of both engines against a plain tfjs baseline, on the
 * anchor workloads of shared/README.md: MLP field d→h→h→d with tanh, classic
 * rk4 with 10 steps over [0, 1], batch 256, Adam, cross-entropy.
 *
 *   engine "ort":  src/train/ort-engine.ts — one onnxruntime session run per step
 *                  (loss, accuracy, all gradients), Adam on typed arrays.
 *   engine "tfjs": src/train/tfjs-engine.ts — tfjs tape on the default backend
 *                  (wasm here, with the explicit-transpose matMul gradient that
 *                  src/engines/backend.ts registers).
 *   baseline:      the same model written naively with stock tfjs ops and
 *                  optimizer.minimize on the default backend with tfjs's own
 *                  gradients. It runs in a CHILD process that picks the backend
 *                  itself and never calls initBackend, so the explicit-transpose
 *                  gradient is not registered there.
 *
 * Every number is the median over timed steps after warm-up steps (fewer timed
 * steps for a very slow baseline: see baseline_steps and notes).
 * speedup = baseline_ms / ms_per_step. Also measured: the Adam update on typed
 * arrays vs as a second onnxruntime graph, and the graph build times.
 *
 *   npx tsx scripts/bench-train.ts [--json] [--steps 20] [--warmup 3] [--threads 1]
 *       [--baseline-steps-large 3] [--only 2,10,900] [--engines ort,tfjs]
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ADAM_GRAPH_MIN_PARAMS } from '../src/train/ort-engine.js';
import { Rng } from '../src/data/random.js';

const args = process.argv.slice(2);
function opt(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}
const num = (name: string, fallback: number) => Number(opt(name, String(fallback)));

const WORKLOADS = [
  { dim: 2, hidden: 64 },
  { dim: 10, hidden: 64 },
  { dim: 900, hidden: 256 },
] as const;
const BATCH = 256;
const STEPS_RK4 = 10;
const CLASSES = 2;
const LR = 1e-3;
/** torchdiffeq 0.2.5 on one thread, ms per step (shared/README.md anchor table, 16-core machine). */
const TORCHDIFFEQ_1T: Record<number, number> = { 2: 15.4, 10: 18.1, 900: 395 };
/** speedup over the naive baseline that means parity with torchdiffeq on one thread (the issue's numbers). */
const PARITY_SPEEDUP: Record<number, number> = { 2: 15, 10: 17, 900: 47 };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seeded standard normals from the project's PRNG, so every run uses the same weights. */
function normals(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.normal();
}

/** Seeded data and Kaiming-style weights shared by every engine (layout of src/models/types.ts). */
function workloadData(dim: number, hidden: number) {
  const normal = normals(dim * 1000 + hidden);
  const x = Float32Array.from({ length: BATCH * dim }, () => normal());
  const y = Int32Array.from({ length: BATCH }, (_, i) => (x[i * dim]! > 0 ? 1 : 0));
  const layers: [string, number, number][] = [['field.0', dim, hidden], ['field.1', hidden, hidden], ['field.2', hidden, dim], ['head', dim, CLASSES]];
  const params: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, i, o] of layers) {
    const std = Math.sqrt(2 / i);
    params[`${name}.weight`] = { shape: [i, o], data: Float32Array.from({ length: i * o }, () => std * normal()) };
    params[`${name}.bias`] = { shape: [o], data: new Float32Array(o) };
  }
  return { x, y, params };
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------- baseline (child process)

/** The default backend as initBackend would pick it (native binding, else wasm, else cpu) — without touching gradients. */
async function defaultBackendWithoutCustomGradients(): Promise<string> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') && (await tf.setBackend('tensorflow'))) return 'tensorflow';
    } catch {
      // not installed
    }
  }
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
    if (await tf.setBackend('wasm')) return 'wasm';
  } catch {
    // fall through
  }
  await tf.setBackend('cpu');
  return 'cpu';
}

/** The naive model: stock tfjs ops, RK4 written out, optimizer.minimize. */
async function baselineChild(): Promise<void> {
  const dim = num('dim', 2);
  const hidden = num('hidden', 64);
  const steps = num('steps', 20);
  const warmup = num('warmup', 3);
  const backend = await defaultBackendWithoutCustomGradients();
  await tf.ready();
  const { x, y, params } = workloadData(dim, hidden);
  const v = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.variable(tf.tensor(p.data, p.shape))]));
  const xb = tf.tensor2d(x, [BATCH, dim]);
  const yb = tf.oneHot(tf.tensor1d(y, 'int32'), CLASSES);
  const f = (z: tf.Tensor) => {
    const h1 = tf.tanh(tf.add(tf.matMul(z, v['field.0.weight']!), v['field.0.bias']!));
    const h2 = tf.tanh(tf.add(tf.matMul(h1, v['field.1.weight']!), v['field.1.bias']!));
    return tf.add(tf.matMul(h2, v['field.2.weight']!), v['field.2.bias']!);
  };
  const h = 1 / STEPS_RK4;
  const optimizer = tf.train.adam(LR);
  const step = () => {
    const loss = optimizer.minimize(() => {
      let z: tf.Tensor = xb;
      for (let i = 0; i < STEPS_RK4; i++) {
        const k1 = f(z);
        const k2 = f(tf.add(z, tf.mul(k1, h / 2)));
        const k3 = f(tf.add(z, tf.mul(k2, h / 2)));
        const k4 = f(tf.add(z, tf.mul(k3, h)));
        z = tf.add(z, tf.mul(tf.add(tf.add(k1, tf.mul(k2, 2)), tf.add(tf.mul(k3, 2), k4)), h / 6));
      }
      const logits = tf.add(tf.matMul(z, v['head.weight']!), v['head.bias']!);
      return tf.losses.softmaxCrossEntropy(yb, logits) as tf.Scalar;
    }, true)!;
    loss.dataSync();
    loss.dispose();
  };
  const ms: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t = performance.now();
    step();
    if (i >= warmup) ms.push(performance.now() - t);
  }
  process.stdout.write(JSON.stringify({ backend, ms: median(ms), steps, warmup }) + '\n');
}

function runBaseline(dim: number, hidden: number, steps: number, warmup: number): Promise<{ backend: string; ms: number; steps: number; warmup: number }> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, script, '--baseline-child', '--dim', String(dim), '--hidden', String(hidden), '--steps', String(steps), '--warmup', String(warmup)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`baseline child (d=${dim}) failed with code ${code}: ${err.slice(-500)}`));
      else resolve(JSON.parse(line));
    });
  });
}

// ---------------------------------------------------------------- engines and Adam (this process)

async function main(): Promise<void> {
  const json = args.includes('--json');
  const steps = num('steps', 20);
  const warmup = num('warmup', 3);
  const threads = num('threads', 1);
  const largeBaselineSteps = num('baseline-steps-large', 3);
  const only = opt('only', '').split(',').filter(Boolean).map(Number);
  const engines = opt('engines', 'ort,tfjs').split(',').filter(Boolean) as ('ort' | 'tfjs')[];
  const workloads = WORKLOADS.filter((w) => only.length === 0 || only.includes(w.dim));
  const notes: string[] = [
    'baseline_ms: naive tfjs (stock ops, tfjs default gradients, optimizer.minimize) on the default backend, timed in a child process that never calls initBackend, so the explicit-transpose matMul gradient is not registered there',
    `engine ort: onnxruntime ${ort.env.versions?.common ?? ''} on ${threads} intra-op thread(s), the whole step (batch copy, one session run, Adam: typed arrays below ${ADAM_GRAPH_MIN_PARAMS} parameters, the Adam graph from there on); engine tfjs: the project's tfjs engine (explicit-transpose matMul gradient on wasm)`,
    `parity with torchdiffeq on one thread = speedup >= ${workloads.map((w) => `${PARITY_SPEEDUP[w.dim]} (d=${w.dim})`).join(', ')}; torchdiffeq 1-thread ms on the 16-core anchor machine: ${workloads.map((w) => `${TORCHDIFFEQ_1T[w.dim]} (d=${w.dim})`).join(', ')}`,
  ];

  // Baselines first, one child at a time (nothing else runs meanwhile).
  const baselines = new Map<number, { backend: string; ms: number; steps: number; warmup: number }>();
  for (const w of workloads) {
    const large = w.dim >= 100;
    const bSteps = large ? largeBaselineSteps : steps;
    const bWarm = large ? 1 : warmup;
    log(`baseline d=${w.dim} h=${w.hidden}: ${bWarm} warm-up + ${bSteps} timed steps…`);
    const b = await runBaseline(w.dim, w.hidden, bSteps, bWarm);
    baselines.set(w.dim, b);
    log(`  ${b.ms.toFixed(1)} ms/step (${b.backend})`);
    if (large && bSteps < 20) notes.push(`d=${w.dim} baseline: median of ${bSteps} steps after ${bWarm} warm-up (about ${(b.ms / 1000).toFixed(0)} s per step is too slow for 20)`);
  }

  const { initBackend } = await import('../src/engines/backend.js');
  const backend = await initBackend();
  const { createEngine } = await import('../src/train/train.js');
  const { Adam, AdamGraph } = await import('../src/train/adam.js');
  const { parseFieldSpec } = await import('../src/models/spec.js');
  const spec = { kind: 'fixed' as const, method: 'rk4', steps: STEPS_RK4 };

  const rows: Record<string, unknown>[] = [];
  const builds: Record<string, unknown>[] = [];
  const adamRows: Record<string, unknown>[] = [];
  for (const w of workloads) {
    const { x, y, params } = workloadData(w.dim, w.hidden);
    const config = { inputShape: [w.dim], augment: 0, stateShape: [w.dim], classes: CLASSES, field: parseFieldSpec(`mlp:width=${w.hidden}`), t0: 0, t1: 1 };
    const model = { config, params };
    const base = baselines.get(w.dim)!;
    for (const name of engines) {
      const large = w.dim >= 100 && name === 'tfjs';
      const n = large ? Math.min(steps, 10) : steps;
      log(`${name} d=${w.dim} h=${w.hidden}: ${warmup} warm-up + ${n} timed steps…`);
      const engine = await createEngine(name, model, { batchSize: BATCH, lr: LR, threads });
      const ms: number[] = [];
      for (let i = 0; i < warmup + n; i++) {
        const t = performance.now();
        await engine.step(x, y, spec);
        if (i >= warmup) ms.push(performance.now() - t);
      }
      for (const b of engine.builds) builds.push({ dim: w.dim, hidden: w.hidden, ...b });
      await engine.dispose();
      const perStep = median(ms);
      if (n < 20) notes.push(`d=${w.dim} ${name}: median of ${n} steps`);
      rows.push({ dim: w.dim, hidden: w.hidden, batch: BATCH, engine: name, ms_per_step: +perStep.toFixed(2), ms: +perStep.toFixed(2), baseline_ms: +base.ms.toFixed(2), speedup: +(base.ms / perStep).toFixed(2), steps: n, baseline_steps: base.steps });
      log(`  ${perStep.toFixed(2)} ms/step, speedup ${(base.ms / perStep).toFixed(1)}×`);
    }

    // Adam: typed arrays vs a second onnxruntime graph, on this workload's parameters.
    const names = Object.keys(params);
    const shapes = names.map((k) => params[k]!.shape);
    const grads = names.map((k) => Float32Array.from(params[k]!.data, (_, i) => Math.sin(i) * 1e-2));
    const gradTensors = grads.map((g, k) => new ort.Tensor('float32', g, shapes[k]!));
    const arrays = names.map((k) => params[k]!.data.slice());
    const typed = new Adam(arrays.map((a) => a.length), { lr: LR });
    const graph = await AdamGraph.create(arrays, shapes, { lr: LR }, threads);
    const tTyped: number[] = [];
    const tGraph: number[] = [];
    for (let i = 0; i < 25; i++) {
      let t = performance.now();
      typed.step(arrays, grads);
      if (i >= 5) tTyped.push(performance.now() - t);
      t = performance.now();
      await graph.step(gradTensors);
      if (i >= 5) tGraph.push(performance.now() - t);
    }
    await graph.release();
    adamRows.push({ dim: w.dim, hidden: w.hidden, params: arrays.reduce((s, a) => s + a.length, 0), typed_ms: +median(tTyped).toFixed(3), graph_ms: +median(tGraph).toFixed(3) });
  }

  const best = workloads.map((w) => {
    const mine = rows.filter((r) => r.dim === w.dim);
    const top = mine.reduce((a, b) => ((a.speedup as number) >= (b.speedup as number) ? a : b));
    return { dim: w.dim, engine: top.engine, speedup: top.speedup, parity_speedup: PARITY_SPEEDUP[w.dim], at_parity: (top.speedup as number) >= PARITY_SPEEDUP[w.dim]! };
  });
  const result = {
    backend: backend.name,
    baseline_backend: [...baselines.values()][0]?.backend,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.versions.node },
    threads,
    rows,
    best,
    adam: adamRows,
    builds,
    notes,
  };
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(`backend ${result.backend} (baseline on ${result.baseline_backend}); ${result.machine.cpus} CPUs; ort threads ${threads}\n`);
    process.stdout.write('   d      h  batch  engine   ms/step   baseline ms  speedup\n');
    for (const r of rows) {
      process.stdout.write(`${String(r.dim).padStart(4)} ${String(r.hidden).padStart(6)} ${String(r.batch).padStart(6)}  ${String(r.engine).padEnd(6)} ${String(r.ms_per_step).padStart(9)} ${String(r.baseline_ms).padStart(13)} ${String(r.speedup).padStart(8)}\n`);
    }
    for (const b of best) process.stdout.write(`d=${b.dim}: best ${b.engine} ${b.speedup}× (parity with torchdiffeq: ${b.parity_speedup}×) ${b.at_parity ? 'at parity' : 'below parity'}\n`);
    for (const a of adamRows) process.stdout.write(`adam d=${a.dim}: ${a.params} params, typed arrays ${a.typed_ms} ms, graph ${a.graph_ms} ms\n`);
    for (const b of builds) process.stdout.write(`build d=${b.dim} ${b.solver}: ${b.nodes} nodes, graph ${(b.graphMs as number).toFixed(0)} ms, session ${(b.sessionMs as number).toFixed(0)} ms\n`);
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
  }
}

if (args.includes('--baseline-child')) await baselineChild();
else await main();
