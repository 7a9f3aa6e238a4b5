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
 * Every MLP row has gflop_per_step (3 × the forward products) and gflops; the
 * d=900 row also has matmul_peak_gflops (one thread, 1024³ float32 product, the
 * best of onnxruntime's Gemm and torch, measured before and after the row) and
 * peak_fraction = gflops / matmul_peak_gflops.
 *
 * Every number is the median over timed steps after warm-up steps (fewer timed
 * steps for a very slow baseline: see baseline_steps and notes).
 * speedup = baseline_ms / ms_per_step. Also measured: the Adam update on typed
 * arrays vs as a second onnxruntime graph, and the graph build times.
 *
 * More rows (issue 13): adaptive training — MLP 2→64→64→2 on 2-D spheres
 * (dupont2019), dopri5 rtol = atol = 1e-3 and 1e-5, batch 128 — with
 * ms_per_nfe and forward NFE per iteration; the paper's conv1d field on 900-d
 * spheres, euler × 8, batch 128 (ms per iteration). When /usr/bin/python3 has
 * torch and torchdiffeq (under $TDQ, default /tmp/tdq), the same workloads
 * run in ../shared/anchors/ scripts in this run and every row gains
 * torchdiffeq_ms and ratio = torchdiffeq time / odeness time (per NFE for
 * the adaptive rows); otherwise a note says why they are missing. The machine's
 * speed drifts by minutes, so the two tools are timed back to back in each of
 * --rounds rounds: ratio is the median of the rounds' ratios (ratio_rounds).
 *
 *   npx tsx scripts/bench-train.ts [--json] [--steps 20] [--warmup 3] [--threads 1]
 *       [--baseline-steps-large 3] [--only 2,10,900] [--engines ort,tfjs]
 *       [--no-baseline] [--no-torch] [--no-adaptive] [--no-conv] [--adaptive-iters 20] [--rounds 3]
 *       [--device webgpu|cuda] [--write-readme [README.md]]
 *   npx tsx scripts/bench-train.ts --from RESULT.json --write-readme [README.md]
 *
 * --write-readme replaces the tables between the bench:train markers of README.md's Performance section with
 * this run's (scripts/lib/readme-performance.ts: date, machine, load, every ratio from the row's own columns);
 * --from renders them from a saved --json result instead of running. Run the whole benchmark on a quiet machine
 * for the README (the default 3 rounds or more, all workloads).
 *
 * --device adds rows of the ort engine on that device (engine `ort@webgpu`) beside the CPU rows, with
 * where onnxruntime placed each graph's nodes in `builds`. On a software device (lavapipe) these rows
 * show correctness and overhead, not GPU speed.
 *
 * --byof (issue 23): an imported ONNX field (`onnx:FILE`) against the native field with the same weights,
 * on the ort engine: the d=2, h=64 MLP above (its portable field.onnx imported back), and the torch.onnx.export
 * fixtures test/fixtures/onnx/mlp-time.onnx (vs mlp:width=16,time), conv1d-sphere.onnx (vs conv1d:channels=16) and
 * conv2d-image.onnx (vs conv2d:channels=8), and conv1d:channels=32 (d=64) and conv2d:channels=16 ([1, 8, 8]) fields'
 * portable field.onnx imported back (wide enough for the NCHWc kernels under a block of 8 or 16).
 * The machine is shared, so in each of --rounds rounds the two train side by side, their steps alternating;
 * ratio = imported ms / native ms per round (medians over the round's steps), reported as the median with the
 * rounds' min and max.
 * --pairs TEXT keeps the pairs whose label contains TEXT.
 *   npx tsx scripts/bench-train.ts --byof [--rounds 7] [--steps 20] [--pairs conv]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ADAM_GRAPH_MIN_PARAMS } from '../src/train/ort-engine.js';
import { createSession } from '../src/onnx/runtime/session.js';
import type { Device } from '../src/onnx/runtime/device.js';
import { Rng } from '../src/random.js';
import { performanceMarkdown, replaceSection, type BenchResult } from './lib/readme-performance.js';

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
  const layers: [string, number, number][] = [
    ['field.0', dim, hidden],
    ['field.1', hidden, hidden],
    ['field.2', hidden, dim],
    ['head', dim, CLASSES],
  ];
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

function runBaseline(
  dim: number,
  hidden: number,
  steps: number,
  warmup: number,
): Promise<{ backend: string; ms: number; steps: number; warmup: number }> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        script,
        '--baseline-child',
        '--dim',
        String(dim),
        '--hidden',
        String(hidden),
        '--steps',
        String(steps),
        '--warmup',
        String(warmup),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`baseline child (d=${dim}) failed with code ${code}: ${err.slice(-500)}`));
      else resolve(JSON.parse(line));
    });
  });
}

