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

/** Coordinates per state: refinement runs on 2-D states (or their projection). */
const D = 2;

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
  const refined = events.slice(0, maxEvents);
  const vanishedAtLevel = new Array<number>(levels.length).fill(0);
  const outcomes = new PairOutcomes(n);
  for (const e of events.slice(maxEvents)) outcomes.of(e).notRefined = true;

  let active: CrossingEvent[] = refined;
  /** Longest finest sub-chord per surviving event (filled at the last level). */
  const finestChord = new Map<CrossingEvent, number>();
  for (let l = 0; l < levels.length && active.length > 0; l++) {
    const level: Level = { substeps: levels[l]!, last: l === levels.length - 1 };
    const survivors: CrossingEvent[] = [];
    for (const [k, list] of eventsByStep(active)) {
      for (const [e, chord] of await refineStep(k, list, states, solveSub, level)) {
        if (chord === undefined) {
          vanishedAtLevel[l]!++;
          continue;
        }
        survivors.push(e);
        if (level.last) finestChord.set(e, chord);
      }
    }
    active = survivors;
  }

  const persistentExamples = judgeSurvivors(active, states, finestChord, outcomes, options.maxExamples ?? 5);
  for (const e of refined) outcomes.of(e); // pairs whose every event vanished
  return {
    levels,
    events: refined.length,
    eventsNotRefined: events.length - refined.length,
    vanishedAtLevel,
    ...outcomes.count(options.totalPairs ?? 0),
    persistentExamples,
  };
}

/** One refinement level: sub-steps per recorded step, and whether it is the finest. */
interface Level {
  readonly substeps: number;
  readonly last: boolean;
}

/** The outcome of each distinct crossing pair (i < j), in first-seen order. */
class PairOutcomes {
  private readonly outcomes = new Map<number, Outcome>();
  constructor(private readonly n: number) {}

  of(e: CrossingEvent): Outcome {
    const key = e.i * this.n + e.j;
    let o = this.outcomes.get(key);
    if (!o) this.outcomes.set(key, (o = { persistent: false, unresolved: false, notRefined: false }));
    return o;
  }

  /** Distinct pairs by outcome; `totalPairs` counts the pairs whose events were not even listed as not refined. */
  count(
    totalPairs: number,
  ): Pick<Refinement, 'persistentPairs' | 'unresolvedPairs' | 'artefactPairs' | 'notRefinedPairs'> {
    let persistentPairs = 0;
    let unresolvedPairs = 0;
    let artefactPairs = 0;
    let notRefinedPairs = 0;
    for (const o of this.outcomes.values()) {
      if (o.persistent) persistentPairs++;
      else if (o.unresolved) unresolvedPairs++;
      else if (o.notRefined) notRefinedPairs++;
      else artefactPairs++;
    }
    // Pairs whose events were not even listed. (A listed pair may have unlisted later events;
    // its outcome then rests on the listed ones, which is conservative only for artefacts.)
    notRefinedPairs += Math.max(0, totalPairs - this.outcomes.size);
    return { persistentPairs, unresolvedPairs, artefactPairs, notRefinedPairs };
  }
}

/** Events grouped by recorded step, in first-seen order. */
function eventsByStep(events: readonly CrossingEvent[]): Map<number, CrossingEvent[]> {
  const byStep = new Map<number, CrossingEvent[]>();
  for (const e of events) {
    const list = byStep.get(e.step);
    if (list) list.push(e);
    else byStep.set(e.step, [e]);
  }
  return byStep;
}

/**
 * Re-solve the trajectories of step k's events in one batched sub-solve (over the distinct trajectories involved)
 * and re-test each event's sub-chords. Per event: undefined when it vanished, else its longest sub-chord at the
 * finest level (0 at coarser levels).
 */
async function refineStep(
  k: number,
  list: readonly CrossingEvent[],
  states: readonly Floats[],
  solveSub: SubSolve,
  { substeps: M, last }: Level,
): Promise<[CrossingEvent, number | undefined][]> {
  const slot = new Map<number, number>();
  for (const e of list) for (const i of [e.i, e.j]) if (!slot.has(i)) slot.set(i, slot.size);
  const z = new Float64Array(slot.size * D);
  const start = states[k]!;
  for (const [i, s] of slot) {
    z[s * D] = start[i * D]!;
    z[s * D + 1] = start[i * D + 1]!;
  }
  const sub = await solveSub(z, slot.size, k, M);
  if (sub.length !== M + 1) throw new Error(`refinement: sub-solve returned ${sub.length} states, expected ${M + 1}`);
  return list.map((e) => [e, subChordsCross(sub, slot.get(e.i)! * D, slot.get(e.j)! * D, M, last)]);
}

/**
 * Whether the sub-chords at offsets a and b of the same sub-step cross; undefined when never. At the finest level
 * every sub-step is looked at, for the longest sub-chord of the two (returned); else the first crossing ends the
 * look (0 returned).
 */
function subChordsCross(sub: readonly Floats[], a: number, b: number, M: number, last: boolean): number | undefined {
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
  return crosses ? longest : undefined;
}

/**
 * Events still crossing at the finest level: persistent when the pair started the step farther apart than the
 * longest finest sub-chord, else unresolved. Marks the pairs' outcomes; returns the persistent examples kept.
 */
function judgeSurvivors(
  survivors: readonly CrossingEvent[],
  states: readonly Floats[],
  finestChord: ReadonlyMap<CrossingEvent, number>,
  outcomes: PairOutcomes,
  maxExamples: number,
): PersistentExample[] {
  const examples: PersistentExample[] = [];
  for (const e of survivors) {
    const s = states[e.step]!;
    const startDistance = Math.hypot(s[e.i * D]! - s[e.j * D]!, s[e.i * D + 1]! - s[e.j * D + 1]!);
    const chord = finestChord.get(e)!;
    const o = outcomes.of(e);
    if (startDistance > chord) {
      o.persistent = true;
      if (examples.length < maxExamples)
        examples.push({ i: e.i, j: e.j, step: e.step, startDistance, finestChord: chord });
    } else {
      o.unresolved = true;
    }
  }
  return examples;
}
