/**
 * Lady Windermere's fan — finding 3 of Ott et al. (2021).
 *
 * The local errors of each solver step are transported by the flow and fan
 * out into a global error e_i(t_k) = ‖z_h,i(t_k) − z_i(t_k)‖ (Euclidean norm)
 * that can differ systematically between regions of input space — and hence
 * between classes, which a classifier head can exploit. Given the solver
 * trajectory and a reference trajectory (a much finer / tighter solve) at the
 * same times, this module computes e_i(t_k) for every point and step and
 * per-class summaries.
 *
 * Conventions: std is the population standard deviation (divide by the class
 * count); the median of an even count is the mean of the two middle values;
 * classes are sorted by label ascending.
 */
import { ShapeError } from '../errors.js';
import { type TrajectoryInput, trajectorySteps } from './states.js';

export interface FanOptions {
  readonly n: number;
  readonly d: number;
  /** Times t_0 … t_K of the states; default K+1 evenly spaced points on [0, 1]. */
  readonly times?: readonly number[];
  /** Keep the per-point error arrays in the result (default true). */
  readonly keepErrors?: boolean;
}

/** Summary of a set of error norms. */
export interface ErrorSummary {
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
  readonly median: number;
}

export interface FanClass {
  readonly label: number;
  readonly count: number;
  /** Per time index k (length K+1). */
  readonly mean: number[];
  readonly std: number[];
  readonly min: number[];
  readonly max: number[];
  readonly median: number[];
}

export interface FanFinalClass extends ErrorSummary {
  readonly label: number;
  readonly count: number;
  /** Mean signed error vector z_h(t_K) − z(t_K) of the class (length d): the class's systematic bias. */
  readonly meanErrorVector: number[];
}

export interface FanResult {
  readonly times: number[];
  /** Per-class summaries at every time. */
  readonly perClass: FanClass[];
  /** All points together, per time. */
  readonly all: Omit<FanClass, 'label'>;
  /** At t_K = t1. */
  readonly final: ErrorSummary & { readonly perClass: FanFinalClass[] };
  /** errors[k][i] = ‖z_h,i(t_k) − z_i(t_k)‖, when keepErrors (default). */
  readonly errors?: Float64Array[];
}

export function summarize(values: ArrayLike<number>): ErrorSummary {
  const m = values.length;
  if (m === 0) return { mean: NaN, std: NaN, min: NaN, max: NaN, median: NaN };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < m; i++) {
    const v = values[i]!;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / m;
  let ss = 0;
  for (let i = 0; i < m; i++) ss += (values[i]! - mean) ** 2;
  const sorted = Float64Array.from(values).sort();
  const median = m % 2 === 1 ? sorted[(m - 1) / 2]! : (sorted[m / 2 - 1]! + sorted[m / 2]!) / 2;
  return { mean, std: Math.sqrt(ss / m), min, max, median };
}

/**
 * Global error of the solver trajectory against the reference, per point and
 * step, with per-class summaries. `labels[i]` is the class of point i.
 */
export function fanStats(
  solver: TrajectoryInput,
  reference: TrajectoryInput,
  labels: ArrayLike<number>,
  options: FanOptions,
): FanResult {
  const { n, d } = options;
  const zs = trajectorySteps(solver, n, d, 'fan: solver trajectory');
  const zr = trajectorySteps(reference, n, d, 'fan: reference trajectory');
  if (zs.length !== zr.length) {
    throw new ShapeError(
      `fan: solver trajectory has ${zs.length} states, reference has ${zr.length}; they must share the time grid`,
    );
  }
  if (labels.length !== n) throw new ShapeError(`fan: ${labels.length} labels for ${n} points`);
  const K1 = zs.length;
  const times = stateTimes(options.times, K1);
  const classes = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  const members = classes.map((c) => {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === c) idx.push(i);
    return Int32Array.from(idx);
  });
  const errors = zs.map((a, k) => errorNorms(a, zr[k]!, n, d));
  const perClass: FanClass[] = classes.map((label, c) => ({
    label,
    count: members[c]!.length,
    ...summarySeries(errors, members[c]!),
  }));
  const all = { count: n, ...summarySeries(errors, null) };
  const last = errors[K1 - 1]!;
  const finalPerClass: FanFinalClass[] = classes.map((label, c) => {
    const idx = members[c]!;
    const vec = meanErrorVector(zs[K1 - 1]!, zr[K1 - 1]!, idx, d);
    return { label, count: idx.length, ...summarize(Array.from(idx, (i) => last[i]!)), meanErrorVector: vec };
  });
  const result: { -readonly [P in keyof FanResult]: FanResult[P] } = {
    times,
    perClass,
    all,
    final: { ...summarize(last), perClass: finalPerClass },
  };
  if (options.keepErrors ?? true) result.errors = errors;
  return result;
}

/** The given times (one per state), or K1 evenly spaced points on [0, 1]. */
function stateTimes(given: readonly number[] | undefined, K1: number): number[] {
  if (!given) return Array.from({ length: K1 }, (_, k) => (K1 === 1 ? 0 : k / (K1 - 1)));
  if (given.length !== K1) throw new ShapeError(`fan: ${given.length} times for ${K1} states`);
  return [...given];
}

/** ‖a_i − b_i‖ for each of the n rows of dimension d. */
function errorNorms(a: ArrayLike<number>, b: ArrayLike<number>, n: number, d: number): Float64Array {
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) {
      const v = a[i * d + c]! - b[i * d + c]!;
      s += v * v;
    }
    e[i] = Math.sqrt(s);
  }
  return e;
}

/** Summaries of the errors of the points `idx` (all points when null) at every time, as one series per statistic. */
function summarySeries(errors: readonly Float64Array[], idx: Int32Array | null): Omit<FanClass, 'label' | 'count'> {
  const out = {
    mean: [] as number[],
    std: [] as number[],
    min: [] as number[],
    max: [] as number[],
    median: [] as number[],
  };
  for (const e of errors) {
    const s = summarize(idx ? Array.from(idx, (i) => e[i]!) : e);
    out.mean.push(s.mean);
    out.std.push(s.std);
    out.min.push(s.min);
    out.max.push(s.max);
    out.median.push(s.median);
  }
  return out;
}

/** Mean signed error z − r over the rows `idx` (length d). */
function meanErrorVector(z: ArrayLike<number>, r: ArrayLike<number>, idx: Int32Array, d: number): number[] {
  const vec = new Array<number>(d).fill(0);
  for (const i of idx) for (let q = 0; q < d; q++) vec[q]! += z[i * d + q]! - r[i * d + q]!;
  for (let q = 0; q < d; q++) vec[q]! /= idx.length;
  return vec;
}
