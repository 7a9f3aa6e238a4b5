/**
 * The one integrate loop. It is written as a generator that yields every
 * vector-field evaluation it needs ({t, z}) and receives f(t, z) back, so the
 * same algorithm runs synchronously on tfjs tensors (inside a gradient tape),
 * asynchronously on onnxruntime sessions, and on graph values (writing a
 * solve into an ONNX graph).
 *
 * Before each Runge–Kutta step it also yields a step request ({step}); a
 * driver may answer it with the whole step computed elsewhere (a compiled
 * graph of that same rkStep, src/onnx/step-graph.ts) or with undefined, and
 * the step then runs stage by stage here.
 */
import { SolveError, SpecError } from '../errors.js';
import { JOB_LIMITS } from '../formats/index.js';
import { checkStepBudget, DEFAULT_MAX_STEPS, DEFAULT_SOLVER_LIMITS, fixedStepCount, type AdaptiveSolverSpec, type FixedSolverSpec, type SolverSpec } from './spec.js';
import { getTableau, type Tableau } from './tableau.js';
import type { AsyncField, FieldCall, StepCall, StepOut, SyncField, VectorOps } from './vector.js';

export interface SolveOptions {
  /** Start of the interval (default 0). */
  t0?: number;
  /** End of the interval (default 1). */
  t1?: number;
  /**
   * Times at which to report the state, ascending from t0 towards t1 (default
   * [t1]). Fixed-step solves interpolate linearly between grid points, as
   * torchdiffeq does, so the step sequence does not change; adaptive solves
   * clip steps to land exactly on each time.
   */
  times?: readonly number[];
  /** Keep the state after every accepted step (for trajectory audits). */
  record?: boolean;
  /**
   * Check the state for NaN/Inf after every step (default true). Training
   * turns it off to avoid a device sync per step and checks the loss instead.
   */
  checkFinite?: boolean;
  /** solveAsync stops with the signal's reason before the next field call once it aborts (a cancelled study job, Ctrl-C). */
  signal?: AbortSignal;
}

export interface SolveStats {
  /** Evaluations of the vector field, every stage of every attempted step. */
  nfe: number;
  accepted: number;
  rejected: number;
}

export interface Trajectory<V> {
  readonly t: number[];
  readonly z: V[];
}

export interface SolveResult<V> {
  /** State at t1. */
  readonly z1: V;
  /** States at the requested times (same order as options.times). */
  readonly zs: V[];
  readonly times: readonly number[];
  readonly stats: SolveStats;
  /** Accepted-step states including t0, when options.record is set. */
  readonly trajectory?: Trajectory<V>;
}

/** What the loop yields: a field evaluation, or a step request (answered with a StepOut or undefined). */
export type SolveRequest<V> = FieldCall<V> | StepCall<V>;
type Gen<V, R> = Generator<SolveRequest<V>, R, V | StepOut<V> | undefined>;

export function isStepCall<V>(r: SolveRequest<V>): r is StepCall<V> {
  return 'step' in r;
}

/**
 * One explicit Runge–Kutta step of any tableau, given k1 = f(t, z) — the only
 * RK step of odeness: numeric engines run it stage by stage, graph writers
 * drive it with graph values (fixed grids unrolled, compiled adaptive steps).
 */
export function* rkStep<V>(ops: VectorOps<V>, tab: Tableau, t: number, z: V, h: number, k1: V, offer = true): Gen<V, StepOut<V>> {
  if (offer) {
    const done = (yield { step: { tab, t, h, z, k1 } }) as StepOut<V> | undefined;
    if (done !== undefined) return done;
  }
  const s = tab.c.length;
  const k: V[] = [k1];
  let zi = z;
  for (let i = 1; i < s; i++) {
    zi = ops.combine(z, tab.a[i]!.map((a) => a * h), k);
    k.push((yield { t: t + tab.c[i]! * h, z: zi }) as V);
  }
  const z1 = tab.fsal ? zi : ops.combine(z, tab.b.map((b) => b * h), k);
  const err = tab.bErr ? ops.combine(undefined, tab.bErr.map((e) => e * h), k) : undefined;
  return { z1, err, kLast: k[s - 1]! };
}

function checkInterval(t0: number, t1: number, times: readonly number[]): void {
  if (!Number.isFinite(t0) || !Number.isFinite(t1)) throw new SpecError(`t0 and t1 must be finite, got t0=${t0}, t1=${t1}`);
  if (t0 === t1) throw new SpecError(`t0 and t1 must differ, both are ${t0}`);
  const dir = Math.sign(t1 - t0);
  let prev = t0;
  for (const t of times) {
    if (!Number.isFinite(t) || (t - prev) * dir < 0 || (t - t1) * dir > 0) {
      throw new SpecError(`times must run monotonically from t0=${t0} to t1=${t1}; got ${times.join(', ')}`);
    }
    prev = t;
  }
}