// ---------------------------------------------------------------- torchdiffeq anchors (same run)

/** The anchor scripts: ../shared/anchors beside the checkout, or $ODENESS_ANCHORS (a worktree elsewhere). */
const ANCHORS =
  process.env.ODENESS_ANCHORS ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/anchors');
const PYTHON = '/usr/bin/python3';

function runPython(args: string[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TDQ: process.env.TDQ ?? '/tmp/tdq', T: '1' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}: ${err.trim().split('\n').pop()}`));
      else
        resolve(
          out
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l)),
        );
    });
  });
}

/** One thread's float32 matrix-product throughput (GFLOP/s): onnxruntime's Gemm (MLAS) on n×n×n, median of 10. */
async function ortGemmPeak(n = 1024): Promise<number> {
  const { GraphBuilder } = await import('../src/graph/ir/graph.js');
  const b = new GraphBuilder({ name: 'gemm_peak' });
  b.input('a', 'float32', [n, n]);
  b.input('b', 'float32', [n, n]);
  b.output('c', 'float32', [n, n], b.op('Gemm', ['a', 'b']));
  const s = await createSession(b.toBytes());
  const normal = normals(7);
  const feeds = {
    a: new ort.Tensor('float32', Float32Array.from({ length: n * n }, normal), [n, n]),
    b: new ort.Tensor('float32', Float32Array.from({ length: n * n }, normal), [n, n]),
  };
  const ms: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t = performance.now();
    await s.run(feeds);
    if (i >= 2) ms.push(performance.now() - t);
  }
  await s.release();
  return (2 * n ** 3) / median(ms) / 1e6;
}

/** The same with torch on one thread (when the anchors' python is there). */
async function torchGemmPeak(n = 1024): Promise<number | undefined> {
  const code = `import json,time,torch
torch.set_num_threads(1); a=torch.randn(${n},${n}); b=torch.randn(${n},${n}); ts=[]
for i in range(12):
    t=time.perf_counter(); a@b; ts.append(time.perf_counter()-t)
ts=sorted(ts[2:]); print(json.dumps({"gflops": 2*${n}**3/ts[len(ts)//2]/1e9}))`;
  try {
    return (await runPython(['-c', code]))[0]?.gflops as number;
  } catch {
    return undefined;
  }
}

/** Why torchdiffeq cannot be timed here, or undefined when it can. */
async function torchMissing(): Promise<string | undefined> {
  if (!existsSync(path.join(ANCHORS, 'torch_train_step.py')))
    return `torchdiffeq not timed: no anchor scripts in ${ANCHORS} (set ODENESS_ANCHORS)`;
  try {
    await runPython(['-c', 'import os,sys; sys.path.insert(0, os.environ["TDQ"]); import torch, torchdiffeq']);
    return undefined;
  } catch (e) {
    return `torchdiffeq not timed: ${PYTHON} with torch and torchdiffeq (TDQ=${process.env.TDQ ?? '/tmp/tdq'}) is not available (${(e as Error).message.slice(0, 200)})`;
  }
}

// ---------------------------------------------------------------- engines and Adam (this process)

/** --write-readme [FILE]: the README (default README.md) whose generated Performance tables this run replaces. */
function readmeTarget(): string | undefined {
  const i = args.indexOf('--write-readme');
  if (i < 0) return undefined;
  const next = args[i + 1];
  return next !== undefined && !next.startsWith('--') ? next : 'README.md';
}

/** Replace the generated tables of `file` with those of `result` (one run: every row and ratio from it). */
function writeReadme(file: string, result: BenchResult): void {
  writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), performanceMarkdown(result), file));
  log(`wrote the Performance tables of ${file}`);
}

async function main(): Promise<void> {
  const readme = readmeTarget();
  const from = opt('from', '');
  if (from) {
    // --from RESULT.json: the tables of a saved --json run, without running anything.
    if (!readme) throw new Error('--from RESULT.json writes the README tables: give --write-readme [FILE] too');
    writeReadme(readme, JSON.parse(readFileSync(from, 'utf8')) as BenchResult);
    return;
  }
  const startLoad = os.loadavg()[0]!;
  const json = args.includes('--json');
  const steps = num('steps', 20);
  const warmup = num('warmup', 3);
  const threads = num('threads', 1);
  const rounds = Math.max(1, num('rounds', 3));
  const largeBaselineSteps = num('baseline-steps-large', 3);
  const only = opt('only', '').split(',').filter(Boolean).map(Number);
  const engines = opt('engines', 'ort,tfjs').split(',').filter(Boolean) as ('ort' | 'tfjs')[];
  const workloads = WORKLOADS.filter((w) => only.length === 0 || only.includes(w.dim));
  const device = opt('device', 'cpu') as Device;
  // Dawn (WebGPU over Vulkan) wants a runtime directory.
  if (device === 'webgpu') process.env.XDG_RUNTIME_DIR ??= mkdtempSync(path.join(os.tmpdir(), 'odeness-xdg-'));
  /** Engines to time: the CPU ones, and the ort engine on --device. */
  const runners: string[] = [...engines, ...(device !== 'cpu' && engines.includes('ort') ? [`ort@${device}`] : [])];
  const notes: string[] = [
    'baseline_ms: naive tfjs (stock ops, tfjs default gradients, optimizer.minimize) on the default backend, timed in a child process that never calls initBackend, so the explicit-transpose matMul gradient is not registered there',
    `engine ort: onnxruntime ${ort.env.versions?.common ?? ''} on ${threads} intra-op thread(s), the whole step (batch copy, one session run, Adam: typed arrays below ${ADAM_GRAPH_MIN_PARAMS} parameters, the Adam graph from there on); engine tfjs: the project's tfjs engine (explicit-transpose matMul gradient on wasm)`,
    `parity with torchdiffeq on one thread = speedup >= ${workloads.map((w) => `${PARITY_SPEEDUP[w.dim]} (d=${w.dim})`).join(', ')}; torchdiffeq 1-thread ms on the 16-core anchor machine: ${workloads.map((w) => `${TORCHDIFFEQ_1T[w.dim]} (d=${w.dim})`).join(', ')}`,
  ];

  // Baselines first, one child at a time (nothing else runs meanwhile).
  const baselines = new Map<number, { backend: string; ms: number; steps: number; warmup: number }>();
  for (const w of args.includes('--no-baseline') ? [] : workloads) {
    const large = w.dim >= 100;
    const bSteps = large ? largeBaselineSteps : steps;
    const bWarm = large ? 1 : warmup;
    log(`baseline d=${w.dim} h=${w.hidden}: ${bWarm} warm-up + ${bSteps} timed steps…`);
    const b = await runBaseline(w.dim, w.hidden, bSteps, bWarm);
    baselines.set(w.dim, b);
    log(`  ${b.ms.toFixed(1)} ms/step (${b.backend})`);
    if (large && bSteps < 20)
      notes.push(
        `d=${w.dim} baseline: median of ${bSteps} steps after ${bWarm} warm-up (about ${(b.ms / 1000).toFixed(0)} s per step is too slow for 20)`,
      );
  }

  const { initBackend } = await import('../src/engines/backend.js');
  const backend = await initBackend();
  const { createEngine: create } = await import('../src/train/train.js');
  type Setup = Parameters<typeof create>[2];
  const createEngine = (runner: string, model: Parameters<typeof create>[1], o: Setup) =>
    runner.startsWith('ort@')
      ? create('ort', model, { ...o, device: runner.slice(4) as Device, placement: true })
      : create(runner as 'ort' | 'tfjs', model, o);
  const { Adam, AdamGraph } = await import('../src/train/adam.js');
  const { parseFieldSpec } = await import('../src/models/spec.js');
  const spec = { kind: 'fixed' as const, method: 'rk4', steps: STEPS_RK4 };

  const rows: Record<string, unknown>[] = [];
  const builds: Record<string, unknown>[] = [];
  const adamRows: Record<string, unknown>[] = [];
  const { makeSpheres } = await import('../src/data/spheres.js');
  const { batchIterator, gather } = await import('../src/data/batch.js');
  const { parseSolverSpec } = await import('../src/solvers/spec.js');
  const { initParams } = await import('../src/models/params.js');
  const torchNote = args.includes('--no-torch') ? 'torchdiffeq not timed (--no-torch)' : await torchMissing();
  if (torchNote) notes.push(torchNote);
  const withTorch = torchNote === undefined;
  if (withTorch)
    notes.push(
      `ratios are paired: each of ${rounds} rounds times odeness and torchdiffeq back to back; ratio is the median of the rounds' ratios (ratio_rounds), ms the median of the rounds' medians`,
    );

  // Per (dim, engine): each round's median ms; per dim: torchdiffeq's; for d=900 on ort, the peaks around each round.
  const mlpMs = new Map<string, number[]>();
  const mlpTorch = new Map<number, number[]>();
  const mlpPeaks = new Map<string, { ort: number[]; torch: number[]; fraction: number[] }>();
  const stepGflop = (w: (typeof workloads)[number]) =>
    (3 * 4 * STEPS_RK4 * 2 * BATCH * (w.dim * w.hidden + w.hidden * w.hidden + w.hidden * w.dim)) / 1e9;
  for (let round = 0; round < rounds; round++) {
    for (const w of workloads) {
      const { x, y, params } = workloadData(w.dim, w.hidden);
      const config = {
        inputShape: [w.dim],
        augment: 0,
        stateShape: [w.dim],
        classes: CLASSES,
        field: parseFieldSpec(`mlp:width=${w.hidden}`),
        t0: 0,
        t1: 1,
      };
      const model = { config, params };
      for (const name of runners) {
        const large = w.dim >= 100 && name === 'tfjs';
        const n = large ? Math.min(steps, 10) : steps;
        log(`round ${round + 1}/${rounds}: ${name} d=${w.dim} h=${w.hidden}: ${warmup} warm-up + ${n} timed steps…`);
        // Large workloads are bounded by the matrix products: the machine's one-thread peak, measured before and after.
        const peaked = w.dim >= 100 && name === 'ort';
        const before = peaked ? [await ortGemmPeak(), await torchGemmPeak()] : [];
        const engine = await createEngine(name, model, { batchSize: BATCH, lr: LR, threads });
        const ms: number[] = [];
        for (let i = 0; i < warmup + n; i++) {
          const t = performance.now();
          await engine.step(x, y, spec);
          if (i >= warmup) ms.push(performance.now() - t);
        }
        if (round === 0)
          for (const b of engine.builds) builds.push({ dim: w.dim, hidden: w.hidden, engine: name, ...b });
        await engine.dispose();
        const key = `${w.dim}/${name}`;
        mlpMs.set(key, [...(mlpMs.get(key) ?? []), median(ms)]);
        if (round === 0 && n < 20) notes.push(`d=${w.dim} ${name}: median of ${n} steps per round`);
        log(`  ${median(ms).toFixed(2)} ms/step`);
        if (peaked) {
          const after = [await ortGemmPeak(), await torchGemmPeak()];
          const pk = mlpPeaks.get(key) ?? { ort: [], torch: [], fraction: [] };
          pk.ort.push(before[0]!, after[0]!);
          for (const v of [before[1], after[1]]) if (v !== undefined) pk.torch.push(v);
          const peak = Math.max(
            before[0]!,
            after[0]!,
            ...[before[1], after[1]].filter((v): v is number => v !== undefined),
          );
          pk.fraction.push(stepGflop(w) / (median(ms) / 1000) / peak);
          mlpPeaks.set(key, pk);
          log(
            `  ${(stepGflop(w) / (median(ms) / 1000)).toFixed(1)} GFLOP/s = ${(100 * pk.fraction.at(-1)!).toFixed(0)} % of one thread's matrix-product peak around it (${peak.toFixed(1)} GFLOP/s)`,
          );
        }
      }
    }
    if (withTorch) {
      const torchRows = await runPython([
        path.join(ANCHORS, 'torch_train_step.py'),
        String(steps),
        workloads.map((w) => w.dim).join(','),
      ]);
      for (const tr of torchRows)
        mlpTorch.set(tr.dim as number, [...(mlpTorch.get(tr.dim as number) ?? []), tr.ms_per_step as number]);
      log(
        `round ${round + 1}/${rounds}: torchdiffeq ${torchRows.map((tr) => `d=${tr.dim} ${tr.ms_per_step} ms`).join(', ')}`,
      );
    }
  }
  const fix = (v: number, d = 2) => +v.toFixed(d);
  for (const w of workloads) {
    const base = baselines.get(w.dim) ?? { ms: NaN, steps: 0 };
    for (const name of runners) {
      const per = mlpMs.get(`${w.dim}/${name}`)!;
      const perStep = median(per);
      const row: Record<string, unknown> = {
        dim: w.dim,
        hidden: w.hidden,
        batch: BATCH,
        engine: name,
        ms_per_step: fix(perStep),
        ms: fix(perStep),
        ms_rounds: per.map((v) => fix(v)),
        baseline_ms: fix(base.ms),
        speedup: fix(base.ms / perStep),
        steps: w.dim >= 100 && name === 'tfjs' ? Math.min(steps, 10) : steps,
        baseline_steps: base.steps,
      };
      // Forward: 4 × 10 field evaluations of 2·B·(d·h + h·h + h·d) FLOP; the backward pass does twice that (input and weight products).
      row.gflop_per_step = fix(stepGflop(w));
      row.gflops = fix(stepGflop(w) / (perStep / 1000), 1);
      const pk = mlpPeaks.get(`${w.dim}/${name}`);
      if (pk) {
        const peak = Math.max(...pk.ort, ...pk.torch);
        Object.assign(row, {
          matmul_peak_gflops: fix(peak, 1),
          ort_gemm_gflops: pk.ort.map((v) => fix(v, 1)),
          torch_gemm_gflops: pk.torch.map((v) => fix(v, 1)),
          peak_fraction: fix(median(pk.fraction), 3),
          peak_fraction_rounds: pk.fraction.map((v) => fix(v, 3)),
        });
      }
      const torch = mlpTorch.get(w.dim);
      if (torch && torch.length === per.length) {
        const ratios = per.map((v, i) => torch[i]! / v);
        Object.assign(row, {
          torchdiffeq_ms: fix(median(torch)),
          ratio: fix(median(ratios)),
          ratio_rounds: ratios.map((v) => fix(v)),
        });
      }
      rows.push(row);
    }
  }
  for (const w of workloads) {
    const { params } = workloadData(w.dim, w.hidden);
    // Adam: typed arrays vs a second onnxruntime graph, on this workload's parameters.
    const names = Object.keys(params);
    const shapes = names.map((k) => params[k]!.shape);
    const grads = names.map((k) => Float32Array.from(params[k]!.data, (_, i) => Math.sin(i) * 1e-2));
    const gradTensors = grads.map((g, k) => new ort.Tensor('float32', g, shapes[k]!));
    const arrays = names.map((k) => params[k]!.data.slice());
    const typed = new Adam(
      arrays.map((a) => a.length),
      { lr: LR },
    );
    const graph = await AdamGraph.create(arrays, shapes, { lr: LR }, { threads });
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
    adamRows.push({
      dim: w.dim,
      hidden: w.hidden,
      params: arrays.reduce((s, a) => s + a.length, 0),
      typed_ms: +median(tTyped).toFixed(3),
      graph_ms: +median(tGraph).toFixed(3),
    });
  }

  // Adaptive training: dopri5 at two tolerances, ms per forward NFE (forward + backward + Adam).
  const adaptiveRows: Record<string, unknown>[] = [];
  if (!args.includes('--no-adaptive')) {
    const iters = num('adaptive-iters', 20);
    const data = makeSpheres({ dim: 2, shells: 'dupont2019', rng: new Rng(1), nTrain: 2000, nTest: 10 });
    const config = {
      inputShape: [2],
      augment: 0,
      stateShape: [2],
      classes: 2,
      field: parseFieldSpec('mlp:width=64'),
      t0: 0,
      t1: 1,
    };
    for (const tol of ['1e-3', '1e-5']) {
      const solver = parseSolverSpec(`dopri5:${tol}`);
      for (const name of runners) {
        const per: { ms: number; nfe: number; torch?: Record<string, unknown> }[] = [];
        for (let round = 0; round < rounds; round++) {
          const torch = withTorch
            ? (await runPython([path.join(ANCHORS, 'torch_adaptive_step.py'), tol, '40']))[0]
            : undefined;
          // The same initial weights and batches every round.
          const model = { config, params: initParams(config, normals(1)) };
          const engine = await createEngine(name, model, { batchSize: 128, lr: LR, threads });
          const batches = batchIterator(data.train, 128, new Rng(1));
          let ms = 0;
          let nfe = 0;
          for (let i = 0; i < warmup + iters; i++) {
            const b = gather(data.train, batches.next().value!);
            const t = performance.now();
            const r = await engine.step(b.x, b.y, solver);
            if (i >= warmup) (ms += performance.now() - t), (nfe += r.nfe);
          }
          if (round === 0)
            for (const b of engine.builds) builds.push({ workload: `adaptive dopri5:${tol}`, engine: name, ...b });
          await engine.dispose();
          per.push({ ms, nfe, torch });
          log(
            `round ${round + 1}/${rounds}: adaptive dopri5:${tol} ${name}: ${(ms / nfe).toFixed(3)} ms/NFE, ${(nfe / iters).toFixed(1)} NFE/iteration${torch ? `; torchdiffeq ${torch.ms_per_nfe} ms/NFE` : ''}`,
          );
        }
        const msPerNfe = per.map((p) => p.ms / p.nfe);
        const row: Record<string, unknown> = {
          workload: 'mlp 2→64→64→2 spheres',
          solver: `dopri5:${tol}`,
          batch: 128,
          engine: name,
          ms_per_iter: fix(median(per.map((p) => p.ms / iters))),
          nfe_per_iter: fix(per[0]!.nfe / iters, 1),
          ms_per_nfe: fix(median(msPerNfe), 4),
          ms_per_nfe_rounds: msPerNfe.map((v) => fix(v, 4)),
          iterations: iters,
        };
        if (per.every((p) => p.torch)) {
          const ratios = per.map((p, i) => (p.torch!.ms_per_nfe as number) / msPerNfe[i]!);
          Object.assign(row, {
            torchdiffeq_ms: fix(median(per.map((p) => p.torch!.ms_per_nfe as number)), 4),
            torchdiffeq_nfe_per_iter: per[0]!.torch!.nfe_fwd_per_iter,
            ratio: fix(median(ratios)),
            ratio_rounds: ratios.map((v) => fix(v)),
          });
        }
        adaptiveRows.push(row);
      }
    }
  }

  // The paper's conv1d sphere field on 900-d spheres, euler × 8, batch 128 (ort engine: tfjs-wasm needs minutes per step here).
  const convRows: Record<string, unknown>[] = [];
  for (const name of args.includes('--no-conv') ? [] : runners.filter((r) => r.startsWith('ort'))) {
    const config = {
      inputShape: [900],
      augment: 0,
      stateShape: [900],
      classes: 2,
      field: parseFieldSpec('conv1d'),
      t0: 0,
      t1: 1,
    };
    const model = { config, params: initParams(config, normals(2)) };
    const normal = normals(3);
    const x = Float32Array.from({ length: 128 * 900 }, () => normal());
    const y = Int32Array.from({ length: 128 }, (_, i) => (x[i * 900]! > 0 ? 1 : 0));
    const engine = await createEngine(name, model, { batchSize: 128, lr: LR, threads });
    const solver = parseSolverSpec('euler:steps=8');
    const per: { ms: number; torch?: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      const torch = withTorch
        ? ((await runPython([path.join(ANCHORS, 'torch_conv1d_step.py'), '900', 'euler', '8', '5']))[0]!
            .ms_per_iter as number)
        : undefined;
      const ms: number[] = [];
      for (let i = 0; i < (round === 0 ? 2 : 1) + 5; i++) {
        const t = performance.now();
        await engine.step(x, y, solver);
        ms.push(performance.now() - t);
      }
      per.push({ ms: median(ms.slice(round === 0 ? 2 : 1)), torch });
      log(
        `round ${round + 1}/${rounds}: conv1d 900-d euler×8: ${per.at(-1)!.ms.toFixed(1)} ms/iteration${torch ? `; torchdiffeq ${torch}` : ''}`,
      );
    }
    for (const b of engine.builds) builds.push({ workload: 'conv1d 900', engine: name, ...b });
    const micro = (engine as { microBatch?: number }).microBatch;
    await engine.dispose();
    const row: Record<string, unknown> = {
      workload: 'conv1d:channels=32 900-d spheres',
      solver: 'euler:steps=8',
      batch: 128,
      micro_batch: micro,
      engine: name,
      ms_per_iter: fix(median(per.map((p) => p.ms)), 1),
      ms_rounds: per.map((p) => fix(p.ms, 1)),
    };
    if (per.every((p) => p.torch !== undefined)) {
      const ratios = per.map((p) => p.torch! / p.ms);
      Object.assign(row, {
        torchdiffeq_ms: fix(median(per.map((p) => p.torch!)), 1),
        ratio: fix(median(ratios)),
        ratio_rounds: ratios.map((v) => fix(v)),
      });
    }
    convRows.push(row);
    notes.push(
      "conv1d row: torchdiffeq's anchor uses kernel 3 in all three Conv1d layers, odeness's paper field 1-3-1: the torchdiffeq side does ~3× the FLOPs of its first and last layers",
    );
  }

  const best = workloads.map((w) => {
    const mine = rows.filter((r) => r.dim === w.dim);
    // Without baselines (--no-baseline) the fastest engine is the one with the fewest ms per step.
    const key = (r: Record<string, unknown>) =>
      Number.isFinite(r.speedup as number) ? (r.speedup as number) : -(r.ms_per_step as number);
    const top = mine.reduce((a, b) => (key(a) >= key(b) ? a : b));
    return {
      dim: w.dim,
      engine: top.engine,
      speedup: top.speedup,
      parity_speedup: PARITY_SPEEDUP[w.dim],
      at_parity: (top.speedup as number) >= PARITY_SPEEDUP[w.dim]!,
    };
  });
  const result = {
    date: new Date().toISOString().slice(0, 10),
    command: `npm run bench:train -- ${args.filter((a) => !['--write-readme', readme, '--json'].includes(a)).join(' ')}`,
    torch_note: torchNote,
    rounds,
    load: { start: +startLoad.toFixed(2), end: +os.loadavg()[0]!.toFixed(2) },
    onnxruntime: ort.env.versions?.common,
    backend: backend.name,
    baseline_backend: [...baselines.values()][0]?.backend,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.versions.node },
    threads,
    rows,
    adaptive: adaptiveRows,
    conv1d: convRows,
    best,
    adam: adamRows,
    builds,
    notes,
  };
  if (readme) writeReadme(readme, result);
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(
      `backend ${result.backend} (baseline on ${result.baseline_backend}); ${result.machine.cpus} CPUs; ort threads ${threads}\n`,
    );
    process.stdout.write('   d      h  batch  engine   ms/step   baseline ms  speedup\n');
    for (const r of rows) {
      process.stdout.write(
        `${String(r.dim).padStart(4)} ${String(r.hidden).padStart(6)} ${String(r.batch).padStart(6)}  ${String(r.engine).padEnd(6)} ${String(r.ms_per_step).padStart(9)} ${String(r.baseline_ms).padStart(13)} ${String(r.speedup).padStart(8)}\n`,
      );
    }
    for (const r of [...adaptiveRows, ...convRows]) process.stdout.write(`${JSON.stringify(r)}\n`);
    for (const b of best)
      process.stdout.write(
        `d=${b.dim}: best ${b.engine} ${b.speedup}× (parity with torchdiffeq: ${b.parity_speedup}×) ${b.at_parity ? 'at parity' : 'below parity'}\n`,
      );
    for (const a of adamRows)
      process.stdout.write(
        `adam d=${a.dim}: ${a.params} params, typed arrays ${a.typed_ms} ms, graph ${a.graph_ms} ms\n`,
      );
    for (const b of builds) {
      const placed = b.placement ? `; nodes per provider ${JSON.stringify(b.placement)}` : '';
      process.stdout.write(
        `build ${b.engine} d=${b.dim} ${b.solver}: ${b.nodes} nodes, graph ${(b.graphMs as number).toFixed(0)} ms, session ${(b.sessionMs as number).toFixed(0)} ms${placed}\n`,
      );
    }
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
  }
}

