/**
 * Refinement: is a chord crossing evidence, or an artefact of straight chords?
 *
 * The chords z(t_k) → z(t_{k+1}) of two nearby orbits of a true, curved flow
 * cross whenever the orbits are closer than the chords' sagitta: for an
 * autonomous field, two points on nearly the same orbit, one behind the other,
 * give chords that cross in space. So a chord crossing proves nothing by
 * itself. Here both trajectories of each crossing event are re-solved from
 * their recorded states z_i(t_k), z_j(t_k) over [t_k, t_{k+1}] with a much
 * finer fixed-step solver (16, then 128, then 1 024 sub-steps), and the
 * refined sub-chords of the same sub-step are re-tested with the exact
 * classifier. Only events still crossing go on to the next level.
 *
 *  - artefact:   the refined trajectories no longer cross at some level.
 *  - persistent: they still cross at the finest level although the pair
 *                started the step farther apart than the longest finest
 *                sub-chord — the refined trajectories themselves close in
 *                on each other. No flow of a Lipschitz field does this.
 *  - unresolved: still crossing at the finest level, but the two points were
 *                closer at the start of the step than a finest sub-chord is
 *                long (near-duplicate inputs): too close to resolve; no proof.
 *  - not refined: beyond `maxEvents` (reported, never proof).
 *
 * Cost: one batched fine solve per recorded step and level, over the distinct
 * trajectories involved; events that vanish early (nearly all artefacts
 * vanish at 16 sub-steps) never reach the finer levels.
 *
 * The count of crossing pairs itself stays exact (src/audit/crossing.ts);
 * this module only sorts the events.
 */
import { SpecError } from '../errors.js';
import { classify2d, NONE } from '../geometry/segments.js';
import type { CrossingEvent } from './crossing.js';
import type { Floats } from './states.js';

/**
 * Re-solve `n` states `z` (row-major [n × d]) over recorded step k with
 * `substeps` equal sub-steps; returns the substeps + 1 states (each [n × d]).
 */
export type SubSolve = (z: Float64Array, n: number, step: number, substeps: number) => Promise<readonly Floats[]>;

export const DEFAULT_REFINE_LEVELS: readonly number[] = [16, 128, 1024];
export const DEFAULT_REFINE_MAX_EVENTS = 100_000;

export interface RefineOptions {
  /** Sub-steps per recorded step at each level, increasing. Default [16, 128, 1024]. */
  readonly levels?: readonly number[];
  /** Refine at most this many events (the first ones, in step order). Default 100 000. */
  readonly maxEvents?: number;
  /** Examples of persistent events kept (default 5). */
  readonly maxExamples?: number;
  /** All crossing pairs, when `events` lists only some of them: the pairs not listed count as not refined. */
  readonly totalPairs?: number;
}

export interface PersistentExample {
  readonly i: number;
  readonly j: number;
  readonly step: number;
  /** |z_i(t_k) − z_j(t_k)|: their distance at the start of the step. */
  readonly startDistance: number;
  /** Longest finest sub-chord of the two. */
  readonly finestChord: number;
}

export interface Refinement {
  /** Sub-steps per recorded step at each level. */
  readonly levels: number[];
  /** Crossing events examined (refined) and not refined (beyond maxEvents). */
  readonly events: number;
  readonly eventsNotRefined: number;
  /** vanishedAtLevel[l] = events whose refined trajectories stopped crossing at level l. */
  readonly vanishedAtLevel: number[];
  /** Distinct pairs by outcome; every crossing pair is in exactly one of the four. */
  readonly persistentPairs: number;
  readonly unresolvedPairs: number;
  readonly artefactPairs: number;
  readonly notRefinedPairs: number;
  readonly persistentExamples: PersistentExample[];
}

interface Outcome {
  persistent: boolean;
  unresolved: boolean;
  notRefined: boolean;
}

/**
 * Sort 2-D crossing events into artefacts, persistent crossings and
 * unresolved ones by refining both trajectories of each event.
 * `states` are the recorded states (K+1 arrays of n·2 values).
 */
