/**
 * The paper's cross-solver test set (Ott et al. 2021): which solvers a model
 * trained with one solver is tested with. Pure solver-spec arithmetic, used by
 * evaluation, the critical-step audit, study planning and the CLI.
 */
import { SpecError } from '../errors.js';
import { fixedStepCount, parseSolverList, parseSolverSpec, type SolverSpec } from './spec.js';

/** Round away binary noise (1e-3 × 0.1 = 1.0000000000000002e-4) so spec strings stay readable. */
function tidy(x: number): number {
  return Number(x.toPrecision(12));
}

/** The paper's test set: #steps × {0.5, 0.75, 1, 1.5, 2} for euler/midpoint/rk4; dopri5 at tol × {0.1, 1, 10}. */
export function paperTestSolvers(train: SolverSpec, t0 = 0, t1 = 1): SolverSpec[] {
  if (train.kind === 'fixed') {
    const n = fixedStepCount(train, t0, t1);
    const counts = [...new Set([0.5, 0.75, 1, 1.5, 2].map((f) => Math.max(1, Math.round(n * f))))];
    const out: SolverSpec[] = [];
    for (const method of ['euler', 'midpoint', 'rk4'])
      for (const steps of counts) out.push({ kind: 'fixed', method, steps });
    return out;
  }
  const methods = train.method === 'dopri5' ? ['dopri5'] : [train.method, 'dopri5'];
  return methods.flatMap((method) =>
    [0.1, 1, 10].map((f) => ({
      kind: 'adaptive' as const,
      method,
      rtol: tidy(train.rtol * f),
      atol: tidy(train.atol * f),
      ...(train.maxSteps !== undefined ? { maxSteps: train.maxSteps } : {}),
    })),
  );
}

/** A test-solver list, or "paper" (or nothing) for the paper's set around the training solver. */
export function resolveTestSolvers(
  list: string | undefined,
  trainSolver: string | undefined,
  t0 = 0,
  t1 = 1,
): SolverSpec[] {
  if (list === undefined || list.trim() === 'paper') {
    if (!trainSolver) throw new SpecError('--solvers is required: the model does not record its training solver');
    return paperTestSolvers(parseSolverSpec(trainSolver), t0, t1);
  }
  return parseSolverList(list);
}
