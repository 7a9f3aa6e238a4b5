/**
 * The ODE-flow verdict of a crossing audit: what the evidence allows us to
 * conclude about "does this model behave like an ODE flow under this solver?",
 * and what that conclusion rests on. Used by the CLI, the library API and the
 * study report alike, so they never disagree.
 *
 * An exact flow is a homeomorphism: distinct trajectories never meet, a step
 * of the flow never folds space (det of the step map's Jacobian > 0) and in
 * 1-D the order of points is kept. Absence of evidence proves nothing about
 * smaller steps; only a proof earns "not an ODE flow".
 */

/** What the audit concludes. */
export type VerdictConclusion =
  /** A proof was found: no ODE flow does this. */
  | 'not-an-ode-flow'
  /** Crossings were seen, but they are not a proof (e.g. in a projection). */
  | 'inconclusive'
  /** Nothing found: necessary, not sufficient, for ODE semantics. */
  | 'no-evidence';

/** The kinds of proof a "not an ODE flow" verdict can rest on. */
export type VerdictProof =
  /** A step of the solver maps some state with det(∂step/∂z) ≤ 0. */
  | 'fold'
  /** Two 1-D trajectories swap order (or merge) within a step. */
  | 'order-swap'
  /** Two trajectories' chords cross in the full 2-D state space. */
  | 'crossing';

/** The subset of a crossing audit the verdict reads. */
export interface VerdictInput {
  /** State dimension. */
  readonly d: number;
  /** Distinct crossing pairs counted. */
  readonly crossings: number;
  /** True when the crossings were counted in a 2-D projection of a d > 2 state. */
  readonly projected: boolean;
  /** The fold check, when it ran. */
  readonly fold?: { readonly folded: number; readonly states: number; readonly minDet: number };
}

export interface Verdict {
  readonly conclusion: VerdictConclusion;
  /** The proof the conclusion rests on; empty unless conclusion is 'not-an-ode-flow'. */
  readonly proofs: readonly VerdictProof[];
  /** What was weighed, in numbers. */
  readonly evidence: {
    readonly crossings: number;
    readonly projected: boolean;
    /** Null when the fold check did not run. */
    readonly folded: number | null;
    readonly foldStates: number | null;
  };
  /** One line a person can act on. */
  readonly text: string;
}

/** Weigh a crossing audit's evidence. */
export function crossingVerdict(r: VerdictInput): Verdict {
  const evidence = { crossings: r.crossings, projected: r.projected, folded: r.fold?.folded ?? null, foldStates: r.fold?.states ?? null };
  const proofs: VerdictProof[] = [];
  if ((r.fold?.folded ?? 0) > 0) proofs.push('fold');
  if (r.crossings > 0 && !r.projected) proofs.push(r.d === 1 ? 'order-swap' : 'crossing');
  if (proofs.length > 0) {
    const text = proofs[0] === 'fold' ? 'NOT an ODE flow under this solver (a step folds space)' : 'NOT an ODE flow under this solver (trajectories cross)';
    return { conclusion: 'not-an-ode-flow', proofs, evidence, text };
  }
  if (r.crossings > 0) {
    return {
      conclusion: 'inconclusive',
      proofs,
      evidence,
      text: `trajectories cross in the 2-D projection — a hint, not proof; ${r.fold ? 'the fold check found no fold' : 'run with --fold to check for folds'}`,
    };
  }
  return { conclusion: 'no-evidence', proofs, evidence, text: 'no crossing found (necessary, not sufficient, for ODE semantics)' };
}
