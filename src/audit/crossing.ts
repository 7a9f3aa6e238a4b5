/**
 * Trajectory crossing — finding 2 of Ott et al. (2021).
 *
 * An exact ODE flow is a homeomorphism: distinct trajectories never meet and,
 * in 1-D, the order of the points is preserved at all times. A coarse solver
 * can move points across each other. This module counts, for discrete
 * trajectories (the states after every solver step on a shared time grid),
 * the *crossing pairs*: pairs of trajectories whose straight chords
 * z_i(t_k) → z_i(t_{k+1}) over the SAME step intersect. The count is exact:
 * every intersection of the given doubles is found and classified by the
 * rules of src/geometry/segments.ts (1-D order changes; 2-D proper / touch /
 * collinear intersections, with the exact orientation predicate).
 *
 *  - 'touch' (a merge, or an end point on the other chord) counts by default;
 *    `countTouching: false` keeps only strict crossings.
 *  - d > 2: all visited states are projected onto their 2 leading principal
 *    components (src/linalg/pca.ts) and the 2-D test is applied to the
 *    projection; the result says `projected: true` with the explained-variance
 *    fraction. A crossing in a projection is not proof of a crossing in R^d.
 *
 * What a chord crossing means is not decided here: the chords of two nearby
 * orbits of a true, curved flow cross whenever the orbits are closer than the
 * chords' sagitta, and the chords of a discrete step map are no part of the
 * model. src/audit/refine.ts re-solves crossing pairs more finely, and
 * src/audit/verdict.ts weighs the evidence.
 *
 * Speed: per step, a broad phase (src/geometry/broad-phase.ts) yields the
 * candidate pairs whose chord boxes overlap; 1-D uses a sort-and-sweep.
 * `method: 'brute'` compares all N(N−1)/2 pairs (reference).
 */
import { SpecError } from '../errors.js';
import { allPairs, gridPairs, sweepPairs, type Boxes } from '../geometry/broad-phase.js';
import {
  classify2d,
  KIND_NAMES,
  meetPoint2d,
  NONE,
  order1d,
  PROPER,
  TOUCH,
  type CrossingKind,
} from '../geometry/segments.js';
import { pca2, projectStates, type Pca2, type PcaOptions } from '../linalg/pca.js';
import { assertFinite, trajectorySteps, type Floats, type TrajectoryInput } from './states.js';

export type { CrossingKind };

export interface CrossingOptions {
  /** Number of trajectories. */
  readonly n: number;
  /** State dimension. */
  readonly d: number;
  /** 'grid' (default; sort-and-sweep in 1-D) or 'brute' (all pairs, for reference). */
  readonly method?: 'grid' | 'brute';
  /** Count 'touch' events (merges, an end point on the other chord) as crossings. Default true. */
  readonly countTouching?: boolean;
  /** Number of examples kept. Default 5. */
  readonly maxExamples?: number;
  /** Also list every crossing pair with its first step (can be large). Default false. */
  readonly listPairs?: boolean;
  /**
   * Also list the (pair, step) crossing events, in step order — what refinement re-tests: true for all, a number for
   * at most that many. Default false.
   */
  readonly listEvents?: boolean | number;
  /** Also count intersections of chords of different trajectories at DIFFERENT steps. Default false. */
  readonly differentSteps?: boolean;
  /** PCA options when d > 2. */
  readonly pca?: PcaOptions;
}

export interface CrossingExample {
  readonly i: number;
  readonly j: number;
  /** Step index k: the chords from t_k to t_{k+1}. */
  readonly step: number;
  /** Where the chords meet, in the coordinates tested (1-D, 2-D, or the 2-D projection). */
  readonly point: number[];
  readonly kind: CrossingKind;
}

/** One (pair, step) crossing: chords of trajectories i < j over step k meet. */
export interface CrossingEvent {
  readonly i: number;
  readonly j: number;
  readonly step: number;
  readonly kind: CrossingKind;
}

export interface DifferentStepExample {
  readonly i: number;
  readonly stepI: number;
  readonly j: number;
  readonly stepJ: number;
  readonly point: number[];
}

export interface DifferentStepResult {
  /**
   * A WEAKER signal than `crossings`: distinct trajectory pairs whose chords at
   * different steps cross properly. Orbits of an autonomous ODE never
   * intersect, but a time-dependent field's trajectories may cross at
   * different times. Only proper (transversal) crossings are counted: touching
   * and collinear overlaps are what two points on one orbit produce.
   */
  readonly pairs: number;
  /** (chord, chord) pairs that cross properly. */
  readonly segmentPairs: number;
  readonly candidatePairs: number;
  readonly examples: DifferentStepExample[];
}

