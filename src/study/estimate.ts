/**
 * How much work a plan is, before it runs: training field evaluations summed
 * over jobs (NFE per iteration × iterations × batch, "sample·NFE"), times the
 * field's size (parameters) — and, from a short calibration (a few real
 * training iterations per dataset × field × engine kind on this machine), the
 * wall time. `study run` asks for `--yes` above WORK_THRESHOLD.
 *
 * NFE per training iteration: fixed-step methods take steps × stages forward
 * and as many backward. Adaptive methods' steps depend on the model; they are
 * estimated as tol^(−1/(p+1)) steps (a smooth field), which is rough on
 * purpose. Adaptation runs end wherever the accuracy check leads: they are
 * estimated at the median grid step count of their method (20 steps without a
 * grid), plus a fifth for the checks.
 *
 * After training, a job evaluates its test set under its training solver and
 * each test solver (forward only, onnxruntime) and runs its audits on up to
 * AUDIT_POINTS points: the fan re-solves them with its float64 reference, the
 * crossing audit with the training solver at up to three refinements. This
 * evaluation work is counted apart (evalSampleNfe) and, priced at the
 * training's calibrated cost per sample·NFE, is part of the wall time: at a
 * few iterations (a smoke run) it is most of it.
 */
import { loadDataset } from '../data/spec.js';
import { paramShapes } from '../models/params.js';
import { asSolver, parseSolver, type Solver } from '../solvers/solver.js';
import { fixedStepCount, formatSolverSpec, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { modelConfigFor, trainRun } from '../train/run.js';
import { studyFieldFiles, type StudyPlan } from './plan.js';
import { fieldFileOf, locateField } from '../models/field-files.js';
import type { Job } from './types.js';
import { paperTestSolvers } from './paper.js';
import { DEFAULT_FAN_REFERENCE } from '../audit/audits.js';
import { calibrationKey, readCachedCost, writeCachedCost, type CachedCost } from './calibration-cache.js';

/** Points a job's audits run on (executeJob's AUDIT_POINTS). */
const AUDIT_POINTS = 500;

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
  /** Forward field evaluations per test point after training: the training solver, the test solvers, the audits (points beyond AUDIT_POINTS count only the evaluation part: see evalSampleNfe in WorkGroup). */
  readonly evalNfePerPoint: number;
  /** Of evalNfePerPoint, the audits' part (run on at most AUDIT_POINTS points). */
  readonly auditNfePerPoint: number;
}

export interface WorkGroup {
  readonly dataset: string;
  readonly field: string;
  /** 'fixed' trains on the compiled ort engine, 'adaptive' on tfjs (auto engine): different speeds. */
  readonly kind: 'fixed' | 'adaptive';
  readonly jobs: number;
  readonly sampleNfe: number;
  /** Σ over jobs of evaluation and audit NFE × test points (absent when the dataset cannot be loaded). */
  readonly evalSampleNfe?: number;
  /** Multiply-adds per field evaluation and sample (see fieldSize); absent when the dataset cannot be loaded. */
  readonly fieldSize?: number;
  /** Training iterations of its jobs. */
  readonly iterations: number;
  /** Calibrated cost of one iteration on this machine (one worker). */
  readonly cost?: IterationCost;
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
  /** Wall time of the whole plan on this machine with `workers` parallel workers (after calibration): training, evaluation and audits. */
  readonly wallMs?: number;
  readonly workers: number;
  /** Above WORK_THRESHOLD or JOB_THRESHOLD: `study run` needs --yes. */
  readonly needsYes: boolean;
  /** Devices the jobs require besides the CPU: the calibration ran on this machine's CPU, not on them. */
  readonly uncalibratedDevices?: readonly string[];
}

