/**
 * Critical step size / tolerance — finding 4 of Ott et al. (2021).
 *
 * Models are trained at several step sizes h (fixed-step solvers) or
 * tolerances tol (adaptive solvers) and each is tested with other solvers /
 * finer steps. A model "passes" when every test accuracy stays within
 * `threshold` (absolute accuracy fraction, default 0.1) of the accuracy with
 * its own training solver:  max_t |a_test,t − a_train| ≤ threshold (boundary
 * inclusive, up to 1e-12 of rounding).
 * A NaN accuracy (a failed evaluation) is a failure.
 *
 * Several rows may share a parameter value (e.g. seeds): that value passes
 * only when every row at it passes.
 *
 * Two rules are ours, beyond the paper's criterion:
 *  - chance: a model whose accuracy under its training solver is not above
 *    chance (1/classes) by more than `threshold` has learned nothing the
 *    criterion could measure — every solver gives chance, so the deviation is
 *    small — and never passes;
 *  - proof (criterion 'proof-aware', the default): a row whose audits proved
 *    its training configuration is no ODE flow (a fold, a 1-D order swap, a
 *    persistent crossing: audit/verdict.ts) fails, whatever its accuracy.
 * Criterion 'accuracy' is the paper's (with the chance rule).
 *
 * The critical value. Above it, models rely on the discretisation. Results
 * need not be monotone (a larger h can pass while a smaller one fails, e.g.
 * by noise), so two numbers are reported:
 *  - `critical`: the largest parameter p such that p AND every smaller tested
 *    parameter pass (null when the smallest one fails) — the conservative value;
 *  - `largestPassing`: the plain largest passing parameter (null when none
 *    passes). `monotone` says whether the pass/fail pattern is a prefix of
 *    passes followed only by failures, i.e. whether the two agree.
 */
import { SpecError } from '../errors.js';
import { parseSolver } from '../solvers/solver.js';
import { fixedStepCount } from '../solvers/spec.js';

/**
 * Whether a test solver is at least as accurate as the training solver: an
 * adaptive test against fixed-step training; for fixed steps, the same or a
 * higher order with at least as many steps; for adaptive training, a
 * tolerance no looser. Only such tests judge ODE semantics — a coarser solver
 * loses accuracy on a true ODE model too, through its own error.
 */
export function atLeastAsAccurate(trainSpec: string, testSpec: string, t0 = 0, t1 = 1): boolean {
  const train = parseSolver(trainSpec);
  const test = parseSolver(testSpec);
  if (train.kind === 'fixed') {
    if (test.kind === 'adaptive') return true;
    return (
      test.tableau.order >= train.tableau.order &&
      fixedStepCount(test.spec, t0, t1) >= fixedStepCount(train.spec, t0, t1)
    );
  }
  return test.kind === 'adaptive' && test.spec.rtol <= train.spec.rtol && test.spec.atol <= train.spec.atol;
}

export interface CriticalTest {
  readonly spec: string;
  readonly accuracy: number;
}

export interface CriticalRow {
  /** Optional identifier (e.g. a job id), copied to the evidence row. */
  readonly id?: string;
  /** The training solver spec, e.g. "euler:0.1". */
  readonly trainSpec: string;
  /** Its step size h (or tolerance tol). Must be > 0. */
  readonly trainParam: number;
  /** Accuracy with the training solver itself. */
  readonly trainAccuracy: number;
  /** Accuracies with the test solvers (at least one). */
  readonly tests: readonly CriticalTest[];
  /** Chance accuracy of the task (1/classes), when known: the chance rule. */
  readonly chance?: number;
  /** Why the audits proved this model is no ODE flow (the verdict's text), when they did. */
  readonly nonFlow?: string;
}

/** Which rows pass: the paper's accuracy criterion, or that and no proof of a non-flow. */
export type CriticalCriterion = 'accuracy' | 'proof-aware';

export interface CriticalOptions {
  /** Largest allowed |test − train| accuracy difference, in (0, 1). Default 0.1. */
  readonly threshold?: number;
  /** What the parameter is, for messages and reports. Default 'step'. */
  readonly kind?: 'step' | 'tol';
  /** Default 'proof-aware' (identical to 'accuracy' for rows without a proof). */
  readonly criterion?: CriticalCriterion;
}

/** Why a row fails: its accuracy deviates (or is NaN), it is at chance, or it is proven no ODE flow. */
export type CriticalFailure = 'deviation' | 'chance' | 'non-flow';

export interface CriticalEvidence {
  readonly id?: string;
  readonly trainSpec: string;
  readonly trainParam: number;
  readonly trainAccuracy: number;
  /** max over tests of |accuracy − trainAccuracy| (NaN when an accuracy is NaN). */
  readonly maxDeviation: number;
  /** The test with the largest deviation. */
  readonly worstTest: string;
  readonly pass: boolean;
  /** The paper's criterion alone: maxDeviation ≤ threshold. */
  readonly accuracyPass: boolean;
  /** Why it fails under the criterion applied, in that order of precedence; absent when it passes. */
  readonly failure?: CriticalFailure;
  readonly chance?: number;
  readonly nonFlow?: string;
  readonly tests: { spec: string; accuracy: number; deviation: number }[];
}

export interface CriticalParam {
  readonly param: number;
  readonly pass: boolean;
  /** Rows at this value. */
  readonly rows: number;
}

