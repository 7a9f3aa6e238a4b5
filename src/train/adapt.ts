/**
 * The paper's adaptation algorithms (Ott et al. 2021, §4), as decision logic
 * separated from training: every `checkEvery` iterations compare the
 * accuracy under the training solver with a more accurate test solver and
 * shrink or cautiously grow the step size (fixed-step) or tolerance
 * (adaptive). Fixes the reference code's defects: the current iteration's NFE
 * is used (not a stale log slot) and steps are step sizes (not counts).
 *
 * Beyond the paper (option `folds`): a fixed step that folds space on the
 * check batch (det ∂step/∂z ≤ 0 at a state, a proof that the step map is no
 * ODE flow: audit/fold.ts) is shrunk like one that loses accuracy, and a
 * larger step is taken only if it does not fold. The check itself is passed
 * in (FoldProbe): training sits below the audits and never imports them.
 */
import { SpecError } from '../errors.js';
import type { AdaptDecision } from '../formats/index.js';
import {
  DEFAULT_SOLVER_LIMITS,
  formatSolverSpec,
  type AdaptiveSolverSpec,
  type FixedSolverSpec,
  type SolverSpec,
} from '../solvers/spec.js';
import { getTableau } from '../solvers/tableau.js';
import type { Model } from '../models/types.js';

export interface AdaptOptions {
  /** Maximal accuracy difference between train and test solver (paper: 0.1). */
  readonly threshold: number;
  /** Check every N iterations (paper: 50). */
  readonly checkEvery: number;
  /** Upper bound on fixed steps over [t0, t1] (paper: 500). */
  readonly maxSteps: number;
  /** Where a fixed-step run starts: Hairer's initial step from the first batch (paper) or the given spec. */
  readonly start: 'hairer' | 'spec';
  /** Starting tolerance for adaptive solvers (paper: 1e-6) unless start = 'spec'. */
  readonly startTol: number;
  /** Also shrink fixed steps that fold space on the check batch (beyond the paper; default false). */
  readonly folds: boolean;
}

/** Folded states of one step of `spec` at the check batch's states (supplied by the caller: the audits' fold check). */
/** nfe: the field evaluations the check made (batched calls, as training counts them). */
export type FoldProbe = (spec: FixedSolverSpec) => Promise<{ folded: number; states: number; nfe: number }>;

/**
 * Opens the fold check of a model's current parameters on a check batch (x of n samples): probe steps, then release.
 */
export type AdaptFoldCheck = (
  model: Model,
  x: Float32Array,
  n: number,
) => Promise<{ foldsOf: FoldProbe; release(): Promise<void> }>;

export const DEFAULT_ADAPT: AdaptOptions = {
  threshold: 0.1,
  checkEvery: 50,
  maxSteps: 500,
  start: 'hairer',
  startTol: 1e-6,
  folds: false,
};

export function validateAdaptOptions(o: AdaptOptions): AdaptOptions {
  if (!(o.threshold > 0 && o.threshold < 1))
    throw new SpecError(`adaptation threshold must be in (0, 1), got ${o.threshold}`);
  if (!Number.isInteger(o.checkEvery) || o.checkEvery < 1)
    throw new SpecError(`adaptation checkEvery must be a positive integer, got ${o.checkEvery}`);
  if (!Number.isInteger(o.maxSteps) || o.maxSteps < 1)
    throw new SpecError(`adaptation maxSteps must be a positive integer, got ${o.maxSteps}`);
  const ceiling = DEFAULT_SOLVER_LIMITS.maxSteps;
  if (o.maxSteps > ceiling)
    throw new SpecError(
      `adaptation maxSteps ${o.maxSteps} exceeds the step ceiling of ${ceiling} steps over the interval`,
    );
  if (!(o.startTol > 0)) throw new SpecError(`adaptation startTol must be > 0, got ${o.startTol}`);
  return o;
}

/** One logged decision (the format of results' adaptation traces: src/formats/result.ts). */
export type { AdaptDecision };

/** Accuracy and NFE of the current batch under a solver (supplied by the training engine; may be asynchronous). */
export type BatchAccuracy = (
  spec: SolverSpec,
) => { accuracy: number; nfe: number } | Promise<{ accuracy: number; nfe: number }>;

const fixedH = (s: FixedSolverSpec) => s.h ?? 1 / s.steps!;
/** The adaptation designs test solvers by order (new specs; train.ts resolves each once). */
const orderOf = (method: string) => getTableau(method).order;

/** The test solver of a fixed-step training solver (paper: Euler→Midpoint, Midpoint→RK4; generalised by order). */
export function fixedTestSolver(train: FixedSolverSpec, span = 1): FixedSolverSpec {
  const p = orderOf(train.method);
  const method = train.method === 'euler' ? 'midpoint' : 'rk4';
  const q = orderOf(method);
  const h = fixedH(train) / span;
  // Same h when it already gives > 50 "effective" steps (1/h^p), else a finer
  // step whose error h_test^q ≈ h^p / 50.
  const hTest = Math.pow(1 / h, p) > 50 && q > p ? h : Math.min(h, Math.pow(Math.pow(h, p) / 50, 1 / q));
  return { kind: 'fixed', method, h: hTest * span };
}