/**
 * Median step times of two models trained side by side, their steps alternating (which goes first swaps each
 * step), so both see the same load on a shared machine.
 */
async function interleavedStepMs(
  models: readonly [{ config: unknown; params: unknown }, { config: unknown; params: unknown }],
  spec: unknown,
  x: Float32Array,
  y: Int32Array,
  batch: number,
  warmup: number,
  n: number,
): Promise<[number, number]> {
  const { createEngine } = await import('../src/train/train.js');
  const options = { batchSize: batch, lr: LR, threads: num('threads', 1) };
  const engines = [
    await createEngine('ort', models[0] as never, options),
    await createEngine('ort', models[1] as never, options),
  ];
  const ms: [number[], number[]] = [[], []];
  for (let i = 0; i < warmup + n; i++) {
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const t = performance.now();
      await engines[k]!.step(x, y, spec as never);
      if (i >= warmup) ms[k]!.push(performance.now() - t);
    }
  }
  for (const e of engines) await e.dispose();
  return [median(ms[0]), median(ms[1])];
}

async function byof(): Promise<void> {
  const { initBackend } = await import('../src/engines/backend.js');
  await initBackend();
  const { parseFieldSpec } = await import('../src/models/spec.js');
  const { initParams } = await import('../src/models/params.js');
  const { fieldGraph } = await import('../src/onnx/lower/model-graphs.js');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const rounds = Math.max(1, num('rounds', 7));
  const [steps, warmup] = [num('steps', 20), num('warmup', 3)];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'odeness-byof-'));
  const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/onnx');
  const normal = normals(3);
  // The anchor MLP's own portable field graph, imported back: the same weights by construction.
  const anchorConfig = {
    inputShape: [2],
    augment: 0,
    stateShape: [2],
    classes: CLASSES,
    field: parseFieldSpec('mlp:width=64'),
    t0: 0,
    t1: 1,
  };
  const anchor = { config: anchorConfig, params: initParams(anchorConfig, normal) };
  writeFileSync(path.join(dir, 'anchor.onnx'), fieldGraph(anchor).toBytes());
  // Conv fields wide enough for the blocked (NCHWc) kernels under a block of 8 or 16, their portable field.onnx.
  const convAnchor = (field: string, state: number[], file: string) => {
    const config = { ...anchorConfig, inputShape: state, stateShape: state, field: parseFieldSpec(field) };
    const model = { config, params: initParams(config, normal) };
    writeFileSync(path.join(dir, file), fieldGraph(model).toBytes());
    return model;
  };
  const conv1dAnchor = convAnchor('conv1d:channels=32', [64], 'conv1d.onnx');
  const conv2dAnchor = convAnchor('conv2d:channels=16', [1, 8, 8], 'conv2d.onnx');
  const pairs = [
    {
      label: 'mlp d=2 h=64 (its field.onnx)',
      file: path.join(dir, 'anchor.onnx'),
      native: anchor,
      state: [2],
      batch: BATCH,
    },
    {
      label: 'torch mlp-time vs mlp:width=16,time',
      file: path.join(fixtures, 'mlp-time.onnx'),
      native: 'mlp:width=16,time',
      state: [3],
      batch: BATCH,
    },
    {
      label: 'torch conv1d-sphere vs conv1d:channels=16',
      file: path.join(fixtures, 'conv1d-sphere.onnx'),
      native: 'conv1d:channels=16',
      state: [3],
      batch: 128,
    },
    {
      label: 'torch conv2d-image vs conv2d:channels=8',
      file: path.join(fixtures, 'conv2d-image.onnx'),
      native: 'conv2d:channels=8',
      state: [2, 4, 4],
      batch: 128,
    },
    {
      label: 'conv1d c=32 d=64 (its field.onnx)',
      file: path.join(dir, 'conv1d.onnx'),
      native: conv1dAnchor,
      state: [64],
      batch: 128,
    },
    {
      label: 'conv2d c=16 [1, 8, 8] (its field.onnx)',
      file: path.join(dir, 'conv2d.onnx'),
      native: conv2dAnchor,
      state: [1, 8, 8],
      batch: 128,
    },
  ].filter((p) => p.label.includes(opt('pairs', '')));
  const spec = { kind: 'fixed' as const, method: 'rk4', steps: STEPS_RK4 };
  for (const p of pairs) {
    const iconfig = {
      inputShape: p.state,
      augment: 0,
      stateShape: p.state,
      classes: CLASSES,
      field: parseFieldSpec(`onnx:${p.file}`),
      t0: 0,
      t1: 1,
    };
    const imported = { config: iconfig, params: initParams(iconfig, normal) };
    const native =
      typeof p.native === 'string'
        ? nativeOf(imported as never, p.native, parseFieldSpec, initParams as never)
        : p.native;
    const width = p.state.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: p.batch * width }, () => normal());
    const y = Int32Array.from({ length: p.batch }, (_, i) => i % CLASSES);
    const ratios: number[] = [];
    const ms = { imported: [] as number[], native: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const [mi, mn] = await interleavedStepMs([imported, native], spec, x, y, p.batch, warmup, steps);
      ms.imported.push(mi);
      ms.native.push(mn);
      ratios.push(ms.imported.at(-1)! / ms.native.at(-1)!);
      log(
        `${p.label} round ${r + 1}/${rounds}: imported ${ms.imported.at(-1)!.toFixed(2)} ms, native ${ms.native.at(-1)!.toFixed(2)} ms, ratio ${ratios.at(-1)!.toFixed(3)}`,
      );
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    process.stdout.write(
      `${p.label}, rk4×${STEPS_RK4}, batch ${p.batch}: imported ${median(ms.imported).toFixed(2)} ms, native ${median(ms.native).toFixed(2)} ms per step; ` +
        `ratio ${median(ratios).toFixed(3)} (min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)}, ${rounds} paired rounds)\n`,
    );
  }
}

/** The native model with an imported model's weights (PyTorch Sequential net.2l ↔ field.l; Linear weights transposed). */
function nativeOf(
  imported: {
    config: { stateShape: number[] };
    params: Record<string, { shape: readonly number[]; data: Float32Array }>;
  },
  spec: string,
  parse: (s: string) => unknown,
  init: (c: never, n: () => number) => Record<string, { shape: readonly number[]; data: Float32Array }>,
) {
  const config = { ...imported.config, field: parse(spec) } as never;
  const params = init(config, () => 0);
  for (const [name, p] of Object.entries(params)) {
    const m = /^field\.(\d+)\.(weight|bias)$/.exec(name);
    const src = m ? imported.params[`field.net.${2 * Number(m[1])}.${m[2]}`]! : imported.params[name]!;
    if (m && m[2] === 'weight' && spec.startsWith('mlp')) {
      const [r, c] = src.shape as [number, number];
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) p.data[j * r + i] = src.data[i * c + j]!;
    } else p.data.set(src.data);
  }
  return { config, params };
}

if (args.includes('--baseline-child')) await baselineChild();
else if (args.includes('--byof')) await byof();
else await main();
