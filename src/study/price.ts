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
 *    calibration, never below REFERENCE_NFE_FLOOR.
 */
import { FOLD_AUTO_MAX_DIM } from '../audit/audits.js';
import { DEFAULT_REFINE_LEVELS } from '../audit/refine.js';
import { asSolver, type Solver } from '../solvers/solver.js';
import { fixedStepCount, type SolverSpec } from '../solvers/spec.js';
import type { CachedCost } from './calibration-cache.js';

/** The exponent of a graph build's growth with its stages (measured on conv1d fields: 1.4–1.6). */
export const BUILD_EXPONENT = 1.5;

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
    out.push({ calls: Math.max(REFERENCE_NFE_FLOOR, a.referenceNfe), rows: a.n });
  }
  return out;
}

export const sampleNfeOf = (calls: readonly Calls[]): number => calls.reduce((s, c) => s + c.calls * c.rows, 0);

/** Milliseconds of field calls. */
export function callsMs(calls: readonly Calls[], cost: Pick<CachedCost, 'msPerCall' | 'msPerRow'>): number {
  return calls.reduce((s, c) => s + c.calls * (cost.msPerCall + c.rows * cost.msPerRow), 0);
}

/** One training-graph build for `spec` (fixed: grows with its stages; adaptive: its step graphs). */
export function buildMs(spec: SolverSpec, cost: Pick<CachedCost, 'buildMs' | 'buildMsPerStage'>): number {
  if (spec.kind !== 'fixed') return cost.buildMs;
  return cost.buildMs + cost.buildMsPerStage * Math.pow(stepNfe(spec), BUILD_EXPONENT);
}
