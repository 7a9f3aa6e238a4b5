/**
 * What one job costs, piece by piece, as executeJob runs it (no I/O): the
 * forward field calls of its evaluation and audits (with the rows each call
 * carries), its graph builds, its training, and its fixed overhead, priced
 * from this machine's calibration (calibrate.ts). estimate.ts sums the jobs.
 *
 * Audits on n = min(AUDIT_POINTS, test points) points, K steps of s stages of
 * the training solver (src/audit/audits.ts):
 *  - crossing: the recorded trajectories (K·s calls); the fold check for
 *    states up to FOLD_AUTO_MAX_DIM (one step per recorded step on 2d·n
 *    perturbed rows, ≤ 65 536 rows a call); the refinement of 2-D crossing
 *    events (refine.ts: rk4 at 16 sub-steps on every step that has events,
 *    measured to be nearly every step, 128 on the few where events survive:
 *    measured on the quick study's 16 models, at most 2 steps; 1 024 never);
 *  - fan: the trajectories again, and the float64 reference (dopri5 at
 *    rtol 1e-8): its NFE depends on the model, measured on this field by the
 *    calibration with the steps it adds by stopping at every step of the
 *    audited solver (calibrated per stop), never below REFERENCE_NFE_FLOOR; its
 *    calls cost more per row than evaluation's (float64 solver arithmetic on
 *    every stage: 2.2 against 1.6 ms a call on 20 rows of the 900-d spheres).
 *
 * A graph build is priced with the slow first runs of its new session
 * (onnxruntime plans and allocates them), c0 + c1 · stages^p with c1 and p
 * fitted per group (fitBuildCurve: 1.1 for 900-d conv1d fields, 1.4 for
 * 2-d). Adaptation checks (src/train/adapt.ts) evaluate the check batch under
 * the test solver and a trial step; a fixed step that changes builds a new
 * training graph, adaptive solvers keep theirs.
 */
import { FOLD_AUTO_MAX_DIM } from '../audit/audits.js';
import { DEFAULT_REFINE_LEVELS } from '../audit/refine.js';
import { asSolver, type Solver } from '../solvers/solver.js';
import { fixedStepCount, type SolverSpec } from '../solvers/spec.js';
import { DEFAULT_ADAPT, fixedTestSolver } from '../train/adapt.js';
import type { CachedCost } from './calibration-cache.js';

/** The bounds of a fitted build exponent: a few noisy builds never make builds shrink or explode with stages. */
const BUILD_EXPONENT_RANGE = [1, 2] as const;

/**
 * The fan reference's NFE is at least this: measured 410–740 (median 530) on the quick study's 16 trained
 * models; a briefly trained calibration model may need fewer steps than a trained one.
 */
export const REFERENCE_NFE_FLOOR = 400;

/** Rows of one fold-check call at most (fold.ts's maxRows). */
const FOLD_MAX_ROWS = 65_536;

/** Refinement steps that reach the second level (measured: 0–3 on the quick study's models). */
const REFINED_STEPS = 2;

/** Forward field calls of `calls` calls with `rows` rows each. */
export interface Calls {
  readonly calls: number;
  readonly rows: number;
  /** Ms per row of each call when it is not the field call's (the fan reference's, with its float64 arithmetic). */
  readonly msPerRow?: number;
}

/** Steps and stages of one solve (adaptive: tol^(−1/(p+1)) steps of a smooth field, rough on purpose). */
export function solveSteps(s: SolverSpec | Solver): { steps: number; stages: number } {
  const { spec, tableau: tab } = asSolver(s);
  if (spec.kind === 'fixed') return { steps: fixedStepCount(spec), stages: tab.c.length };
  const steps = Math.max(2, Math.ceil(Math.pow(spec.rtol, -1 / (tab.order + 1))));
  return { steps, stages: tab.c.length - (tab.fsal ? 1 : 0) };
}

/** Forward NFE of one solve (adaptive: +2 for the initial step). */
export function stepNfe(s: SolverSpec | Solver): number {
  const { steps, stages } = solveSteps(s);
  return steps * stages + (asSolver(s).spec.kind === 'adaptive' ? 2 : 0);
}

/** Evaluation: every solver on every test point (encoder and head once per solve). */
export function evaluationCalls(specs: readonly SolverSpec[], points: number): Calls[] {
  return specs.map((s) => ({ calls: stepNfe(s) + 2, rows: points }));
}

export interface AuditShape {
  readonly crossing: boolean;
  readonly fan: boolean;
  /** State size of one point. */
  readonly d: number;
  /** Audited points. */
  readonly n: number;
  /** The fan reference's NFE (calibrated). */
  readonly referenceNfe: number;
  /** Its extra NFE per step of the audited solver, where it stops to record (calibrated; default 0). */
  readonly referenceNfePerStop?: number;
  /** Ms per row of one of its calls, its float64 solver arithmetic included (calibrated; default the field call's). */
  readonly referenceMsPerRow?: number;
}

