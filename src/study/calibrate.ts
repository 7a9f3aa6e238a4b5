/**
 * The micro-measurements the wall-time estimate (estimate.ts) is priced from,
 * taken once per machine and kept (calibration-cache.ts): for each dataset ×
 * field × solver kind × batch of a plan,
 *
 *  - a training iteration: a fixed part and a part per sample·NFE (two short
 *    real training runs with different NFE per iteration);
 *  - a graph build: the ort engine compiles one training graph per solver
 *    grid; its cost grows faster than its stages (session optimisation), so
 *    two builds (1 and 8 stages) fit c0 + c1 · stages^1.5;
 *  - one job's fixed overhead: a minimal real job through executeJob (data,
 *    engine set-up, model save, bundle write, session open, result), less the
 *    parts priced apart;
 *  - a forward field call, as evaluation and audits make them: a fixed part
 *    per call and a part per row (timed on the bundle that job wrote);
 *  - the fan audit's float64 reference: its NFE on that model.
 *
 * Each is a median of repeats: one busy moment does not set the price.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FAN_REFERENCE } from '../audit/audits.js';
import { float64Ops } from '../engines/typed.js';
import { openModelSource, type ModelSource } from '../onnx/source.js';
import { solveAsync } from '../solvers/integrate.js';
import { parseSolverSpec } from '../solvers/spec.js';
import { trainRun } from '../train/run.js';
import { calibrationKey, readCachedCost, writeCachedCost, type CachedCost } from './calibration-cache.js';
import { executeJob } from './execute.js';
import type { Job } from './types.js';
import { BUILD_EXPONENT } from './price.js';

export type SolverKind = 'fixed' | 'adaptive';

/** Stages of the larger calibration build (euler:steps=8). */
const BUILD_STAGES = 8;

/** What one job of a group costs on this machine (one worker). */
export interface GroupCost extends CachedCost {
  /** From an earlier call on this machine (study/calibration-cache.ts). */
  readonly cached?: boolean;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

/**
 * Starts a measurement of the CPU this process gets: the returned function gives CPU time over wall time since
 * (at most 1: onnxruntime's own threads may add CPU time, but a job runs on one core).
 */
export function cpuShare(): () => number {
  const cpu = process.cpuUsage();
  const t = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    const wall = performance.now() - t;
    return wall > 0 ? Math.min(1, Math.max(0.01, (used.user + used.system) / 1000 / wall)) : 1;
  };
}

interface TimedRun {
  /** Median ms of iterations 2..n (the first builds graphs). */
  readonly ms: number;
  readonly nfe: number;
  /** Graph build ms (writing the graph, creating its session) of the run. */
  readonly buildMs: number;
}

async function timeIterations(dataset: string, field: string, solver: string, batch: number): Promise<TimedRun> {
  const iterations = 6;
  const stamps: number[] = [];
  let nfe = 0;
  const run = await trainRun(
    { dataset, field, solver, iterations, seed: 0, batchSize: batch, lr: 1e-4, logEvery: 1, engine: 'auto' },
    {
      onIteration: () => stamps.push(performance.now()),
      onLog: (e) => {
        if (e.iteration > 1) nfe += e.nfeForward + e.nfeBackward;
      },
    },
  );
  if (run.result.iterations < iterations || stamps.length < iterations)
    throw new Error(`calibration of ${dataset} ${field} stopped early`);
  const deltas = stamps.slice(1, iterations).map((s, k) => s - stamps[k]!);
  const buildMs = run.result.graphBuilds.reduce((s, b) => s + (b.cached ? 0 : b.graphMs + b.sessionMs), 0);
  return { ms: median(deltas), nfe: nfe / (iterations - 1), buildMs };
}

/** A minimal real job of the group: one iteration of euler:steps=1, its own evaluation, no test solvers or audits. */
function minimalJob(dataset: string, field: string, batch: number): Job {
  return {
    id: 'calibration',
    dataset,
    field,
    trainSolver: 'euler:steps=1',
    adapt: false,
    seed: 0,
    iterations: 1,
    batchSize: batch,
    lr: 1e-4,
    testSolvers: [],
    audit: { crossing: false, fan: false },
    engine: 'auto',
  } as Job;
}

/** Forward field calls as the audits make them (float64 states through the float32 field): ms per call and per row. */
async function timeFieldCalls(source: ModelSource, rows: number): Promise<{ msPerCall: number; msPerRow: number }> {
  const S = source.stateShape.reduce((a, b) => a * b, 1);
  const time = async (n: number, reps: number) => {
    const f = source.field(n);
    const z = new Float64Array(n * S).fill(0.1);
    const ms: number[] = [];
    for (let r = 0; r < reps + 1; r++) {
      const t = performance.now();
      Float64Array.from(await f(0, Float32Array.from(z)));
      if (r > 0) ms.push(performance.now() - t); // the first call warms the session
    }
    return median(ms);
  };
  const one = await time(1, 15);
  const many = await time(rows, 7);
  const msPerRow = Math.max(0, (many - one) / (rows - 1));
  return { msPerCall: Math.max(0, one - msPerRow), msPerRow };
}

