/**
 * The micro-measurements the wall-time estimate (estimate.ts) is priced from,
 * taken once per machine and kept (calibration-cache.ts): for each dataset ×
 * field × solver kind × batch of a plan,
 *
 *  - a training iteration: a fixed part and a part per sample·NFE (two short
 *    real training runs with different NFE per iteration);
 *  - a graph build: the ort engine compiles one training graph per solver
 *    grid, and the first WARM_ITERATIONS runs of its new session are slow
 *    (measured on 900-d conv1d at 128 stages: 2.4 s to build, then 4.5 and
 *    3.7 s against 0.5 s for later iterations); both grow faster than the
 *    stages, so three builds (1, 8 and 32 stages) fit c0 + c1 · stages^p
 *    (price.ts fitBuildCurve; p from 1.1 on 900-d to 1.4 on 2-d fields);
 *    beyond 32 they grow faster still (p ≈ 1.5 from 32 to 128), so a plan
 *    with larger grids has one more build timed at its largest;
 *  - one job's fixed overhead: a minimal real job of the group's solver kind
 *    through executeJob (data, engine set-up, model save, bundle write,
 *    sessions opened, result), less the parts priced apart;
 *  - a forward field call, as evaluation and audits make them: a fixed part
 *    per call and a part per row (timed on the bundle that job wrote);
 *  - the fan audit's float64 reference: its NFE on that model, and the NFE
 *    it adds per output time it must stop at;
 *  - contention: how much more CPU time that minimal job, with an evaluation
 *    and (where short) the fan audit, takes in one of two pool threads busy
 *    at once than alone (shared caches, memory bandwidth,
 *    physical cores: the 900-d spheres' fan audit ran 1.4 times slower
 *    beside another on the 2-core development machine).
 *
 * Each is a median of repeats: one busy moment does not set the price.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_POINTS, DEFAULT_FAN_REFERENCE } from '../audit/audits.js';
import { float64Ops } from '../engines/typed.js';
import { openModelSource, type ModelSource } from '../onnx/source.js';
import { solveAsync } from '../solvers/integrate.js';
import { fixedGrid } from '../solvers/integrate.js';
import { parseSolverSpec, type FixedSolverSpec } from '../solvers/spec.js';
import { trainRun } from '../train/run.js';
import { calibrationKey, readCachedCost, writeCachedCost, type CachedCost } from './calibration-cache.js';
import { executeJob } from './execute.js';
import { JobPool } from './local.js';
import type { Job } from './types.js';
import { BUILD_CURVE_STAGES, BUILD_TAIL_MAX_STAGES, callsMs, evaluationCalls, fitBuildCurve } from './price.js';

export type SolverKind = 'fixed' | 'adaptive';

/** The first iterations of a new session that run slower than the rest (the rest are the iteration's cost). */
const WARM_ITERATIONS = 2;
/** Iterations of a timed training run: the warm ones, then enough for a median. */
const TIMED_ITERATIONS = WARM_ITERATIONS + 4;
/** The two solvers a group's training is timed with (fixed: the outer builds; adaptive: two tolerances). */
const TIMED_SOLVERS = {
  fixed: BUILD_CURVE_STAGES.map((n) => `euler:steps=${n}`),
  adaptive: ['dopri5:0.1', 'dopri5:0.001'],
} as const;

/** What one job of a group costs on this machine (one worker). */
export interface GroupCost extends CachedCost {
  /** From an earlier call on this machine (study/calibration-cache.ts). */
  readonly cached?: boolean;
}

export const median = (xs: readonly number[]): number => {
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
  /** Median ms of the iterations after the warm ones. */
  readonly ms: number;
  /** NFE (forward and backward) of one of those iterations. */
  readonly nfe: number;
  /** Graph build ms (writing the graph, creating its session) and the warm iterations' excess over `ms`. */
  readonly buildMs: number;
}

