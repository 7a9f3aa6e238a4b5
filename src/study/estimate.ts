/**
 * How much work a plan is, before it runs, and how long it takes here.
 *
 * Work: training field evaluations summed over jobs (NFE per iteration ×
 * iterations × batch, "sample·NFE"), times the field's size (parameters);
 * `study run` asks for `--yes` above WORK_THRESHOLD. Fixed-step methods take
 * steps × stages forward and as many backward; adaptive steps are estimated
 * from the tolerance (price.ts). Adaptation runs are estimated at the median
 * grid step count of their method (20 steps without a grid), plus their
 * checks' forward calls on the check batch (price.ts adaptCheckCalls); a
 * fixed-step run builds a training graph at every check (each one may change
 * the step), an adaptive one builds its step graphs once.
 *
 * Wall time: each job priced as executeJob runs it (price.ts) from this
 * machine's calibration (calibrate.ts, cached): its fixed overhead, its graph
 * builds (the seeds of a configuration share one per worker), training,
 * evaluation and audit field calls with their rows, and the transport's
 * per-job overhead (calibrate-transport.ts); with several workers each job
 * slowed by their contention (calibrated); the jobs spread over the workers,
 * never shorter than the longest job, after the transport's start.
 */
import { availableParallelism, loadavg } from 'node:os';
import { loadDataset } from '../data/spec.js';
import { paramShapes } from '../models/params.js';
import { parseSolver } from '../solvers/solver.js';
import { formatSolverSpec, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { modelConfigFor } from '../train/run.js';
import { studyFieldFiles, type StudyPlan } from './plan.js';
import { fieldFileOf, locateField } from '../models/field-files.js';
import type { Job } from './types.js';
import { paperTestSolvers } from './paper.js';
import type { TransportCost } from './calibration-cache.js';
import { calibrateGroup, type GroupCost, type SolverKind } from './calibrate.js';
import { measureTransport, transportCost, type TransportName } from './calibrate-transport.js';
import { LocalTransport } from './local.js';
import { AUDIT_POINTS } from '../audit/audits.js';
import {
  adaptCheckCalls,
  adaptChecks,
  auditCalls,
  buildMs,
  callsMs,
  evaluationCalls,
  REFERENCE_NFE_FLOOR,
  sampleNfeOf,
  stepNfe,
  type AuditShape,
  type Calls,
} from './price.js';

/**
 * Plans above this much work (sample·NFE × field parameters) need `--yes`:
 * about a day of training on the 2-core development machine for the sphere
 * fields (10⁸ units per second measured for conv1d on 2-D spheres) — the
 * full paper studies are above it, their `--iterations` smoke runs below.
 */
export const WORK_THRESHOLD = 1e13;
/** Plans with more jobs than this need `--yes` whatever their size. */
export const JOB_THRESHOLD = 2000;

export interface JobWork {
  /** Field evaluations of one sample summed over training (forward + backward + checks). */
  readonly nfePerSample: number;
  /** Training samples pushed through: iterations × batch. */
  readonly samples: number;
  /** Σ NFE × batch over iterations. */
  readonly sampleNfe: number;
  /**
   * Forward NFE per test point after training: the training solver, the test solvers and the audits (these on at
   * most AUDIT_POINTS points; the fan reference at REFERENCE_NFE_FLOOR).
   */
  readonly evalNfePerPoint: number;
  /** Of evalNfePerPoint, the audits' part. */
  readonly auditNfePerPoint: number;
  /** The solver evaluation and audits run at (an adaptation run's: its method's median grid point). */
  readonly around: SolverSpec;
  /** The evaluated solvers: `around`, then the test solvers. */
  readonly evaluated: readonly SolverSpec[];
  /** Training graphs this job builds alone (adaptation: one per check; grid jobs share theirs, see estimateWork). */
  readonly builds: number;
  /** Forward field calls of its adaptation checks, all of them (none without adaptation). */
  readonly checkCalls: readonly Calls[];
}

/** Where the serial milliseconds of a plan go (Σ over jobs, one worker). */
export interface WallBreakdown {
  readonly overheadMs: number;
  readonly buildMs: number;
  readonly trainMs: number;
  readonly evalMs: number;
  readonly auditMs: number;
  readonly transportMs: number;
}

export interface WorkGroup {
  readonly dataset: string;
  readonly field: string;
  /** 'fixed' trains on the compiled ort engine, 'adaptive' on the ort step graphs or tfjs: different speeds. */
  readonly kind: SolverKind;
  readonly jobs: number;
  readonly sampleNfe: number;
  /** Σ over jobs of evaluation and audit NFE × rows (absent when the dataset cannot be loaded). */
  readonly evalSampleNfe?: number;
  /** Multiply-adds per field evaluation and sample (see fieldSize); absent when the dataset cannot be loaded. */
  readonly fieldSize?: number;
  /** Training iterations of its jobs. */
  readonly iterations: number;
  /** Calibrated costs on this machine (one worker). */
  readonly cost?: GroupCost;
  /** Serial milliseconds of its jobs by piece, each as it runs beside the other workers (after calibration). */
  readonly breakdown?: WallBreakdown;
}

export interface WorkEstimate {
  readonly jobs: number;
  readonly gridJobs: number;
  readonly adaptationJobs: number;
  readonly sampleNfe: number;
  /** Σ sample·NFE × field size: multiply-adds of training (groups whose dataset loads). */
  readonly units: number;
  /** Σ evaluation and audit sample·NFE over jobs (groups whose dataset loads). */
  readonly evalSampleNfe: number;
  /** Σ evaluation sample·NFE × field size: multiply-adds of evaluation and audits. */
  readonly evalUnits: number;
  readonly groups: readonly WorkGroup[];
  /** Wall time of the whole plan on this machine, idle, with `workers` workers on `transport` (after calibration). */
  readonly wallMs?: number;
  /**
   * The same at the machine's present load: the others' runnable tasks (1-minute load average) share its cores
   * with the workers, each getting cores / (load + workers) of a core (absent when that is a whole core).
   */
  readonly loaded?: { readonly wallMs: number; readonly load: number; readonly cores: number };
  /** Serial milliseconds by piece, every group (after calibration). */
  readonly breakdown?: WallBreakdown;
  /** Of the wall time, what the report written as the run goes and at its end adds (when the run writes one). */
  readonly reportMs?: number;
  readonly workers: number;
  readonly transport: TransportName;
  /** The transport's per-job overhead and start, and where they come from (cached, measured now, default). */
  readonly transportCost?: TransportCost & { readonly source: string };
  /** Above WORK_THRESHOLD or JOB_THRESHOLD: `study run` needs --yes. */
  readonly needsYes: boolean;
  /** Devices the jobs require besides the CPU: the calibration ran on this machine's CPU, not on them. */
  readonly uncalibratedDevices?: readonly string[];
}

function medianSpec(specs: SolverSpec[]): SolverSpec {
  return [...specs].sort((a, b) => stepNfe(a) - stepNfe(b))[Math.floor((specs.length - 1) / 2)]!;
}

/** Training, evaluation and audit work of each job of a plan (no I/O). */
export function jobWork(plan: Pick<StudyPlan, 'jobs'>): Map<string, JobWork> {
  const gridSpecs = new Map<string, SolverSpec[]>();
  for (const j of plan.jobs) {
    if (j.adapt) continue;
    const s = parseSolverSpec(j.trainSolver);
    gridSpecs.set(s.method, [...(gridSpecs.get(s.method) ?? []), s]);
  }
  const out = new Map<string, JobWork>();
  for (const j of plan.jobs) {
    const s = parseSolver(j.trainSolver);
    const grid = gridSpecs.get(s.spec.method);
    const fallback: SolverSpec = s.kind === 'fixed' ? { kind: 'fixed', method: s.spec.method, steps: 20 } : s.spec;
    const around = j.adapt ? (grid && grid.length > 0 ? medianSpec(grid) : fallback) : s.spec;
    const perIteration = stepNfe(around);
    const samples = j.iterations * j.batchSize;
    const checks = j.adapt ? adaptChecks(j.iterations) : 0;
    const checkCalls = adaptCheckCalls(around, j.batchSize).map((c) => ({ calls: c.calls * checks, rows: c.rows }));
    const tests = j.testSolvers
      .flatMap((t) => (t === 'paper' ? paperTestSolvers(formatSolverSpec(around)) : [t]))
      .map((t) => parseSolverSpec(t, j.solverLimits));
    const evaluated = [around, ...tests];
    // Per point, with the fan reference at its floor (estimateWork prices the calibrated one).
    const audits = auditCalls(around, { ...j.audit, d: 2, n: 1, referenceNfe: REFERENCE_NFE_FLOOR });
    const evalNfePerPoint = evaluated.reduce((sum, t) => sum + stepNfe(t), 0);
    const auditNfePerPoint = audits.reduce((sum, c) => sum + c.calls, 0);
    out.set(j.id, {
      nfePerSample: 2 * perIteration * j.iterations + (checks > 0 ? sampleNfeOf(checkCalls) / j.batchSize : 0),
      samples,
      sampleNfe: 2 * perIteration * samples + (checks > 0 ? sampleNfeOf(checkCalls) : 0),
      evalNfePerPoint: evalNfePerPoint + auditNfePerPoint,
      auditNfePerPoint,
      around,
      evaluated,
      builds: j.adapt && around.kind === 'fixed' ? 1 + checks : 1,
      checkCalls: checks > 0 ? checkCalls : [],
    });
  }
  return out;
}

interface FieldInfo {
  /** Multiply-adds of one field evaluation of one sample. */
  readonly size: number;
  readonly testPoints: number;
  /** State size of one point. */
  readonly d: number;
}

/**
 * Multiply-adds of one field evaluation of one sample: each dense weight once,
 * each convolution weight (rank ≥ 3) once per spatial position of the state.
 * Undefined when the dataset cannot be loaded (its jobs will fail and say why).
 */
async function fieldInfo(dataset: string, field: string): Promise<FieldInfo | undefined> {
  let config;
  let testPoints;
  try {
    const data = await loadDataset(dataset, 0);
    testPoints = data.test.n;
    config = modelConfigFor(data, field, 0, 0, 1);
  } catch {
    return undefined;
  }
  const shape = config.stateShape;
  const positions = shape.length === 1 ? shape[0]! : shape.slice(1).reduce((a, b) => a * b, 1);
  const size = paramShapes(config)
    .filter((p) => p.name.startsWith('field.') && p.name.endsWith('.weight'))
    .reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1) * (p.shape.length >= 3 ? positions : 1), 0);
  return { size, testPoints, d: shape.reduce((a, b) => a * b, 1) };
}

