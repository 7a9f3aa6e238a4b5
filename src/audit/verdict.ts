/**
 * The ODE-flow verdict of a crossing audit: what the evidence allows us to
 * conclude about "does this model behave like an ODE flow under this solver?",
 * and what that conclusion rests on. Used by the CLI, the library API and the
 * study report alike, so they never disagree.
 *
 * An exact flow is a homeomorphism: a step of it never folds space
 * (det ∂step/∂z > 0), in 1-D it keeps the order of points, and two of its
 * trajectories never meet. "NOT an ODE flow" is said only on proof:
 *  - 'fold': the audited step map has det ≤ 0 at a visited state;
 *  - 'order-swap': two 1-D trajectories swap order within a step;
 *  - 'persistent-crossing': two 2-D trajectories' chords cross and still
 *    cross when both are re-solved finely over that step (src/audit/refine.ts).
 * A chord crossing alone is no proof. Under a fine solver (the model is the
 * flow) the chords of nearby curved orbits cross whenever the orbits are
 * closer than the chords' sagitta; under a fixed-step solver the step map is
 * the model and the chords are no part of it — a fold is what proves it is
 * no flow. Crossings that vanish under refinement are artefacts, counted apart.
 * Absence of proof at one step says nothing about other steps.
 */
import type { Refinement } from './refine.js';
import { displaySpec } from '../solvers/spec.js';

/** What the audit concludes. */
export type VerdictConclusion =
  /** A proof was found: no ODE flow does this. */
  | 'not-an-ode-flow'
  /** Crossings were seen, but none is a proof (artefacts, unresolved, or a projection). */
  | 'inconclusive'
  /** Nothing found: necessary, not sufficient, for ODE semantics. */
  | 'no-evidence';

/** The kinds of proof a "not an ODE flow" verdict can rest on. */
export type VerdictProof = 'fold' | 'order-swap' | 'persistent-crossing';

/** The subset of a crossing audit the verdict reads. */
export interface VerdictInput {
  /** The audited solver, as a spec string (for the text). */
  readonly solver?: string;
  /** 'fixed': the step map is the model; 'adaptive': the model is meant as the flow. */
  readonly stepMap?: 'fixed' | 'adaptive';
  /** State dimension. */
  readonly d: number;
  /** Distinct crossing pairs counted (exact). */
  readonly crossings: number;
  /** Of those, the pairs whose every crossing was a touch (in 1-D: a merge, not a swap). */
  readonly touchingPairs?: number;
  /** True when the crossings were counted in a 2-D projection of a d > 2 state. */
  readonly projected: boolean;
  /** The fold check, when it ran. */
  readonly fold?: { readonly folded: number; readonly states: number; readonly minDet: number };
  /** The refinement of 2-D crossing events, when it ran. */
  readonly refinement?: Pick<
    Refinement,
    'persistentPairs' | 'artefactPairs' | 'unresolvedPairs' | 'notRefinedPairs' | 'levels'
  >;
}

export interface VerdictEvidence {
  /** Crossing pairs of the chords (exact count). */
  readonly crossings: number;
  readonly projected: boolean;
  /** 1-D pairs that swap order (null unless d = 1). */
  readonly orderSwaps: number | null;
  /** 2-D crossing pairs by refinement outcome (null when not refined). */
  readonly persistent: number | null;
  readonly artefacts: number | null;
  readonly unresolved: number | null;
  readonly notRefined: number | null;
  /** Fold check: folded states of foldStates, smallest det (null when it did not run). */
  readonly folded: number | null;
  readonly foldStates: number | null;
  readonly minDet: number | null;
}

export interface Verdict {
  readonly conclusion: VerdictConclusion;
  /** The proofs found; empty unless conclusion is 'not-an-ode-flow'. */
  readonly proofs: readonly VerdictProof[];
  /** What was weighed, in numbers. */
  readonly evidence: VerdictEvidence;
  /** One line a person can act on, naming what the verdict rests on. */
  readonly text: string;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** Weigh a crossing audit's evidence. */
export function crossingVerdict(r: VerdictInput): Verdict {
  const ref = r.refinement;
  const orderSwaps = r.d === 1 ? r.crossings - (r.touchingPairs ?? 0) : null;
  const evidence: VerdictEvidence = {
    crossings: r.crossings,
    projected: r.projected,
    orderSwaps,
    persistent: ref ? ref.persistentPairs : null,
    artefacts: ref ? ref.artefactPairs : null,
    unresolved: ref ? ref.unresolvedPairs : null,
    notRefined: ref ? ref.notRefinedPairs : null,
    folded: r.fold?.folded ?? null,
    foldStates: r.fold?.states ?? null,
    minDet: r.fold ? r.fold.minDet : null,
  };
  const under = r.solver ? ` under ${displaySpec(r.solver)}` : ' under this solver';
  const proofs: VerdictProof[] = [];
  const because: string[] = [];
  if (r.fold && r.fold.folded > 0) {
    proofs.push('fold');
    because.push(`a step folds space (${r.fold.folded} of ${r.fold.states} visited states have det ≤ 0)`);
  }
  if (orderSwaps !== null && orderSwaps > 0) {
    proofs.push('order-swap');
    because.push(`${plural(orderSwaps, 'pair')} of 1-D trajectories swap order`);
  }
  if (ref && ref.persistentPairs > 0) {
    proofs.push('persistent-crossing');
    because.push(
      `${plural(ref.persistentPairs, 'crossing pair')} persist when refined to ${ref.levels[ref.levels.length - 1]} ` +
        `sub-steps per step`,
    );
  }
  if (proofs.length > 0)
    return {
      conclusion: 'not-an-ode-flow',
      proofs,
      evidence,
      text: `NOT an ODE flow${under} — proof: ${because.join('; ')}`,
    };

  const foldText = r.fold
    ? `the fold check found no fold in ${r.fold.states} states (min det ${r.fold.minDet.toPrecision(3)})`
    : 'the fold check did not run (--fold runs it)';
  if (r.crossings === 0)
    return {
      conclusion: 'no-evidence',
      proofs,
      evidence,
      text: `no crossing found and ${foldText} (necessary, not sufficient, for ODE semantics)`,
    };
  if (r.projected)
    return {
      conclusion: 'inconclusive',
      proofs,
      evidence,
      text: `trajectories cross in the 2-D projection — a hint, not proof; ${foldText}`,
    };
  const parts: string[] = [];
  if (ref) {
    if (ref.artefactPairs > 0) parts.push(`${ref.artefactPairs} vanish when refined: artefacts of straight chords`);
    if (ref.unresolvedPairs > 0) parts.push(`${ref.unresolvedPairs} too close to resolve`);
    if (ref.notRefinedPairs > 0) parts.push(`${ref.notRefinedPairs} not refined`);
  } else if (r.d === 1) {
    parts.push('all merges, no order swap');
  } else {
    parts.push('not refined');
  }
  const model =
    r.stepMap === 'fixed'
      ? '; under a fixed-step solver the step map is the model: its chords are no proof, a fold would be'
      : '';
  return {
    conclusion: 'inconclusive',
    proofs,
    evidence,
    text: `no proof of a non-flow: ${plural(r.crossings, 'crossing pair')} (${parts.join(', ')}); ${foldText}${model}`,
  };
}