async function timeIterations(dataset: string, field: string, solver: string, batch: number): Promise<TimedRun> {
  const iterations = TIMED_ITERATIONS;
  const stamps: number[] = [];
  let builtAt: number | undefined;
  let nfe = 0;
  const run = await trainRun(
    { dataset, field, solver, iterations, seed: 0, batchSize: batch, lr: 1e-4, logEvery: 1, engine: 'auto' },
    {
      onIteration: () => stamps.push(performance.now()),
      onGraphBuild: (b) => {
        if (!b.cached) builtAt ??= performance.now();
      },
      onLog: (e) => {
        if (e.iteration > WARM_ITERATIONS) nfe += e.nfeForward + e.nfeBackward;
      },
    },
  );
  if (run.result.iterations < iterations || stamps.length < iterations)
    throw new Error(`calibration of ${dataset} ${field} stopped early`);
  // deltas[k] is iteration k + 2.
  const deltas = stamps.slice(1, iterations).map((s, k) => s - stamps[k]!);
  const ms = median(deltas.slice(WARM_ITERATIONS - 1));
  const graphs = run.result.graphBuilds.reduce((s, b) => s + (b.cached ? 0 : b.graphMs + b.sessionMs), 0);
  // From the first build to the last iteration, less the iterations at their steady cost: the sessions' warm-up.
  const warm = builtAt === undefined ? 0 : Math.max(0, stamps[iterations - 1]! - builtAt - iterations * ms);
  return { ms, nfe: nfe / (iterations - WARM_ITERATIONS), buildMs: graphs + warm };
}

/** A minimal real job of the group: the warm iterations of `solver`, its own evaluation, no test solvers or audits. */
function minimalJob(dataset: string, field: string, batch: number, solver: string): Job {
  return {
    id: 'calibration',
    dataset,
    field,
    trainSolver: solver,
    adapt: false,
    seed: 0,
    iterations: WARM_ITERATIONS,
    batchSize: batch,
    lr: 1e-4,
    testSolvers: [],
    audit: { crossing: false, fan: false },
    engine: 'auto',
  } as Job;
}

/**
 * The job contention is timed on: the minimal job with an evaluation and, where it is short, the fan audit, whose
 * float64 reference suffers more beside another job than training does (memory bandwidth): 900-d spheres' audits
 * and evaluations ran 1.4 and 1.2 times their price in a 2-worker study whose contention, timed without them, was
 * 1.1. Contention is timed on 9 runs: an MNIST fan audit (~20 s) would make that minutes.
 */
function contentionJob(dataset: string, field: string, batch: number, solver: string, fanAudit: boolean): Job {
  return {
    ...minimalJob(dataset, field, batch, solver),
    testSolvers: [solver],
    audit: { crossing: false, fan: fanAudit },
  };
}

/** The longest fan audit (its float64 reference, priced from the calibration) the contention job includes. */
const CONTENTION_FAN_MAX_MS = 2_000;

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

/**
 * NFE of the fan audit's float64 reference solve on `n` test points of the model: free, and stopping at the
 * REFERENCE_STOPS steps of a fixed grid as it does at the audited solver's steps (the extra NFE per stop); and the ms
 * per row of its calls beyond msPerCall, timed on the second solve (the first warms the n-row session).
 */
async function referenceNfe(source: ModelSource, x: Float32Array, n: number, msPerCall: number) {
  const field = source.field(n);
  const z0 = Float64Array.from(await source.encode(x.subarray(0, n * source.inputWidth), n));
  const solve = async (times?: number[]) => {
    const f = async (t: number, z: Float64Array) => Float64Array.from(await field(t, Float32Array.from(z)));
    const span = { t0: source.t0, t1: source.t1, ...(times ? { times } : {}) };
    return (await solveAsync(float64Ops, f, z0, parseSolverSpec(DEFAULT_FAN_REFERENCE), span)).stats.nfe;
  };
  const free = await solve();
  const grid: FixedSolverSpec = { kind: 'fixed', method: 'euler', steps: REFERENCE_STOPS };
  const t = performance.now();
  const stopped = await solve(fixedGrid(grid, source.t0, source.t1));
  const perCall = (performance.now() - t) / stopped;
  return {
    referenceNfe: free,
    referenceNfePerStop: Math.max(0, (stopped - free) / REFERENCE_STOPS),
    referenceMsPerRow: Math.max(0, (perCall - msPerCall) / n),
  };
}