export async function fixedAdaptStep(
  iteration: number,
  spec: FixedSolverSpec,
  trainAccuracy: number,
  trainNfe: number,
  accuracyOf: BatchAccuracy,
  o: AdaptOptions,
  span = 1,
  foldsOf?: FoldProbe,
): Promise<{ spec: FixedSolverSpec; decision: AdaptDecision }> {
  const h = fixedH(spec);
  const test = fixedTestSolver(spec, span);
  const testRun = await accuracyOf(test);
  const fold = foldsOf ? await foldsOf(spec) : undefined;
  const base = {
    iteration,
    before: formatSolverSpec(spec),
    paramBefore: h,
    trainAccuracy,
    testAccuracy: testRun.accuracy,
    testSolver: formatSolverSpec(test),
    trainNfe,
    testNfe: testRun.nfe,
    ...(fold ? { folded: fold.folded, foldStates: fold.states } : {}),
  };
  let next: FixedSolverSpec = spec;
  let action: AdaptDecision['action'];
  let trialAccuracy: number | undefined;
  let trialFolded: number | undefined;
  if (Math.abs(testRun.accuracy - trainAccuracy) > o.threshold || (fold && fold.folded > 0)) {
    const steps = span / h;
    if (steps >= o.maxSteps) action = 'hold';
    else {
      // Halve, but never beyond maxSteps: then move the step count halfway to it.
      const halved = h / 2;
      const hNew = span / halved > o.maxSteps ? (2 * h) / ((o.maxSteps * h) / span + 1) : halved;
      next = { kind: 'fixed', method: spec.method, h: hNew };
      action = 'shrink';
    }
  } else {
    const hTry = Math.min(1.1 * h, span);
    const trial: FixedSolverSpec = { kind: 'fixed', method: spec.method, h: hTry };
    trialAccuracy = (await accuracyOf(trial)).accuracy;
    const accurate = hTry > h && Math.abs(trialAccuracy - testRun.accuracy) <= o.threshold;
    // The fold check of the larger step runs only when accuracy would let it grow.
    if (accurate && foldsOf) trialFolded = (await foldsOf(trial)).folded;
    if (accurate && !trialFolded) {
      next = trial;
      action = 'grow';
    } else action = 'keep';
  }
  const trialFold = trialFolded !== undefined ? { trialFolded } : {};
  return {
    spec: next,
    decision: { ...base, after: formatSolverSpec(next), paramAfter: fixedH(next), trialAccuracy, ...trialFold, action },
  };
}

/**
 * Test solver for tolerance adaptation: dopri5 at tol/10 (fehlberg2 → tol/5), made stricter until it costs more NFE
 * than training.
 */
export async function adaptiveAdaptStep(
  iteration: number,
  spec: AdaptiveSolverSpec,
  trainAccuracy: number,
  trainNfe: number,
  recentNfe: readonly number[],
  accuracyOf: BatchAccuracy,
  o: AdaptOptions,
): Promise<{ spec: AdaptiveSolverSpec; decision: AdaptDecision }> {
  const tol = spec.rtol;
  let testTol = spec.method === 'fehlberg2' ? tol / 5 : tol / 10;
  let test: AdaptiveSolverSpec = {
    kind: 'adaptive',
    method: 'dopri5',
    rtol: testTol,
    atol: testTol,
    maxSteps: spec.maxSteps,
  };
  let testRun = await accuracyOf(test);
  for (let tries = 0; testRun.nfe <= trainNfe && tries < 4; tries++) {
    testTol /= 10;
    test = { ...test, rtol: testTol, atol: testTol };
    testRun = await accuracyOf(test);
  }
  const base = {
    iteration,
    before: formatSolverSpec(spec),
    paramBefore: tol,
    trainAccuracy,
    testAccuracy: testRun.accuracy,
    testSolver: formatSolverSpec(test),
    trainNfe,
    testNfe: testRun.nfe,
  };
  const withTol = (t: number): AdaptiveSolverSpec => ({ ...spec, rtol: t, atol: t });
  let next = spec;
  let action: AdaptDecision['action'];
  let trialAccuracy: number | undefined;
  if (Math.abs(testRun.accuracy - trainAccuracy) > o.threshold) {
    next = withTol(tol * 0.5);
    action = 'shrink';
  } else if (recentNfe.length >= 5 && recentNfe.slice(-5).every((n) => n === trainNfe)) {
    // The solver already takes its minimal number of steps: a looser tolerance buys nothing.
    action = 'hold';
  } else {
    const trial = withTol(tol * 1.1);
    trialAccuracy = (await accuracyOf(trial)).accuracy;
    if (Math.abs(trialAccuracy - testRun.accuracy) <= o.threshold) {
      next = trial;
      action = 'grow';
    } else action = 'keep';
  }
  return {
    spec: next,
    decision: { ...base, after: formatSolverSpec(next), paramAfter: next.rtol, trialAccuracy, action },
  };
}