/** Grid points of a fixed-step solve: t0, t0+h, …, and t1 (a shorter last step when h does not divide). */
export function fixedGrid(spec: FixedSolverSpec, t0: number, t1: number): number[] {
  // The last line of defence (callers check their own limits first): a grid of 10^9 points is a V8 abort, not an error.
  checkStepBudget(spec, t0, t1, { ...DEFAULT_SOLVER_LIMITS, maxSteps: JOB_LIMITS.maxSolverSteps });
  const n = fixedStepCount(spec, t0, t1);
  const dir = Math.sign(t1 - t0);
  const grid: number[] = [];
  for (let k = 0; k < n; k++) {
    // t0 + (t1 − t0)·k/n for step counts, so rounding does not accumulate.
    grid.push(spec.steps !== undefined ? t0 + ((t1 - t0) * k) / spec.steps : t0 + dir * spec.h! * k);
  }
  grid.push(t1);
  return grid;
}

function* fixedSolve<V>(ops: VectorOps<V>, spec: FixedSolverSpec, z0: V, opts: Required<Omit<SolveOptions, 'times' | 'signal'>> & { times: readonly number[] }): Gen<V, SolveResult<V>> {
  const tab = getTableau(spec.method);
  const grid = fixedGrid(spec, opts.t0, opts.t1);
  const stats: SolveStats = { nfe: 0, accepted: 0, rejected: 0 };
  const zs: V[] = [];
  const traj: Trajectory<V> | undefined = opts.record ? { t: [opts.t0], z: [z0] } : undefined;
  let z = z0;
  let next = 0;
  // Times equal to t0 are answered before the first step.
  while (next < opts.times.length && opts.times[next] === opts.t0) zs.push(z0), next++;
  for (let i = 0; i + 1 < grid.length; i++) {
    const t = grid[i]!;
    const h = grid[i + 1]! - t;
    const k1 = (yield { t, z }) as V;
    const out = yield* rkStep(ops, tab, t, z, h, k1);
    stats.nfe += tab.c.length;
    stats.accepted++;
    if (opts.checkFinite && !ops.allFinite(out.z1)) {
      throw new SolveError(`${spec.method}: state became NaN/Inf in the step from t=${t} to t=${t + h}`, t);
    }
    const tNext = grid[i + 1]!;
    while (next < opts.times.length && (opts.times[next]! - tNext) * Math.sign(h) <= 0) {
      const tq = opts.times[next]!;
      const w = (tq - t) / h;
      zs.push(w >= 1 ? out.z1 : ops.combine(z, [w, -w], [out.z1, z]));
      next++;
    }
    z = out.z1;
    if (traj) traj.t.push(tNext), traj.z.push(z);
  }
  return { z1: z, zs, times: opts.times, stats, trajectory: traj };
}

/** Hairer, Nørsett & Wanner I, p.169, as torchdiffeq's _select_initial_step; costs one evaluation. */
function* initialStep<V>(ops: VectorOps<V>, tab: Tableau, t0: number, z0: V, f0: V, rtol: number, atol: number, dir: number): Gen<V, number> {
  const d0 = ops.scaledRms(z0, rtol, atol, [z0]);
  const d1 = ops.scaledRms(f0, rtol, atol, [z0]);
  const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
  const z1 = ops.combine(z0, [dir * h0], [f0]);
  const f1 = (yield { t: t0 + dir * h0, z: z1 }) as V;
  const d2 = ops.scaledRms(ops.combine(f1, [-1], [f0]), rtol, atol, [z0]) / h0;
  const dmax = Math.max(d1, d2);
  const h1 = dmax <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / dmax, 1 / (tab.order + 1));
  return Math.min(100 * h0, h1);
}

const SAFETY = 0.9;
const MAX_FACTOR = 10;
const MIN_FACTOR = 0.2;