/** The field calls of one job after training: its evaluation, then its audits. */
function jobCalls(
  j: Job,
  w: JobWork,
  info: FieldInfo,
  reference: Pick<AuditShape, 'referenceNfe' | 'referenceNfePerStop' | 'referenceMsPerRow'>,
): { evaluation: Calls[]; audits: Calls[] } {
  const n = Math.min(AUDIT_POINTS, info.testPoints);
  return {
    evaluation: evaluationCalls(w.evaluated, info.testPoints),
    audits: auditCalls(w.around, { ...j.audit, d: info.d, n, ...reference }),
  };
}

/**
 * Graph builds per job: the seeds of one grid configuration share a build on each worker (a worker keeps its last
 * session, and seeds are planned side by side), so a configuration of k jobs builds min(k, workers) times.
 */
function sharedBuilds(jobs: readonly Job[], work: Map<string, JobWork>, workers: number): Map<string, number> {
  const configs = new Map<string, Job[]>();
  for (const j of jobs) {
    if (j.adapt) continue;
    const key = `${j.dataset}\n${j.field}\n${j.trainSolver}\n${j.batchSize}`;
    configs.set(key, [...(configs.get(key) ?? []), j]);
  }
  const out = new Map<string, number>();
  for (const j of jobs) if (j.adapt) out.set(j.id, work.get(j.id)!.builds);
  for (const list of configs.values())
    for (const j of list) out.set(j.id, Math.min(list.length, workers) / list.length);
  return out;
}