export interface CrossingResult {
  readonly n: number;
  readonly d: number;
  /** Number of steps K (K+1 states). */
  readonly steps: number;
  /** Distinct trajectory pairs that cross at one step or more. */
  readonly crossings: number;
  /** (pair, step) events counted (a pair crossing at 3 steps counts 3). */
  readonly crossingEvents: number;
  /** Of `crossings`, the pairs whose every crossing was a 'touch' (0 when countTouching is false). */
  readonly touchingPairs: number;
  /** firstStepHistogram[k] = pairs whose first crossing is over step k (length K). */
  readonly firstStepHistogram: number[];
  /** Earliest step with a crossing, or null. */
  readonly firstStep: number | null;
  readonly examples: CrossingExample[];
  /** Every crossing pair (i < j) with its first step, when `listPairs` was set. */
  readonly pairs?: { i: number; j: number; firstStep: number }[];
  /** The crossing events in step order (the first `listEvents` of them, when it was a number). */
  readonly events?: CrossingEvent[];
  /** True when d > 2 and the test ran on the 2-D PCA projection. */
  readonly projected: boolean;
  /** Fraction of the variance the tested coordinates keep (1 unless projected). */
  readonly explainedVariance: number;
  /** The PCA used, when projected. */
  readonly pca?: Pca2;
  /** Logically compared trajectory pairs: N(N−1)/2. */
  readonly pairsChecked: number;
  /** Logically compared (pair, step) combinations: K·N(N−1)/2. */
  readonly pairStepsChecked: number;
  /** (pair, step) combinations actually tested with the exact predicate. */
  readonly candidatePairs: number;
  readonly method: 'grid' | 'brute';
  readonly countTouching: boolean;
  /** Present when `differentSteps` was set and d ≥ 2. */
  readonly differentStepIntersections?: DifferentStepResult;
}

/**
 * Count crossing pairs of discrete trajectories (see the module doc for the
 * exact rules). Throws ShapeError for malformed or non-finite input.
 */
export function countCrossings(traj: TrajectoryInput, options: CrossingOptions): CrossingResult {
  const { n, d } = options;
  const method = options.method ?? 'grid';
  if (method !== 'grid' && method !== 'brute')
    throw new SpecError(`countCrossings: method must be 'grid' or 'brute', got ${String(method)}`);
  const countTouching = options.countTouching ?? true;
  const maxExamples = options.maxExamples ?? 5;
  const raw = trajectorySteps(traj, n, d);
  assertFinite(raw, d, 'countCrossings');
  const K = raw.length - 1;
  const { states, dim, pca } = testedCoordinates(raw, n, d, options.pca);

  const tally = new CrossingTally(n, K, countTouching, maxExamples, options.listEvents);
  let candidates = 0;
  for (let k = 0; k < K; k++) {
    const scan = dim === 1 ? scanStep1d : scanStep2d;
    candidates += scan(states[k]!, states[k + 1]!, n, method, (i, j, kind, point) =>
      tally.record(i, j, k, kind, point),
    );
  }

  const crossings = tally.seen.size;
  const result: {
    -readonly [P in keyof CrossingResult]: CrossingResult[P];
  } = {
    n,
    d,
    steps: K,
    crossings,
    crossingEvents: tally.events,
    touchingPairs: crossings - tally.properSeen.size,
    firstStepHistogram: tally.firstStepHistogram,
    firstStep: tally.firstStep(),
    examples: tally.examples,
    projected: pca !== undefined,
    explainedVariance: pca ? pca.explainedVariance : 1,
    pairsChecked: (n * (n - 1)) / 2,
    pairStepsChecked: (K * n * (n - 1)) / 2,
    candidatePairs: candidates,
    method,
    countTouching,
  };
  if (pca) result.pca = pca;
  if (options.listPairs) result.pairs = tally.pairsByFirstStep();
  if (tally.eventList) result.events = tally.eventList;
  if (options.differentSteps && dim === 2) {
    result.differentStepIntersections = differentStepCrossings(states, n, K, method, maxExamples);
  }
  return result;
}