function* adaptiveSolve<V>(ops: VectorOps<V>, spec: AdaptiveSolverSpec, z0: V, opts: Required<Omit<SolveOptions, 'times' | 'signal'>> & { times: readonly number[] }): Gen<V, SolveResult<V>> {
  const tab = getTableau(spec.method);
  const { t0, t1, times } = opts;
  const dir = Math.sign(t1 - t0);
  const maxSteps = spec.maxSteps ?? DEFAULT_MAX_STEPS;
  const stats: SolveStats = { nfe: 0, accepted: 0, rejected: 0 };
  const zs: V[] = [];
  const traj: Trajectory<V> | undefined = opts.record ? { t: [t0], z: [z0] } : undefined;
  let t = t0;
  let z = z0;
  let next = 0;
  while (next < times.length && times[next] === t0) zs.push(z0), next++;
  let k1 = (yield { t, z }) as V;
  stats.nfe++;
  let h: number;
  if (spec.firstStep !== undefined) h = spec.firstStep;
  else {
    h = yield* initialStep(ops, tab, t, z, k1, spec.rtol, spec.atol, dir);
    stats.nfe++;
  }
  if (spec.minStep !== undefined) h = Math.max(h, spec.minStep);
  while (next < times.length) {
    const target = times[next]!;
    if (stats.accepted + stats.rejected >= maxSteps) {
      throw new SolveError(
        `${spec.method}: reached maxSteps=${maxSteps} at t=${t} before t1=${t1} (rtol=${spec.rtol}, atol=${spec.atol}); ` +
          `raise maxSteps or loosen the tolerance`,
        t,
      );
    }
    // Land exactly on the next requested time.
    const remaining = Math.abs(target - t);
    const lands = h >= remaining;
    const step = dir * (lands ? remaining : h);
    // A NaN step comes from a NaN/Inf f(t0, z0) in the initial-step heuristic;
    // a step below half an ulp of t would advance the state with t frozen.
    if (!Number.isFinite(step)) throw new SolveError(`${spec.method}: state or vector field became NaN/Inf near t=${t} (step size ${h})`, t);
    if (t + step === t) {
      throw new SolveError(`${spec.method}: step size ${h} underflows at t=${t} before t1=${t1}; the solution may blow up here`, t);
    }
    const out = yield* rkStep(ops, tab, t, z, step, k1);
    stats.nfe += tab.c.length - 1;
    let ratio = ops.scaledRms(out.err!, spec.rtol, spec.atol, [z, out.z1]);
    if (!Number.isFinite(ratio)) ratio = Infinity; // NaN/Inf error estimate forces a rejection
    const accepted = ratio <= 1;
    if (accepted) {
      t = lands ? target : t + step;
      z = out.z1;
      stats.accepted++;
      if (traj) traj.t.push(t), traj.z.push(z);
      while (next < times.length && times[next] === t) zs.push(z), next++;
      if (next < times.length) {
        if (tab.fsal) k1 = out.kLast;
        else {
          k1 = (yield { t, z }) as V;
          stats.nfe++;
        }
      }
    } else {
      stats.rejected++;
    }
    // torchdiffeq's rule: an accepted step never shrinks the next one.
    const hUsed = Math.abs(step);
    const factor =
      ratio === 0 ? MAX_FACTOR : Math.min(MAX_FACTOR, Math.max(accepted ? 1 : MIN_FACTOR, SAFETY * Math.pow(ratio, -1 / tab.order)));
    h = hUsed * factor;
    if (!accepted && !Number.isFinite(h)) h = hUsed * MIN_FACTOR;
    if (spec.minStep !== undefined && h < spec.minStep) {
      if (!accepted && hUsed <= spec.minStep) {
        throw new SolveError(`${spec.method}: a step of minStep=${spec.minStep} was rejected at t=${t} (error ratio ${ratio}); the solution may blow up here`, t);
      }
      h = spec.minStep;
    }
    if (!accepted && ratio === Infinity && h < 1e-14 * Math.max(1, Math.abs(t))) {
      throw new SolveError(`${spec.method}: state became NaN/Inf near t=${t}`, t);
    }
  }
  return { z1: z, zs, times, stats, trajectory: traj };
}

function solveGen<V>(ops: VectorOps<V>, spec: SolverSpec, z0: V, options: SolveOptions): Gen<V, SolveResult<V>> {
  const t0 = options.t0 ?? 0;
  const t1 = options.t1 ?? 1;
  const times = options.times ?? [t1];
  checkInterval(t0, t1, times);
  if (times.length === 0 || times[times.length - 1] !== t1) {
    // Always integrate to t1 so z1 is the state at t1.
    const opts = { t0, t1, times: [...times, t1], record: options.record ?? false, checkFinite: options.checkFinite ?? true };
    const gen = spec.kind === 'fixed' ? fixedSolve(ops, spec, z0, opts) : adaptiveSolve(ops, spec, z0, opts);
    return (function* () {
      const r = yield* gen;
      return { ...r, zs: r.zs.slice(0, times.length), times };
    })();
  }
  const opts = { t0, t1, times, record: options.record ?? false, checkFinite: options.checkFinite ?? true };
  return spec.kind === 'fixed' ? fixedSolve(ops, spec, z0, opts) : adaptiveSolve(ops, spec, z0, opts);
}

/** Solve with a synchronous field (tfjs tensors inside a gradient tape, typed arrays, graph values). */
export function solve<V>(ops: VectorOps<V>, field: SyncField<V>, z0: V, spec: SolverSpec, options: SolveOptions = {}): SolveResult<V> {
  const gen = solveGen(ops, spec, z0, options);
  let r = gen.next();
  while (!r.done) r = gen.next(isStepCall(r.value) ? undefined : field(r.value.t, r.value.z));
  return r.value;
}

/** A whole Runge–Kutta step computed elsewhere (a compiled graph of rkStep); undefined = run it stage by stage. */
export type AsyncStepper<V> = (call: StepCall<V>['step']) => StepOut<V> | undefined | Promise<StepOut<V> | undefined>;

/** Solve with a field that may be asynchronous (onnxruntime sessions), optionally with compiled steps. */
export async function solveAsync<V>(ops: VectorOps<V>, field: AsyncField<V>, z0: V, spec: SolverSpec, options: SolveOptions = {}, step?: AsyncStepper<V>): Promise<SolveResult<V>> {
  const gen = solveGen(ops, spec, z0, options);
  let r = gen.next();
  while (!r.done) {
    options.signal?.throwIfAborted();
    const q = r.value;
    r = gen.next(isStepCall(q) ? (step ? await step(q.step) : undefined) : await field(q.t, q.z));
  }
  return r.value;
}