/** NFE of the fan audit's float64 reference solve on `n` test points of the model. */
async function referenceNfe(source: ModelSource, x: Float32Array, n: number): Promise<number> {
  const field = source.field(n);
  const z0 = Float64Array.from(await source.encode(x.subarray(0, n * source.inputWidth), n));
  const r = await solveAsync(
    float64Ops,
    async (t, z) => Float64Array.from(await field(t, Float32Array.from(z))),
    z0,
    parseSolverSpec(DEFAULT_FAN_REFERENCE),
    { t0: source.t0, t1: source.t1 },
  );
  return r.stats.nfe;
}

/** Points the reference NFE is measured on: its error norm is over all of them, few suffice. */
const REFERENCE_POINTS = 64;

async function measureJob(dataset: string, field: string, batch: number) {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-calibration-'));
  try {
    const runs: number[] = [];
    for (let k = 0; k < 2; k++) {
      const bundleDir = join(dir, `job-${k}`);
      const t = performance.now();
      await executeJob(minimalJob(dataset, field, batch), { bundleDir });
      runs.push(performance.now() - t);
    }
    // The first job may still load modules (a pool thread does that once): the faster one is a job.
    const jobMs = Math.min(...runs);
    const source = await openModelSource({ bundle: join(dir, 'job-0') });
    try {
      const { loadDataset } = await import('../data/spec.js');
      const test = (await loadDataset(dataset, 0)).test;
      const calls = await timeFieldCalls(source, Math.max(2, Math.min(256, test.n)));
      const refNfe = await referenceNfe(source, test.x, Math.min(REFERENCE_POINTS, test.n));
      return { jobMs, ...calls, referenceNfe: refNfe };
    } finally {
      await source.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(dataset: string, field: string, kind: SolverKind, batch: number): Promise<CachedCost> {
  const [lo, hi] = kind === 'fixed' ? ['euler:steps=1', `euler:steps=${BUILD_STAGES}`] : ['dopri5:0.1', 'dopri5:0.001'];
  // A first run warms the process (module loads, the first session ever): it is no job's cost.
  await timeIterations(dataset, field, lo, batch);
  const share = cpuShare();
  const a = await timeIterations(dataset, field, lo, batch);
  const b = await timeIterations(dataset, field, hi, batch);
  const slope =
    b.nfe > a.nfe ? Math.max(0, (b.ms - a.ms) / ((b.nfe - a.nfe) * batch)) : b.ms / Math.max(1, b.nfe * batch);
  const msPerIteration = Math.max(0, a.ms - slope * a.nfe * batch);
  // Fixed: c0 + c1 · stages^1.5 through the two builds; adaptive: its step graphs, whatever the tolerance.
  const buildPerStage =
    kind === 'fixed' ? Math.max(0, (b.buildMs - a.buildMs) / (BUILD_STAGES ** BUILD_EXPONENT - 1)) : 0;
  const buildMs = kind === 'fixed' ? Math.max(0, a.buildMs - buildPerStage) : median([a.buildMs, b.buildMs]);
  const job = await measureJob(dataset, field, batch);
  // The minimal job's own build, iteration and evaluation (one call) are priced apart: the rest is overhead.
  const fixedBuild = a.buildMs;
  const jobOverheadMs = Math.max(0, job.jobMs - fixedBuild - a.ms - job.msPerCall);
  // Wall times on a busy machine include other processes' turns: scaled by the CPU this process got, they are
  // this machine's idle costs (the same whatever the load at calibration; estimate.ts adds the load at run time).
  const f = share();
  return {
    msPerIteration: msPerIteration * f,
    msPerSampleNfe: slope * f,
    buildMs: buildMs * f,
    buildMsPerStage: buildPerStage * f,
    jobOverheadMs: jobOverheadMs * f,
    msPerCall: job.msPerCall * f,
    msPerRow: job.msPerRow * f,
    referenceNfe: job.referenceNfe,
    cpuShare: f,
    measuredAt: new Date().toISOString(),
  };
}

/** This group's costs: cached on this machine, else measured now (and cached). */
export async function calibrateGroup(
  dataset: string,
  field: string,
  kind: SolverKind,
  batch: number,
  recalibrate = false,
): Promise<GroupCost> {
  const key = calibrationKey(dataset, field, kind, batch);
  const cached = recalibrate ? undefined : readCachedCost(key);
  if (cached) return { ...cached, cached: true };
  const measured = await measure(dataset, field, kind, batch);
  writeCachedCost(key, measured);
  return { ...measured, cached: false };
}