/** One job's serial milliseconds by piece. */
function priceJob(j: Job, w: JobWork, calls: ReturnType<typeof jobCalls>, builds: number, cost: GroupCost) {
  return {
    overheadMs: cost.jobOverheadMs,
    buildMs: builds * buildMs(w.around, cost),
    // The checks' forward calls are priced as evaluation calls, the rest of the work at the training slope.
    trainMs:
      j.iterations * cost.msPerIteration +
      (w.sampleNfe - sampleNfeOf(w.checkCalls)) * cost.msPerSampleNfe +
      callsMs(w.checkCalls, cost),
    evalMs: callsMs(calls.evaluation, cost),
    auditMs: callsMs(calls.audits, cost),
  };
}

const PIECES = ['overheadMs', 'buildMs', 'trainMs', 'evalMs', 'auditMs', 'transportMs'] as const;

function scaled<T extends Partial<WallBreakdown>>(b: T, factor: number): T {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, (v as number) * factor])) as T;
}

function sumBreakdowns(parts: readonly Partial<WallBreakdown>[]): WallBreakdown {
  const out = Object.fromEntries(PIECES.map((k) => [k, parts.reduce((s, p) => s + (p[k] ?? 0), 0)]));
  return out as unknown as WallBreakdown;
}

export interface EstimateOptions {
  /** Parallel workers the wall time is for (default 1). */
  readonly workers?: number;
  /** The transport the wall time is for (default the local pool). */
  readonly transport?: TransportName;
  /**
   * Run the calibration (a few short real training runs and jobs per dataset × field × kind). Default true.
   * Datasets are loaded either way (for the field size).
   */
  readonly calibrate?: boolean;
  /** Measure again instead of using this machine's cached calibration (default false). */
  readonly recalibrate?: boolean;
  /** How long this CLI process took to start (ms): part of the transport's start when it is measured now. */
  readonly processStartMs?: number;
  /**
   * Batch size of the calibration runs (default: the jobs' batch, at most 32: the slope scales to bigger batches,
   * and memory stays small).
   */
  readonly calibrationBatch?: number;
  /**
   * What the run's report adds to its wall time, given its results, the jobs' wall time, the workers and the cores
   * (the CLI passes the live report's price, report/live.ts; absent: a run without a report).
   */
  readonly report?: (results: number, jobsMs: number, workers: number, cores: number, figures: number) => number;
}