/** The coordinates the test runs on: the states themselves for d ≤ 2, else their 2-D PCA projection. */
function testedCoordinates(
  raw: Floats[],
  n: number,
  d: number,
  options: PcaOptions | undefined,
): { states: Floats[]; dim: number; pca?: Pca2 } {
  if (d <= 2) return { states: raw, dim: d };
  const pca = pca2(raw, n, d, options);
  return { states: projectStates(raw, n, d, pca), dim: 2, pca };
}

/** A crossing found at one step: trajectories i < j, its kind code, and (lazily) where the chords meet. */
type OnCrossing = (i: number, j: number, kind: number, point: () => number[]) => void;

/** 1-D: the chords A[i] → B[i] of every candidate pair, tested for an order change; returns the candidates tested. */
function scanStep1d(A: Floats, B: Floats, n: number, method: 'grid' | 'brute', found: OnCrossing): number {
  const visit = (i: number, j: number): void => {
    const r = order1d(A[i]!, B[i]!, A[j]!, B[j]!);
    if (r !== NONE) {
      found(i, j, r, () => {
        const d0 = A[i]! - A[j]!;
        const d1 = B[i]! - B[j]!;
        const s = d0 === d1 ? 0 : d0 / (d0 - d1);
        return [A[i]! + s * (B[i]! - A[i]!)];
      });
    }
  };
  if (method === 'brute') return allPairs(n, visit);
  const lo = new Float64Array(n);
  const hi = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    lo[i] = Math.min(A[i]!, B[i]!);
    hi[i] = Math.max(A[i]!, B[i]!);
  }
  return sweepPairs(lo, hi, visit);
}

/** 2-D: the chords A[i] → B[i] of every candidate pair, classified exactly; returns the candidates tested. */
function scanStep2d(A: Floats, B: Floats, n: number, method: 'grid' | 'brute', found: OnCrossing): number {
  const visit = (i: number, j: number): void => {
    const px = A[2 * i]!;
    const py = A[2 * i + 1]!;
    const p2x = B[2 * i]!;
    const p2y = B[2 * i + 1]!;
    const qx = A[2 * j]!;
    const qy = A[2 * j + 1]!;
    const q2x = B[2 * j]!;
    const q2y = B[2 * j + 1]!;
    const r = classify2d(px, py, p2x, p2y, qx, qy, q2x, q2y);
    if (r !== NONE) found(i, j, r, () => meetPoint2d(r, px, py, p2x, p2y, qx, qy, q2x, q2y));
  };
  if (method === 'brute') return allPairs(n, visit);
  return gridPairs(chordBoxes([A], [B], n), visit);
}

/** What countCrossings keeps of the (pair, step) crossings it is told of, in step order. */
class CrossingTally {
  /** Pairs that crossed at some step. */
  readonly seen: PairSet;
  /** Pairs with a non-touch crossing. */
  readonly properSeen: PairSet;
  readonly firstStepHistogram: number[];
  readonly examples: CrossingExample[] = [];
  readonly eventList: CrossingEvent[] | undefined;
  events = 0;
  private readonly firstI: number[] = [];
  private readonly firstJ: number[] = [];
  private readonly firstK: number[] = [];
  private readonly maxEvents: number;

  constructor(
    n: number,
    K: number,
    private readonly countTouching: boolean,
    private readonly maxExamples: number,
    listEvents: boolean | number | undefined,
  ) {
    this.seen = new PairSet(n);
    this.properSeen = new PairSet(n);
    this.firstStepHistogram = new Array<number>(K).fill(0);
    this.eventList = listEvents ? [] : undefined;
    this.maxEvents = typeof listEvents === 'number' ? listEvents : Infinity;
  }

  record(i: number, j: number, k: number, kind: number, point: () => number[]): void {
    if (kind === TOUCH && !this.countTouching) return;
    this.events++;
    if (this.seen.add(i, j)) {
      this.firstI.push(i);
      this.firstJ.push(j);
      this.firstK.push(k);
      this.firstStepHistogram[k]!++;
    }
    if (kind !== TOUCH) this.properSeen.add(i, j);
    const name = KIND_NAMES[kind]!;
    if (this.eventList && this.eventList.length < this.maxEvents) this.eventList.push({ i, j, step: k, kind: name });
    if (this.examples.length < this.maxExamples) this.examples.push({ i, j, step: k, point: point(), kind: name });
  }

  /** Earliest step with a crossing, or null. */
  firstStep(): number | null {
    const k = this.firstStepHistogram.findIndex((count) => count > 0);
    return k < 0 ? null : k;
  }

