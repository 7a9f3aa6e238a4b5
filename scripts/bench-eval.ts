/**
 * Cross-solver evaluation speed: 1 000 points, field 2→64→64→2 tanh, rk4 with
 * 100 steps over [0, 1] (the anchor workload of shared/README.md), three ways:
 *   a) solveAsync (the one integrate loop) calling an onnxruntime field session per stage
 *   b) the whole unrolled solve as one onnxruntime graph (effective-model style, field only)
 *   c) tfjs: the same loop, solve(tensorOps, …) inside tf.tidy
 * Median of several repetitions after a warm-up; onnxruntime on one thread.
 *
 *   npx tsx scripts/bench-eval.ts [--json] [--reps 5] [--points 1000] [--steps 100]
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../src/engines/backend.js';
import { tensorOps } from '../src/engines/tensor.js';
import { float32Ops } from '../src/engines/typed.js';
import { paramShapes } from '../src/models/params.js';
import type { Model, Params } from '../src/models/types.js';
import { fieldGraph, solveGraph } from '../src/onnx/lower/model-graphs.js';
import { OnnxField } from '../src/onnx/session.js';
import { createSession } from '../src/onnx/runtime/session.js';
import { solve, solveAsync } from '../src/solvers/integrate.js';
import type { SolverSpec } from '../src/solvers/spec.js';
import { Rng } from '../src/random.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const json = process.argv.includes('--json');
const POINTS = arg('points', 1000);
const STEPS = arg('steps', 100);
const REPS = arg('reps', 5);
const WIDTH = 64;
const D = 2;
const spec: SolverSpec = { kind: 'fixed', method: 'rk4', steps: STEPS };

/** Seeded standard normals from the project's PRNG, so every run uses the same weights. */
function normals(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.normal();
}

const normal = normals(1);
const config = {
  inputShape: [D],
  augment: 0,
  stateShape: [D],
  classes: 2,
  field: { kind: 'mlp' as const, width: WIDTH, depth: 2, activation: 'tanh' as const, time: false },
  t0: 0,
  t1: 1,
};
const params: Params = {};
for (const p of paramShapes(config)) {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const std = p.fanIn > 0 ? Math.sqrt(1 / p.fanIn) : 0.1;
  params[p.name] = { shape: [...p.shape], data: Float32Array.from({ length: n }, () => std * normal()) };
}
const model: Model = { config, params };
const z0 = Float32Array.from({ length: POINTS * D }, () => normal());

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function time(run: () => Promise<Float32Array>): Promise<{ ms: number[]; out: Float32Array }> {
  let out = await run(); // warm-up
  const ms: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    out = await run();
    ms.push(performance.now() - t);
  }
  return { ms, out };
}

function summary(ms: number[]) {
  const med = median(ms);
  return {
    medianMs: +med.toFixed(2),
    minMs: +Math.min(...ms).toFixed(2),
    pointStepsPerSec: Math.round((POINTS * STEPS) / (med / 1000)),
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e;
}

// (a) the integrate loop driving a field session, one run per stage.
const field = OnnxField.fromSession('field.onnx', await createSession(fieldGraph(model).toBytes()));
const asyncField = field.asAsyncField(POINTS);
let nfe = 0;
const a = await time(async () => {
  const r = await solveAsync(float32Ops, asyncField, z0, spec);
  nfe = r.stats.nfe;
  return r.z1;
});

// (b) the unrolled solve as one graph.
const graph = solveGraph(model, spec);
let t = performance.now();
const unrolled = await createSession(graph.toBytes());
const createMs = performance.now() - t;
const zTensor = new ort.Tensor('float32', z0, [POINTS, D]);
const b = await time(async () => (await unrolled.run({ z: zTensor })).z1!.data as Float32Array);

// (c) tfjs: the same loop on tensors.
const backend = await initBackend();
const W = [0, 1, 2].map((l) =>
  tf.tensor2d(params[`field.${l}.weight`]!.data, params[`field.${l}.weight`]!.shape as [number, number]),
);
const Bs = [0, 1, 2].map((l) => tf.tensor1d(params[`field.${l}.bias`]!.data));
const tfField = (_t: number, z: tf.Tensor) => {
  let h: tf.Tensor = z;
  for (let l = 0; l < 3; l++) {
    h = tf.add(tf.matMul(h as tf.Tensor2D, W[l]!), Bs[l]!);
    if (l < 2) h = tf.tanh(h);
  }
  return h;
};
const tz0 = tf.tensor2d(z0, [POINTS, D]);
const c = await time(async () => {
  const z1 = tf.tidy(() => solve(tensorOps, tfField, tz0, spec).z1);
  const data = (await z1.data()) as Float32Array;
  z1.dispose();
  return data;
});

const result = {
  workload: {
    points: POINTS,
    field: `${D}→${WIDTH}→${WIDTH}→${D} tanh`,
    solver: `rk4:steps=${STEPS}`,
    interval: [0, 1],
    nfe,
    reps: REPS,
  },
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version, ortThreads: 1 },
  perStageSession: summary(a.ms),
  unrolledGraph: { ...summary(b.ms), sessionCreateMs: +createMs.toFixed(1), nodes: graph.nodes.length },
  tfjs: { ...summary(c.ms), backend: backend.name, threads: backend.threads },
  speedup: {
    unrolledVsPerStage: +(median(a.ms) / median(b.ms)).toFixed(2),
    unrolledVsTfjs: +(median(c.ms) / median(b.ms)).toFixed(2),
    perStageVsTfjs: +(median(c.ms) / median(a.ms)).toFixed(2),
  },
  maxAbsDiff: { unrolledVsPerStage: maxAbsDiff(a.out, b.out), tfjsVsPerStage: maxAbsDiff(a.out, c.out) },
};

if (!json) {
  const row = (name: string, s: { medianMs: number; pointStepsPerSec: number }) =>
    console.log(
      `${name.padEnd(34)} ${s.medianMs.toFixed(1).padStart(9)} ms  ${(s.pointStepsPerSec / 1e6).toFixed(2).padStart(6)} M point·steps/s`,
    );
  console.log(
    `${result.workload.points} points, ${result.workload.field}, ${result.workload.solver}, median of ${REPS}`,
  );
  row('(a) solveAsync + ort field/stage', result.perStageSession);
  row('(b) ort unrolled graph', result.unrolledGraph);
  row(`(c) tfjs ${backend.name}`, result.tfjs);
}
console.log(JSON.stringify(result, null, json ? 2 : 0));
await field.release();
await unrolled.release();