/** The audits' field calls for a job trained (or adapted) to `spec`. */
export function auditCalls(spec: SolverSpec, a: AuditShape): Calls[] {
  const out: Calls[] = [];
  const trajectory = { calls: stepNfe(spec), rows: a.n };
  const { steps } = solveSteps(spec);
  if (a.crossing) {
    out.push(trajectory);
    if (a.d <= FOLD_AUTO_MAX_DIM) {
      const rows = 2 * a.d * a.n;
      const perStep = Math.ceil(rows / FOLD_MAX_ROWS);
      out.push({ calls: stepNfe(spec) * perStep, rows: rows / perStep });
    }
    if (a.d === 2) {
      const [first, second] = DEFAULT_REFINE_LEVELS;
      const rk4 = 4;
      out.push({ calls: steps * first! * rk4 + Math.min(steps, REFINED_STEPS) * second! * rk4, rows: a.n });
    }
  }
  if (a.fan) {
    out.push(trajectory);
    // The floor was measured on whole audits (stops included).
    const calls = Math.max(REFERENCE_NFE_FLOOR, Math.round(a.referenceNfe + steps * (a.referenceNfePerStop ?? 0)));
    const perRow = a.referenceMsPerRow !== undefined ? { msPerRow: a.referenceMsPerRow } : {};
    out.push({ calls, rows: a.n, ...perRow });
  }
  return out;
}

export const sampleNfeOf = (calls: readonly Calls[]): number => calls.reduce((s, c) => s + c.calls * c.rows, 0);

/** Milliseconds of field calls. */
export function callsMs(calls: readonly Calls[], cost: Pick<CachedCost, 'msPerCall' | 'msPerRow'>): number {
  return calls.reduce((s, c) => s + c.calls * (cost.msPerCall + c.rows * (c.msPerRow ?? cost.msPerRow)), 0);
}

/** Stages of the three builds the build curve is fitted through (calibrate.ts times euler:steps=N for each). */
export const BUILD_CURVE_STAGES = [1, 8, 32] as const;
/** The most stages a build beyond the curve is measured at (calibrate.ts): larger grids extrapolate from it. */
export const BUILD_TAIL_MAX_STAGES = 256;

/**
 * One training-graph build for `spec` (fixed: grows with its stages; adaptive: its step graphs). Beyond the curve's
 * last stages, the power law through its value there and the measured tail: builds grow faster than the curve fitted
 * on 1–32 stages says (2-d conv1d at 128 stages: 2.3 s built, 1.25 s on the curve; 900-d: 10 s against 7.3 s).
 */
export function buildMs(
  spec: SolverSpec,
  cost: Pick<CachedCost, 'buildMs' | 'buildMsPerStage' | 'buildExponent' | 'buildTail'>,
): number {
  if (spec.kind !== 'fixed') return cost.buildMs;
  const curve = (stages: number) => cost.buildMs + cost.buildMsPerStage * Math.pow(stages, cost.buildExponent);
  const stages = stepNfe(spec);
  const knot = BUILD_CURVE_STAGES.at(-1)!;
  const tail = cost.buildTail;
  if (!tail || stages <= knot || tail.stages <= knot) return curve(stages);
  const atKnot = curve(knot);
  // Never flatter than the curve itself, within the exponent bounds of a fit.
  const exponent = Math.min(
    BUILD_EXPONENT_RANGE[1],
    Math.max(cost.buildExponent, Math.log(tail.ms / atKnot) / Math.log(tail.stages / knot)),
  );
  return atKnot * Math.pow(stages / knot, exponent);
}

/** A build curve ms = c0 + c1 · stages^exponent (CachedCost's buildMs, buildMsPerStage, buildExponent). */
export interface BuildCurve {
  readonly buildMs: number;
  readonly buildMsPerStage: number;
  readonly buildExponent: number;
}

/**
 * The build curve through three measured builds at s1 < s2 < s3 stages: the exponent that gives the measured ratio
 * (ms3 − ms1) / (ms2 − ms1), within BUILD_EXPONENT_RANGE, then c1 through the outer two and c0 through the first.
 */
export function fitBuildCurve(points: readonly (readonly [stages: number, ms: number])[]): BuildCurve {
  const [[s1, b1], [s2, b2], [s3, b3]] = points as [[number, number], [number, number], [number, number]];
  const ratio = (p: number) => (s3 ** p - s1 ** p) / (s2 ** p - s1 ** p);
  // Where the middle build is no dearer than the first, only the last one grows (steepest) or none does (flat).
  const measured = b2 > b1 ? (b3 - b1) / (b2 - b1) : b3 > b1 ? Infinity : 0;
  let [lo, hi] = BUILD_EXPONENT_RANGE as readonly number[] as [number, number];
  if (measured <= ratio(lo)) hi = lo;
  else if (measured >= ratio(hi)) lo = hi;
  // ratio(p) grows with p: bisect.
  for (let k = 0; k < 50 && hi - lo > 1e-6; k++) {
    const mid = (lo + hi) / 2;
    if (ratio(mid) < measured) lo = mid;
    else hi = mid;
  }
  const p = (lo + hi) / 2;
  const c1 = Math.max(0, (b3 - b1) / (s3 ** p - s1 ** p));
  return { buildMs: Math.max(0, b1 - c1 * s1 ** p), buildMsPerStage: c1, buildExponent: p };
}

/** Adaptation checks of a job (adapt.ts: one every checkEvery iterations). */
export const adaptChecks = (iterations: number): number => Math.floor(iterations / DEFAULT_ADAPT.checkEvery);

/**
 * One adaptation check's forward field calls on the check batch (adapt.ts): the test solver, then the trial step 1.1
 * times longer (fixed: the test solver of fixedTestSolver; adaptive: dopri5 at a tenth of the tolerance).
 */
export function adaptCheckCalls(spec: SolverSpec, batch: number): Calls[] {
  const test: SolverSpec =
    spec.kind === 'fixed'
      ? fixedTestSolver(spec)
      : { kind: 'adaptive', method: 'dopri5', rtol: spec.rtol / 10, atol: spec.atol / 10 };
  return [
    { calls: stepNfe(test), rows: batch },
    { calls: stepNfe(spec), rows: batch },
  ];
}