interface Grouped {
  readonly dataset: string;
  readonly field: string;
  readonly kind: SolverKind;
  readonly jobs: Job[];
}

function groupJobs(jobs: readonly Job[]): Grouped[] {
  const byGroup = new Map<string, Grouped>();
  for (const j of jobs) {
    const kind = parseSolverSpec(j.trainSolver).kind;
    const key = `${j.dataset}\n${j.field}\n${kind}`;
    const g = byGroup.get(key) ?? { dataset: j.dataset, field: j.field, kind, jobs: [] };
    g.jobs.push(j);
    byGroup.set(key, g);
  }
  return [...byGroup.values()];
}

/** Tiny jobs the pool's calibration runs (24 gave 10–13.5 ms a job from one run to the next; 48 take ~1 s more). */
const POOL_CALIBRATION_JOBS = 48;

/** The pool's cost, measured with as many threads as the estimate's workers (at most 2: contention is part of it). */
function poolMeasure(workers: number, processStartMs: number) {
  const threads = Math.max(1, Math.min(2, workers));
  return async () => {
    const { jobMs: _jobMs, ...c } = await measureTransport(
      new LocalTransport({ threads }),
      threads,
      POOL_CALIBRATION_JOBS,
    );
    return { ...c, startupMs: c.startupMs + processStartMs * (c.cpuShare ?? 1) };
  };
}

/** One group's work and, once calibrated, its serial milliseconds by piece and its longest job. */
async function priceGroup(
  g: Grouped,
  work: Map<string, JobWork>,
  builds: Map<string, number>,
  info: FieldInfo | undefined,
  options: EstimateOptions,
  located: string,
): Promise<{ group: WorkGroup; longestJobMs: number }> {
  const cost =
    options.calibrate !== false && info !== undefined
      ? await calibrateGroup(
          g.dataset,
          located,
          g.kind,
          options.calibrationBatch ?? Math.min(32, g.jobs[0]!.batchSize),
          options.recalibrate,
          Math.max(0, ...g.jobs.map((j) => stepNfe(work.get(j.id)!.around))),
        )
      : undefined;
  const reference = cost
    ? {
        referenceNfe: cost.referenceNfe,
        referenceNfePerStop: cost.referenceNfePerStop,
        referenceMsPerRow: cost.referenceMsPerRow,
      }
    : { referenceNfe: REFERENCE_NFE_FLOOR };
  const calls = info ? g.jobs.map((j) => jobCalls(j, work.get(j.id)!, info, reference)) : undefined;
  const evalSampleNfe = calls?.reduce((s, c) => s + sampleNfeOf(c.evaluation) + sampleNfeOf(c.audits), 0);
  // Beside other busy workers every job runs slower (calibrated: shared cores, caches, memory bandwidth).
  const slower = (options.workers ?? 1) > 1 ? (cost?.contention ?? 1) : 1;
  const priced =
    cost && calls
      ? g.jobs.map((j, k) => scaled(priceJob(j, work.get(j.id)!, calls[k]!, builds.get(j.id)!, cost), slower))
      : [];
  const jobMs = priced.map((p) => p.overheadMs + p.buildMs + p.trainMs + p.evalMs + p.auditMs);
  const group: WorkGroup = {
    dataset: g.dataset,
    field: g.field,
    kind: g.kind,
    jobs: g.jobs.length,
    iterations: g.jobs.reduce((s, j) => s + j.iterations, 0),
    sampleNfe: g.jobs.reduce((s, j) => s + work.get(j.id)!.sampleNfe, 0),
    ...(evalSampleNfe !== undefined ? { evalSampleNfe } : {}),
    ...(info !== undefined ? { fieldSize: info.size } : {}),
    ...(cost ? { cost } : {}),
    ...(cost && calls ? { breakdown: sumBreakdowns(priced) } : {}),
  };
  return { group, longestJobMs: Math.max(0, ...jobMs) };
}