export async function refineCrossings(
  events: readonly CrossingEvent[],
  states: readonly Floats[],
  n: number,
  solveSub: SubSolve,
  options: RefineOptions = {},
): Promise<Refinement> {
  const levels = [...(options.levels ?? DEFAULT_REFINE_LEVELS)];
  if (levels.length === 0 || levels.some((m, l) => !Number.isInteger(m) || m < 1 || (l > 0 && m <= levels[l - 1]!))) {
    throw new SpecError(`refinement levels must be increasing positive integers, got [${levels.join(', ')}]`);
  }
  const maxEvents = options.maxEvents ?? DEFAULT_REFINE_MAX_EVENTS;
  const maxExamples = options.maxExamples ?? 5;
  const d = 2;
  const refined = events.slice(0, maxEvents);
  const vanishedAtLevel = new Array<number>(levels.length).fill(0);
  const outcomes = new Map<number, Outcome>();
  const outcome = (e: CrossingEvent): Outcome => {
    const key = e.i * n + e.j;
    let o = outcomes.get(key);
    if (!o) outcomes.set(key, (o = { persistent: false, unresolved: false, notRefined: false }));
    return o;
  };
  for (const e of events.slice(maxEvents)) outcome(e).notRefined = true;

  let active: CrossingEvent[] = refined;
  /** Longest finest sub-chord per surviving event (filled at the last level). */
  const finestChord = new Map<CrossingEvent, number>();
  for (let l = 0; l < levels.length && active.length > 0; l++) {
    const M = levels[l]!;
    const last = l === levels.length - 1;
    const byStep = new Map<number, CrossingEvent[]>();
    for (const e of active) {
      const list = byStep.get(e.step);
      if (list) list.push(e);
      else byStep.set(e.step, [e]);
    }
    const survivors: CrossingEvent[] = [];
    for (const [k, list] of byStep) {
      // One batched solve per recorded step, over the distinct trajectories involved.
      const slot = new Map<number, number>();
      for (const e of list) for (const i of [e.i, e.j]) if (!slot.has(i)) slot.set(i, slot.size);
      const z = new Float64Array(slot.size * d);
      const start = states[k]!;
      for (const [i, s] of slot) {
        z[s * d] = start[i * d]!;
        z[s * d + 1] = start[i * d + 1]!;
      }
      const sub = await solveSub(z, slot.size, k, M);
      if (sub.length !== M + 1)
        throw new Error(`refinement: sub-solve returned ${sub.length} states, expected ${M + 1}`);
      for (const e of list) {
        const a = slot.get(e.i)! * d;
        const b = slot.get(e.j)! * d;
        let crosses = false;
        let longest = 0;
        for (let m = 0; m < M; m++) {
          const A = sub[m]!;
          const B = sub[m + 1]!;
          const px = A[a]!,
            py = A[a + 1]!,
            p2x = B[a]!,
            p2y = B[a + 1]!;
          const qx = A[b]!,
            qy = A[b + 1]!,
            q2x = B[b]!,
            q2y = B[b + 1]!;
          if (last) longest = Math.max(longest, Math.hypot(p2x - px, p2y - py), Math.hypot(q2x - qx, q2y - qy));
          if (!crosses && classify2d(px, py, p2x, p2y, qx, qy, q2x, q2y) !== NONE) {
            crosses = true;
            if (!last) break;
          }
        }
        if (crosses) {
          survivors.push(e);
          if (last) finestChord.set(e, longest);
        } else {
          vanishedAtLevel[l]!++;
        }
      }
    }
    active = survivors;
  }

  const persistentExamples: PersistentExample[] = [];
  for (const e of active) {
    const s = states[e.step]!;
    const startDistance = Math.hypot(s[e.i * d]! - s[e.j * d]!, s[e.i * d + 1]! - s[e.j * d + 1]!);
    const chord = finestChord.get(e)!;
    const o = outcome(e);
    if (startDistance > chord) {
      o.persistent = true;
      if (persistentExamples.length < maxExamples)
        persistentExamples.push({ i: e.i, j: e.j, step: e.step, startDistance, finestChord: chord });
    } else {
      o.unresolved = true;
    }
  }
  for (const e of refined) outcome(e); // pairs whose every event vanished
  let persistentPairs = 0;
  let unresolvedPairs = 0;
  let artefactPairs = 0;
  let notRefinedPairs = 0;
  for (const o of outcomes.values()) {
    if (o.persistent) persistentPairs++;
    else if (o.unresolved) unresolvedPairs++;
    else if (o.notRefined) notRefinedPairs++;
    else artefactPairs++;
  }
  // Pairs whose events were not even listed. (A listed pair may have unlisted later events;
  // its outcome then rests on the listed ones, which is conservative only for artefacts.)
  notRefinedPairs += Math.max(0, (options.totalPairs ?? 0) - outcomes.size);
  return {
    levels,
    events: refined.length,
    eventsNotRefined: events.length - refined.length,
    vanishedAtLevel,
    persistentPairs,
    unresolvedPairs,
    artefactPairs,
    notRefinedPairs,
    persistentExamples,
  };
}
