/**
 * `testSolvers: paper` — the paper's cross-solver test convention, resolved
 * per training solver at plan time so that the concrete test set is part of
 * each job's config (and of its id). The convention itself lives with the
 * evaluation (src/audit/evaluate.ts); this turns it into spec strings.
 */
import { paperTestSolvers as paperSpecs } from '../solvers/test-set.js';
import { formatSolverSpec, parseSolverSpec } from '../solvers/spec.js';

export function paperTestSolvers(trainSolver: string): string[] {
  return [...new Set(paperSpecs(parseSolverSpec(trainSolver)).map(formatSolverSpec))];
}