/** Points the reference NFE is measured on: its error norm is over all of them, few suffice. */
const REFERENCE_POINTS = 64;
/** Output times of the second reference solve (a 16-step grid). */
const REFERENCE_STOPS = 16;

async function measureJob(dataset: string, field: string, batch: number, solver: string) {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-calibration-'));
  try {
    const runs: number[] = [];
    for (let k = 0; k < 2; k++) {
      const bundleDir = join(dir, `job-${k}`);
      const t = performance.now();
      await executeJob(minimalJob(dataset, field, batch, solver), { bundleDir });
      runs.push(performance.now() - t);
    }
    // The first job may still load modules (a pool thread does that once): the faster one is a job.
    const jobMs = Math.min(...runs);
    const source = await openModelSource({ bundle: join(dir, 'job-0') });
    try {
      const { loadDataset } = await import('../data/spec.js');
      const test = (await loadDataset(dataset, 0)).test;
      const calls = await timeFieldCalls(source, Math.max(2, Math.min(256, test.n)));
      const reference = await referenceNfe(source, test.x, Math.min(REFERENCE_POINTS, test.n), calls.msPerCall);
      return { jobMs, testPoints: test.n, ...calls, ...reference };
    } finally {
      await source.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Bounds of the contention factor: a noisy measurement never prices jobs faster side by side, nor much slower than
 * measured on an idle machine (1.3 for evaluation, 1.4 for the fan audit); a loaded machine measures up to 2.
 */
const CONTENTION_RANGE = [1, 1.6] as const;

/**
 * How much slower `job` runs in one of two pool threads running it at once than in one running it alone (each
 * thread first runs it once: modules, sessions), in CPU time: shared caches, memory bandwidth and a shared physical
 * core stretch it, other processes' turns on the cores do not (they stretch wall time whoever runs). 1 where it
 * cannot be measured (the job fails in a thread).
 */
async function measureContention(job: Job): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-contention-'));
  const pool = new JobPool({ threads: 2, workerPrefix: 'calibration' });
  let k = 0;
  const run = async () => {
    const r = await pool.run(job, 1, join(dir, `job-${k++}`));
    if (r.status !== 'done') throw new Error(r.error);
  };
  // CPU ms of this process (its pool threads and onnxruntime's) per job, `jobs` at once.
  const cpuPerJob = async (jobs: number) => {
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: jobs }, run));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000 / jobs;
  };
  const medianOf = async (runs: number, jobs: number) => {
    const xs: number[] = [];
    for (let k = 0; k < runs; k++) xs.push(await cpuPerJob(jobs));
    return median(xs);
  };
  try {
    await cpuPerJob(2);
    // Medians, not the least: two jobs started together do not always overlap to the end, and the least of two
    // picked the run that overlapped least (1.00 in one calibration of the 900-d group, 1.16 and 1.23 in the next
    // two; its jobs ran 1.5x their estimate). With the least alone and a median of three together, four
    // calibrations of that group still gave 1.0 to 1.45 where its study's jobs ran about 1.3 times their alone price.
    const alone = await medianOf(3, 1);
    const together = await medianOf(5, 2);
    return Math.min(CONTENTION_RANGE[1], Math.max(CONTENTION_RANGE[0], together / Math.max(1e-3, alone)));
  } catch {
    return 1;
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(
  dataset: string,
  field: string,
  kind: SolverKind,
  batch: number,
  tailStages: number | undefined,
): Promise<CachedCost> {
  const solvers = TIMED_SOLVERS[kind];
  // A first run warms the process (module loads, the first session ever): it is no job's cost.
  await timeIterations(dataset, field, solvers[0], batch);
  const share = cpuShare();
  const runs: TimedRun[] = [];
  for (const solver of solvers) runs.push(await timeIterations(dataset, field, solver, batch));
  const tail =
    tailStages === undefined ? undefined : await timeIterations(dataset, field, `euler:steps=${tailStages}`, batch);
  const [a, b] = [runs[0]!, runs.at(-1)!];
  const slope =
    b.nfe > a.nfe ? Math.max(0, (b.ms - a.ms) / ((b.nfe - a.nfe) * batch)) : b.ms / Math.max(1, b.nfe * batch);
  const msPerIteration = Math.max(0, a.ms - slope * a.nfe * batch);
  // Fixed: the curve through the three builds; adaptive: its step graphs, whatever the tolerance.
  const build =
    kind === 'fixed'
      ? fitBuildCurve(runs.map((r, k) => [BUILD_CURVE_STAGES[k]!, r.buildMs] as const))
      : { buildMs: median(runs.map((r) => r.buildMs)), buildMsPerStage: 0, buildExponent: 1 };
  const job = await measureJob(dataset, field, batch, solvers[0]);
  // The minimal job's own build, warm iterations and evaluation are priced apart: the rest is overhead.
  const evaluation = callsMs(evaluationCalls([parseSolverSpec(solvers[0])], job.testPoints), job);
  const jobOverheadMs = Math.max(0, job.jobMs - a.buildMs - WARM_ITERATIONS * a.ms - evaluation);
  // Wall times on a busy machine include other processes' turns: scaled by the CPU this process got, they are
  // this machine's idle costs (the same whatever the load at calibration; estimate.ts adds the load at run time).
  const f = share();
  // After the share: its two pool threads would count as more than this process's one core.
  const fanMs =
    job.referenceNfe *
    (job.msPerCall + Math.min(AUDIT_POINTS, job.testPoints) * (job.msPerRow + job.referenceMsPerRow));
  const contention = await measureContention(
    contentionJob(dataset, field, batch, solvers[0], fanMs <= CONTENTION_FAN_MAX_MS),
  );
  return {
    msPerIteration: msPerIteration * f,
    msPerSampleNfe: slope * f,
    buildMs: build.buildMs * f,
    buildMsPerStage: build.buildMsPerStage * f,
    buildExponent: build.buildExponent,
    ...(tail && tailStages !== undefined ? { buildTail: { stages: tailStages, ms: tail.buildMs * f } } : {}),
    jobOverheadMs: jobOverheadMs * f,
    msPerCall: job.msPerCall * f,
    msPerRow: job.msPerRow * f,
    referenceNfe: job.referenceNfe,
    referenceNfePerStop: job.referenceNfePerStop,
    referenceMsPerRow: job.referenceMsPerRow * f,
    contention,
    cpuShare: f,
    measuredAt: new Date().toISOString(),
  };
}

/**
 * The stages a build beyond the curve is measured at for a group whose largest fixed grid has `maxStages` (none
 * within the curve's stages, nor for adaptive solvers).
 */
function tailStagesFor(kind: SolverKind, maxStages: number): number | undefined {
  if (kind !== 'fixed' || maxStages <= BUILD_CURVE_STAGES.at(-1)!) return undefined;
  return Math.min(BUILD_TAIL_MAX_STAGES, maxStages);
}

/**
 * This group's costs: cached on this machine, else measured now (and cached). `maxStages`: the most stages of the
 * group's fixed-step training grids (a cached entry measured for fewer is measured again).
 */
export async function calibrateGroup(
  dataset: string,
  field: string,
  kind: SolverKind,
  batch: number,
  recalibrate = false,
  maxStages = 0,
): Promise<GroupCost> {
  const key = calibrationKey(dataset, field, kind, batch);
  const tailStages = tailStagesFor(kind, maxStages);
  const cached = recalibrate ? undefined : readCachedCost(key);
  const covered = tailStages === undefined || (cached?.buildTail?.stages ?? 0) >= tailStages;
  if (cached && covered) return { ...cached, cached: true };
  const measured = await measure(dataset, field, kind, batch, tailStages);
  writeCachedCost(key, measured);
  return { ...measured, cached: false };
}
