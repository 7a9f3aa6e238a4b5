/**
 * The Solver value: a SolverSpec resolved once into its spec, its Butcher
 * tableau and its step-size controller. Training, the graph writers and the
 * audits carry this value down instead of looking the spec up again in every
 * layer. "Fixed or adaptive" is decided once: parseSolverSpec gives a method
 * with an embedded error estimate a tolerance (an adaptive spec), and from
 * then on the spec's `kind`, carried here as the Solver's, says which for
 * every layer (and picks the controller).
 */
import { ConstantStepSize, PIDController } from './controller.js';
import {
  fixedStepCount,
  formatSolverSpec,
  parseSolverSpec,
  type AdaptiveSolverSpec,
  type FixedSolverSpec,
  type SolverLimits,
  type SolverSpec,
} from './spec.js';
import { getTableau, type Tableau } from './tableau.js';

export interface FixedSolver {
  readonly kind: 'fixed';
  readonly spec: FixedSolverSpec;
  /** The spec's canonical text (formatSolverSpec): its name in logs, checkpoints and session keys. */
  readonly label: string;
  readonly tableau: Tableau;
  readonly controller: ConstantStepSize;
}

export interface AdaptiveSolver {
  readonly kind: 'adaptive';
  readonly spec: AdaptiveSolverSpec;
  readonly label: string;
  readonly tableau: Tableau;
  readonly controller: PIDController;
}

export type Solver = FixedSolver | AdaptiveSolver;

/**
 * The one place a spec meets its tableau and controller. The spec's kind picks the controller: a fixed
 * grid may also run a tableau with an error estimate (the order tests do), which it then ignores.
 */
export function resolveSolver(spec: SolverSpec): Solver {
  const tableau = getTableau(spec.method);
  const label = formatSolverSpec(spec);
  return spec.kind === 'fixed'
    ? Object.freeze({ kind: 'fixed', spec, label, tableau, controller: new ConstantStepSize(spec) })
    : Object.freeze({ kind: 'adaptive', spec, label, tableau, controller: new PIDController(spec, tableau.order) });
}

/** parseSolverSpec, resolved. */
export function parseSolver(text: string, limits?: SolverLimits): Solver {
  return resolveSolver(parseSolverSpec(text, limits));
}

export function isSolver(s: SolverSpec | Solver): s is Solver {
  return 'tableau' in s;
}

/** For library entry points that take either: a Solver passes through, a spec is resolved here. */
export function asSolver(s: SolverSpec | Solver): Solver {
  return isSolver(s) ? s : resolveSolver(s);
}

/** The same method with another step size: a new spec, the same tableau (no look-up). */
export function withStep(solver: FixedSolver, h: number): FixedSolver {
  const spec: FixedSolverSpec = { kind: 'fixed', method: solver.spec.method, h };
  const label = formatSolverSpec(spec);
  return Object.freeze({ kind: 'fixed', spec, label, tableau: solver.tableau, controller: new ConstantStepSize(spec) });
}

/** The same method and options with rtol = atol = tol. */
export function withTolerance(solver: AdaptiveSolver, tol: number): AdaptiveSolver {
  const spec: AdaptiveSolverSpec = { ...solver.spec, rtol: tol, atol: tol };
  const controller = new PIDController(spec, solver.tableau.order);
  return Object.freeze({ kind: 'adaptive', spec, label: formatSolverSpec(spec), tableau: solver.tableau, controller });
}

/** Field evaluations of one fixed-step solve over [t0, t1] (steps × stages); undefined for adaptive solvers. */
export function fixedSolveNfe(s: SolverSpec, t0 = 0, t1 = 1): number | undefined {
  return s.kind === 'fixed' ? fixedStepCount(s, t0, t1) * resolveSolver(s).tableau.c.length : undefined;
}