export interface CriticalResult {
  readonly kind: 'step' | 'tol';
  readonly criterion: CriticalCriterion;
  readonly threshold: number;
  /** Largest value such that it and every smaller tested value pass; null when the smallest fails. */
  readonly critical: number | null;
  /** Largest passing value, ignoring failures below it; null when none passes. */
  readonly largestPassing: number | null;
  /** Smallest failing value, or null when all pass. */
  readonly smallestFailing: number | null;
  /** True when no value passes above a failing one (critical === largestPassing). */
  readonly monotone: boolean;
  /** Distinct values, ascending, with the group verdict. */
  readonly params: CriticalParam[];
  /** One row per input row, sorted by trainParam ascending (stable). */
  readonly evidence: CriticalEvidence[];
}

export const DEFAULT_THRESHOLD = 0.1;

/**
 * A deviation equal to the threshold passes. Accuracies are fractions k/N, so
 * |0.8 − 0.7| evaluates to 0.10000000000000009; this slack keeps such exact
 * boundary cases passing.
 */
const BOUNDARY_SLACK = 1e-12;

/** Validate a threshold: a number strictly between 0 and 1. */
export function checkThreshold(threshold: number): number {
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold < 1)) {
    throw new SpecError(
      `threshold must be a number strictly between 0 and 1 (an accuracy fraction, e.g. 0.1), got ${String(threshold)}`,
    );
  }
  return threshold;
}

/** At chance: the training solver's accuracy is not above 1/classes by more than the threshold. */
export function atChance(trainAccuracy: number, chance: number | undefined, threshold: number): boolean {
  return chance !== undefined && !(trainAccuracy > chance + threshold);
}

function rowFailure(
  row: CriticalRow,
  accuracyPass: boolean,
  threshold: number,
  criterion: CriticalCriterion,
): CriticalFailure | undefined {
  if (!accuracyPass) return 'deviation';
  if (atChance(row.trainAccuracy, row.chance, threshold)) return 'chance';
  if (criterion === 'proof-aware' && row.nonFlow !== undefined) return 'non-flow';
  return undefined;
}

/** Find the critical step size (or tolerance) from cross-solver results. */
export function criticalStep(rows: readonly CriticalRow[], options: CriticalOptions = {}): CriticalResult {
  const threshold = checkThreshold(options.threshold ?? DEFAULT_THRESHOLD);
  const kind = options.kind ?? 'step';
  if (kind !== 'step' && kind !== 'tol')
    throw new SpecError(`critical: kind must be 'step' or 'tol', got ${String(kind)}`);
  const criterion = options.criterion ?? 'proof-aware';
  if (rows.length === 0)
    throw new SpecError(
      `critical ${kind === 'step' ? 'step size' : 'tolerance'}: no rows given (need models trained at one or more ` +
        `${kind === 'step' ? 'step sizes' : 'tolerances'})`,
    );
  const evidence: CriticalEvidence[] = rows.map((row, r) => {
    const where = `critical: row ${r} (${row.trainSpec})`;
    if (!(Number.isFinite(row.trainParam) && row.trainParam > 0))
      throw new SpecError(`${where}: trainParam must be a positive number, got ${row.trainParam}`);
    if (row.tests.length === 0) throw new SpecError(`${where}: no test results`);
    let maxDeviation = -Infinity;
    let worstTest = row.tests[0]!.spec;
    const tests = row.tests.map((test) => {
      const deviation = Math.abs(test.accuracy - row.trainAccuracy);
      if (Number.isNaN(deviation)) {
        if (!Number.isNaN(maxDeviation)) worstTest = test.spec;
        maxDeviation = NaN;
      } else if (deviation > maxDeviation) {
        maxDeviation = deviation;
        worstTest = test.spec;
      }
      return { spec: test.spec, accuracy: test.accuracy, deviation };
    });
    const accuracyPass = maxDeviation <= threshold + BOUNDARY_SLACK;
    const failure = rowFailure(row, accuracyPass, threshold, criterion);
    return {
      ...(row.id !== undefined ? { id: row.id } : {}),
      trainSpec: row.trainSpec,
      trainParam: row.trainParam,
      trainAccuracy: row.trainAccuracy,
      maxDeviation,
      worstTest,
      pass: failure === undefined,
      accuracyPass,
      ...(failure ? { failure } : {}),
      ...(row.chance !== undefined ? { chance: row.chance } : {}),
      ...(row.nonFlow !== undefined ? { nonFlow: row.nonFlow } : {}),
      tests,
    };
  });
  evidence.sort((a, b) => a.trainParam - b.trainParam);
  const params: CriticalParam[] = [];
  for (const e of evidence) {
    const last = params[params.length - 1];
    if (last && last.param === e.trainParam) {
      params[params.length - 1] = { param: last.param, pass: last.pass && e.pass, rows: last.rows + 1 };
    } else {
      params.push({ param: e.trainParam, pass: e.pass, rows: 1 });
    }
  }
  let critical: number | null = null;
  for (const p of params) {
    if (!p.pass) break;
    critical = p.param;
  }
  let largestPassing: number | null = null;
  let smallestFailing: number | null = null;
  for (const p of params) {
    if (p.pass) largestPassing = p.param;
    else if (smallestFailing === null) smallestFailing = p.param;
  }
  return {
    kind,
    criterion,
    threshold,
    critical,
    largestPassing,
    smallestFailing,
    monotone: critical === largestPassing,
    params,
    evidence,
  };
}