  /** Every crossing pair with its first step, by step then i then j. */
  pairsByFirstStep(): { i: number; j: number; firstStep: number }[] {
    return this.firstI
      .map((i, q) => ({ i, j: this.firstJ[q]!, firstStep: this.firstK[q]! }))
      .sort((a, b) => a.firstStep - b.firstStep || a.i - b.i || a.j - b.j);
  }
}

/** A set of index pairs (i < j < n): a bitset while n² bits fit in 16 MiB, else a hash set. */
class PairSet {
  private bits: Uint8Array | undefined;
  private readonly keys: Set<number> | undefined;
  size = 0;
  constructor(private readonly n: number) {
    if (n * n > 2 ** 27) this.keys = new Set<number>();
  }
  /** Add (i, j); true when it was not present. */
  add(i: number, j: number): boolean {
    const key = i * this.n + j;
    if (this.keys) {
      if (this.keys.has(key)) return false;
      this.keys.add(key);
    } else {
      // Allocated on first use: most trajectory sets have no crossing at all.
      this.bits ??= new Uint8Array(Math.ceil((this.n * this.n) / 8));
      const byte = key >>> 3;
      const mask = 1 << (key & 7);
      if (this.bits[byte]! & mask) return false;
      this.bits[byte]! |= mask;
    }
    this.size++;
    return true;
  }
}

/** Bounding boxes of the chords starts[s][i] → ends[s][i] for every s, i (segment id s·n + i). */
function chordBoxes(starts: readonly Floats[], ends: readonly Floats[], n: number): Boxes {
  const count = starts.length * n;
  const x0 = new Float64Array(count);
  const y0 = new Float64Array(count);
  const x1 = new Float64Array(count);
  const y1 = new Float64Array(count);
  for (let s = 0; s < starts.length; s++) {
    const A = starts[s]!;
    const B = ends[s]!;
    for (let i = 0; i < n; i++) {
      const id = s * n + i;
      const ax = A[2 * i]!;
      const ay = A[2 * i + 1]!;
      const bx = B[2 * i]!;
      const by = B[2 * i + 1]!;
      x0[id] = Math.min(ax, bx);
      x1[id] = Math.max(ax, bx);
      y0[id] = Math.min(ay, by);
      y1[id] = Math.max(ay, by);
    }
  }
  return { count, x0, y0, x1, y1 };
}

function differentStepCrossings(
  states: readonly Floats[],
  n: number,
  K: number,
  method: 'grid' | 'brute',
  maxExamples: number,
): DifferentStepResult {
  const starts = states.slice(0, K);
  const ends = states.slice(1, K + 1);
  const pairs = new Set<number>();
  const examples: DifferentStepExample[] = [];
  let segmentPairs = 0;
  let candidates = 0;
  const visit = (a: number, b: number): void => {
    const ka = Math.floor(a / n);
    const ia = a - ka * n;
    const kb = Math.floor(b / n);
    const ib = b - kb * n;
    if (ka === kb || ia === ib) return;
    candidates++;
    const A0 = starts[ka]!;
    const A1 = ends[ka]!;
    const B0 = starts[kb]!;
    const B1 = ends[kb]!;
    const px = A0[2 * ia]!;
    const py = A0[2 * ia + 1]!;
    const p2x = A1[2 * ia]!;
    const p2y = A1[2 * ia + 1]!;
    const qx = B0[2 * ib]!;
    const qy = B0[2 * ib + 1]!;
    const q2x = B1[2 * ib]!;
    const q2y = B1[2 * ib + 1]!;
    if (classify2d(px, py, p2x, p2y, qx, qy, q2x, q2y) !== PROPER) return;
    segmentPairs++;
    const i = Math.min(ia, ib);
    const j = Math.max(ia, ib);
    pairs.add(i * n + j);
    if (examples.length < maxExamples) {
      const first = ia < ib;
      examples.push({
        i,
        stepI: first ? ka : kb,
        j,
        stepJ: first ? kb : ka,
        point: meetPoint2d(PROPER, px, py, p2x, p2y, qx, qy, q2x, q2y),
      });
    }
  };
  if (method === 'brute') allPairs(K * n, visit);
  else gridPairs(chordBoxes(starts, ends, n), visit);
  return { pairs: pairs.size, segmentPairs, candidatePairs: candidates, examples };
}