function stepNfe(s: SolverSpec | Solver): number {
  const { spec, tableau: tab } = asSolver(s);
  if (spec.kind === 'fixed') return fixedStepCount(spec) * tab.c.length;
  const steps = Math.max(2, Math.ceil(Math.pow(spec.rtol, -1 / (tab.order + 1))));
  return 2 + steps * (tab.c.length - (tab.fsal ? 1 : 0));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

/** Training work of each job of a plan (no I/O). */
export function jobWork(plan: Pick<StudyPlan, 'jobs'>): Map<string, JobWork> {
  const gridNfe = new Map<string, number[]>();
  const gridSpecs = new Map<string, SolverSpec[]>();
  for (const j of plan.jobs) {
    if (j.adapt) continue;
    const s = parseSolverSpec(j.trainSolver);
    gridNfe.set(s.method, [...(gridNfe.get(s.method) ?? []), stepNfe(s)]);
    gridSpecs.set(s.method, [...(gridSpecs.get(s.method) ?? []), s]);
  }
  const out = new Map<string, JobWork>();
  for (const j of plan.jobs) {
    const s = parseSolver(j.trainSolver);
    const fallback = s.kind === 'fixed' ? 20 * s.tableau.c.length : stepNfe(s);
    const perIteration = j.adapt
      ? 1.2 * (gridNfe.has(s.spec.method) ? median(gridNfe.get(s.spec.method)!) : fallback)
      : stepNfe(s);
    const samples = j.iterations * j.batchSize;
    const evaluation = evaluationNfe(j, gridSpecs.get(s.spec.method));
    out.set(j.id, {
      nfePerSample: 2 * perIteration * j.iterations,
      samples,
      sampleNfe: 2 * perIteration * samples,
      ...evaluation,
    });
  }
  return out;
}

/**
 * Forward NFE per test point after training (stepNfe counts a solve's forward evaluations): the training solver's own
 * evaluation, every test solver ("paper" resolved around the grid point; for
 * an adaptation run around its method's median grid point), and the audits.
 */
function evaluationNfe(
  j: Job,
  methodGrid: SolverSpec[] | undefined,
): { evalNfePerPoint: number; auditNfePerPoint: number } {
  const s = parseSolverSpec(j.trainSolver);
  const around = j.adapt && methodGrid && methodGrid.length > 0 ? medianSpec(methodGrid) : s;
  const tests = j.testSolvers
    .flatMap((t) => (t === 'paper' ? paperTestSolvers(formatSolverSpec(around)) : [t]))
    .map((t) => parseSolverSpec(t, j.solverLimits));
  const evalNfe = stepNfe(around) + tests.reduce((sum, t) => sum + stepNfe(t), 0);
  const fan = j.audit.fan ? stepNfe(around) + stepNfe(parseSolverSpec(DEFAULT_FAN_REFERENCE)) : 0;
  const crossing = j.audit.crossing ? stepNfe(around) * CROSSING_SOLVES : 0;
  return { evalNfePerPoint: evalNfe + fan + crossing, auditNfePerPoint: fan + crossing };
}

/** The crossing audit's solves in units of one training-solver solve: the audited one, then refinements (a rough bound: only crossing pairs are refined). */
const CROSSING_SOLVES = 1 + 2 + 4 + 8;

function medianSpec(specs: SolverSpec[]): SolverSpec {
  return [...specs].sort((a, b) => stepNfe(a) - stepNfe(b))[Math.floor((specs.length - 1) / 2)]!;
}

/**
 * Multiply-adds of one field evaluation of one sample: each dense weight once,
 * each convolution weight (rank ≥ 3) once per spatial position of the state.
 * Undefined when the dataset cannot be loaded (its jobs will fail and say why).
 */
async function fieldSize(dataset: string, field: string): Promise<{ size: number; testPoints: number } | undefined> {
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
  return { size, testPoints };
}

/** Per-iteration cost on this machine: a fixed overhead plus a part proportional to NFE × batch. */
export interface IterationCost {
  readonly msPerIteration: number;
  readonly msPerSampleNfe: number;
  /** When it was measured; from an earlier call on this machine when cached (study/calibration-cache.ts). */
  readonly measuredAt?: string;
  readonly cached?: boolean;
}

/** Median milliseconds of iterations 2..n of a short real training run (the first builds graphs; a median resists a busy moment). */
async function timeIterations(
  dataset: string,
  field: string,
  solver: string,
  batch: number,
): Promise<{ ms: number; nfe: number }> {
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
  const deltas = stamps
    .slice(1, iterations)
    .map((s, k) => s - stamps[k]!)
    .sort((x, y) => x - y);
  return { ms: deltas[Math.floor(deltas.length / 2)]!, nfe: nfe / (iterations - 1) };
}

/**
 * Calibrate the cost of one training iteration at the study's batch size:
 * two short runs with different NFE per iteration give the overhead and the
 * per-sample·NFE slope (a small field is all overhead, a big one all slope).
 */
type Kind = 'fixed' | 'adaptive';

async function calibrate(
  dataset: string,
  field: string,
  kind: Kind,
  batch: number,
  recalibrate = false,
): Promise<IterationCost> {
  const key = calibrationKey(dataset, field, kind, batch);
  const cached = recalibrate ? undefined : readCachedCost(key);
  if (cached) return { ...cached, cached: true };
  const measured = await measure(dataset, field, kind, batch);
  writeCachedCost(key, measured);
  return { ...measured, cached: false };
}

async function measure(dataset: string, field: string, kind: 'fixed' | 'adaptive', batch: number): Promise<CachedCost> {
  const [lo, hi] = kind === 'fixed' ? ['euler:steps=1', 'euler:steps=4'] : ['dopri5:0.1', 'dopri5:0.001'];
  const a = await timeIterations(dataset, field, lo, batch);
  const b = await timeIterations(dataset, field, hi, batch);
  const slope =
    b.nfe > a.nfe ? Math.max(0, (b.ms - a.ms) / ((b.nfe - a.nfe) * batch)) : b.ms / Math.max(1, b.nfe * batch);
  const msPerIteration = Math.max(0, a.ms - slope * a.nfe * batch);
  return { msPerIteration, msPerSampleNfe: slope, measuredAt: new Date().toISOString() };
}

export interface EstimateOptions {
  /** Parallel workers the wall time is for (default 1). */
  readonly workers?: number;
  /** Run the calibration (trains a few iterations per dataset × field × kind). Default true. Datasets are loaded either way (for the field size). */
  readonly calibrate?: boolean;
  /** Measure again instead of using this machine's cached calibration (default false). */
  readonly recalibrate?: boolean;
  /** Batch size of the calibration runs (default: the jobs' batch, at most 32: the slope scales to bigger batches, and memory stays small). */
  readonly calibrationBatch?: number;
}

export async function estimateWork(
  plan: Pick<StudyPlan, 'jobs'> & Partial<Pick<StudyPlan, 'spec'>>,
  options: EstimateOptions = {},
): Promise<WorkEstimate> {
  const workers = options.workers ?? 1;
  // Field files are measured where the study's spec says they lie (jobs name them by hash).
  const files = plan.spec ? studyFieldFiles(plan.spec) : {};
  const located = (field: string) => (fieldFileOf(field, files) !== undefined ? locateField(field, files) : field);
  const work = jobWork(plan);
  const byGroup = new Map<string, { dataset: string; field: string; kind: 'fixed' | 'adaptive'; jobs: Job[] }>();
  for (const j of plan.jobs) {
    const kind = parseSolverSpec(j.trainSolver).kind;
    const key = `${j.dataset}\n${j.field}\n${kind}`;
    const g = byGroup.get(key) ?? { dataset: j.dataset, field: j.field, kind, jobs: [] };
    g.jobs.push(j);
    byGroup.set(key, g);
  }
  const groups: WorkGroup[] = [];
  const sizes = new Map<string, { size: number; testPoints: number } | undefined>();
  for (const g of byGroup.values()) {
    const sampleNfe = g.jobs.reduce((s, j) => s + work.get(j.id)!.sampleNfe, 0);
    const pk = `${g.dataset}\n${g.field}`;
    if (!sizes.has(pk)) sizes.set(pk, await fieldSize(g.dataset, located(g.field)));
    const loaded = sizes.get(pk);
    const size = loaded?.size;
    const iterations = g.jobs.reduce((s, j) => s + j.iterations, 0);
    const evalSampleNfe = loaded
      ? g.jobs.reduce((s, j) => {
          const w = work.get(j.id)!;
          return (
            s +
            (w.evalNfePerPoint - w.auditNfePerPoint) * loaded.testPoints +
            w.auditNfePerPoint * Math.min(AUDIT_POINTS, loaded.testPoints)
          );
        }, 0)
      : undefined;
    let group: WorkGroup = {
      dataset: g.dataset,
      field: g.field,
      kind: g.kind,
      jobs: g.jobs.length,
      iterations,
      sampleNfe,
      ...(evalSampleNfe !== undefined ? { evalSampleNfe } : {}),
      ...(size !== undefined ? { fieldSize: size } : {}),
    };
    if (options.calibrate !== false && size !== undefined) {
      const batch = options.calibrationBatch ?? Math.min(32, g.jobs[0]!.batchSize);
      group = { ...group, cost: await calibrate(g.dataset, located(g.field), g.kind, batch, options.recalibrate) };
    }
    groups.push(group);
  }
  const sampleNfe = groups.reduce((s, g) => s + g.sampleNfe, 0);
  const units = groups.reduce((s, g) => s + g.sampleNfe * (g.fieldSize ?? 0), 0);
  const evalSampleNfe = groups.reduce((s, g) => s + (g.evalSampleNfe ?? 0), 0);
  const evalUnits = groups.reduce((s, g) => s + (g.evalSampleNfe ?? 0) * (g.fieldSize ?? 0), 0);
  const calibrated = groups.length > 0 && groups.every((g) => g.cost !== undefined);
  // Evaluation is priced at training's per-sample·NFE cost: forward-only onnxruntime on large chunks is about as fast per NFE as a training NFE.
  const serialMs = calibrated
    ? groups.reduce(
        (s, g) =>
          s + g.iterations * g.cost!.msPerIteration + (g.sampleNfe + (g.evalSampleNfe ?? 0)) * g.cost!.msPerSampleNfe,
        0,
      )
    : undefined;
  const adaptationJobs = plan.jobs.filter((j) => j.adapt).length;
  const devices = [...new Set(plan.jobs.flatMap((j) => (j.device ? [j.device] : [])))];
  return {
    jobs: plan.jobs.length,
    gridJobs: plan.jobs.length - adaptationJobs,
    adaptationJobs,
    sampleNfe,
    units,
    evalSampleNfe,
    evalUnits,
    groups,
    ...(serialMs !== undefined ? { wallMs: serialMs / workers } : {}),
    workers,
    needsYes: plan.jobs.length > JOB_THRESHOLD || units > WORK_THRESHOLD,
    ...(devices.length > 0 ? { uncalibratedDevices: devices } : {}),
  };
}