function wall(idleMs: number, workers: number): Pick<WorkEstimate, 'wallMs' | 'loaded'> {
  const load = loadavg()[0]!;
  const cores = availableParallelism();
  const factor = (load + Math.min(workers, cores)) / cores;
  return { wallMs: idleMs, ...(factor > 1 ? { loaded: { wallMs: idleMs * factor, load, cores } } : {}) };
}

/**
 * Figures the study's report draws, about: accuracy against steps and the fan audit's, per dataset × field × training
 * method (report/sections.ts). A page's cost grows with them: paper-spheres' 32 took most of its 2.7 s page.
 */
function reportFigures(jobs: readonly Job[]): number {
  const groups = new Set(jobs.map((j) => `${j.dataset}\n${j.field}\n${j.trainSolver.split(':')[0]}`));
  return 2 * groups.size;
}

export async function estimateWork(
  plan: Pick<StudyPlan, 'jobs'> & Partial<Pick<StudyPlan, 'spec'>>,
  options: EstimateOptions = {},
): Promise<WorkEstimate> {
  const workers = options.workers ?? 1;
  // Field files are measured where the study's spec says they lie (jobs name them by hash).
  const files = plan.spec ? studyFieldFiles(plan.spec) : {};
  const at = (field: string) => (fieldFileOf(field, files) !== undefined ? locateField(field, files) : field);
  const transport = options.transport ?? 'pool';
  const work = jobWork(plan);
  const builds = sharedBuilds(plan.jobs, work, workers);
  const groups: WorkGroup[] = [];
  const infos = new Map<string, FieldInfo | undefined>();
  let longestJobMs = 0;
  for (const g of groupJobs(plan.jobs)) {
    const pk = `${g.dataset}\n${g.field}`;
    if (!infos.has(pk)) infos.set(pk, await fieldInfo(g.dataset, at(g.field)));
    const priced = await priceGroup(g, work, builds, infos.get(pk), options, at(g.field));
    groups.push(priced.group);
    longestJobMs = Math.max(longestJobMs, priced.longestJobMs);
  }
  const calibrated = groups.length > 0 && groups.every((g) => g.breakdown !== undefined);
  const tc = calibrated
    ? await transportCost(transport, {
        recalibrate: options.recalibrate,
        ...(transport === 'pool' ? { measure: poolMeasure(workers, options.processStartMs ?? 0) } : {}),
      })
    : undefined;
  const breakdown =
    calibrated && tc
      ? sumBreakdowns([...groups.map((g) => g.breakdown!), { transportMs: plan.jobs.length * tc.msPerJob }])
      : undefined;
  const serialMs = breakdown ? PIECES.reduce((s, k) => s + breakdown[k], 0) : undefined;
  const jobsMs = serialMs !== undefined ? Math.max(serialMs / workers, longestJobMs) : undefined;
  const reportMs =
    jobsMs !== undefined && options.report
      ? options.report(plan.jobs.length, jobsMs, workers, availableParallelism(), reportFigures(plan.jobs))
      : undefined;
  const adaptationJobs = plan.jobs.filter((j) => j.adapt).length;
  const devices = [...new Set(plan.jobs.flatMap((j) => (j.device ? [j.device] : [])))];
  return {
    jobs: plan.jobs.length,
    gridJobs: plan.jobs.length - adaptationJobs,
    adaptationJobs,
    sampleNfe: groups.reduce((s, g) => s + g.sampleNfe, 0),
    units: groups.reduce((s, g) => s + g.sampleNfe * (g.fieldSize ?? 0), 0),
    evalSampleNfe: groups.reduce((s, g) => s + (g.evalSampleNfe ?? 0), 0),
    evalUnits: groups.reduce((s, g) => s + (g.evalSampleNfe ?? 0) * (g.fieldSize ?? 0), 0),
    groups,
    ...(jobsMs !== undefined && tc ? wall(tc.startupMs + jobsMs + (reportMs ?? 0), workers) : {}),
    ...(reportMs !== undefined ? { reportMs } : {}),
    ...(breakdown && tc ? { breakdown, transportCost: tc } : {}),
    workers,
    transport,
    needsYes:
      plan.jobs.length > JOB_THRESHOLD ||
      groups.reduce((s, g) => s + g.sampleNfe * (g.fieldSize ?? 0), 0) > WORK_THRESHOLD,
    ...(devices.length > 0 ? { uncalibratedDevices: devices } : {}),
  };
}
