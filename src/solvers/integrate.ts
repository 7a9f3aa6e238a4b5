/**
 * The one integrate loop. It is written as a generator that yields every
 * vector-field evaluation it needs ({t, z}) and receives f(t, z) back, so the
 * same algorithm runs synchronously on tfjs tensors (inside a gradient tape),
 * asynchronously on onnxruntime sessions, and on graph values (writing a
 * solve into an ONNX graph).
 *
 * Before each Runge–Kutta step it also yields a step request ({step}); a
 * driver may answer it with the whole step computed elsewhere (a compiled
 * graph of that same rkStep, src/onnx/lower/step-graph.ts) or with undefined, and
 * the step then runs stage by stage here.
 *
 * Fixed and adaptive solves are the same loop: the Solver's step-size
 * controller (controller.ts) says where steps land, how large the first one
 * is, and whether a step is accepted.
 */
import { SolveError, SpecError } from '../errors.js';
import type { StepController } from './controller.js';
import { asSolver, type Solver } from './solver.js';
import type { SolverSpec } from './spec.js';
import type { Tableau } from './tableau.js';
import {
  isStepCall,
  type AsyncField,
  type FieldGen,
  type StepCall,
  type StepOut,
  type SyncField,
  type VectorOps,
} from './vector.js';

export { fixedGrid } from './controller.js';
export { isStepCall, type SolveRequest } from './vector.js';

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
  /**
   * solveAsync stops with the signal's reason before the next field call once it aborts (a cancelled study job,
   * Ctrl-C).
   */
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

/**
 * One explicit Runge–Kutta step of any tableau, given k1 = f(t, z) — the only
 * RK step of odeness: numeric engines run it stage by stage, graph writers
 * drive it with graph values (fixed grids unrolled, compiled adaptive steps).
 */
export function* rkStep<V>(
  ops: VectorOps<V>,
  tab: Tableau,
  t: number,
  z: V,
  h: number,
  k1: V,
  offer = true,
): FieldGen<V, StepOut<V>> {
  if (offer) {
    const done = (yield { step: { tab, t, h, z, k1 } }) as StepOut<V> | undefined;
    if (done !== undefined) return done;
  }
  const s = tab.c.length;
  const k: V[] = [k1];
  let zi = z;
  for (let i = 1; i < s; i++) {
    zi = ops.combine(
      z,
      tab.a[i]!.map((a) => a * h),
      k,
    );
    k.push((yield { t: t + tab.c[i]! * h, z: zi }) as V);
  }
  const z1 = tab.fsal
    ? zi
    : ops.combine(
        z,
        tab.b.map((b) => b * h),
        k,
      );
  const err = tab.bErr
    ? ops.combine(
        undefined,
        tab.bErr.map((e) => e * h),
        k,
      )
    : undefined;
  return { z1, err, kLast: k[s - 1]! };
}

function checkInterval(t0: number, t1: number, times: readonly number[]): void {
  if (!Number.isFinite(t0) || !Number.isFinite(t1))
    throw new SpecError(`t0 and t1 must be finite, got t0=${t0}, t1=${t1}`);
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

/** Runs `gen`, counting its field evaluations into stats.nfe (it asks for no whole steps). */
function* counted<V, R>(gen: FieldGen<V, R>, stats: SolveStats): FieldGen<V, R> {
  let r = gen.next();
  while (!r.done) {
    if (!isStepCall(r.value)) stats.nfe++;
    r = gen.next(yield r.value);
  }
  return r.value;
}

function* evaluate<V>(t: number, z: V, stats: SolveStats): FieldGen<V, V> {
  const k = (yield { t, z }) as V;
  stats.nfe++;
  return k;
}

type LoopOptions = Required<Omit<SolveOptions, 'times' | 'signal'>> & { times: readonly number[] };

/** A step's state, for the requested times it passes: z1 at its end, linear interpolation before (fixed grids). */
interface TakenStep<V> {
  readonly t: number;
  readonly h: number;
  readonly z: V;
  readonly z1: V;
  /** Where the step ends: t + h, or exactly the stop it lands on. */
  readonly tEnd: number;
}

function outputs<V>(ops: VectorOps<V>, step: TakenStep<V>, times: readonly number[], from: number, zs: V[]): number {
  let next = from;
  while (next < times.length && (times[next]! - step.tEnd) * Math.sign(step.h) <= 0) {
    const tq = times[next]!;
    const w = (tq - step.t) / step.h;
    zs.push(tq === step.tEnd || w >= 1 ? step.z1 : ops.combine(step.z, [w, -w], [step.z1, step.z]));
    next++;
  }
  return next;
}

/**
 * The loop: from t0, step towards the controller's next stop (a grid point, or
 * the next requested time), ask the controller to accept and size the next
 * step, and report the requested times as they are passed.
 */
function* integrate<V>(ops: VectorOps<V>, solver: Solver, z0: V, opts: LoopOptions): FieldGen<V, SolveResult<V>> {
  const tab = solver.tableau;
  const ctl: StepController = solver.controller;
  // FSAL: the last stage is f at the new state. Only steps under error control reuse it; a fixed grid (of any
  // tableau) evaluates f at each grid point, as torchdiffeq's fixed-grid solvers do.
  const fsal = tab.fsal && ctl.ratio !== undefined;
  const { method } = solver.spec;
  const { t0, t1, times } = opts;
  const dir = Math.sign(t1 - t0);
  const stops = ctl.stops(t0, t1, times);
  const stats: SolveStats = { nfe: 0, accepted: 0, rejected: 0 };
  const zs: V[] = [];
  const traj: Trajectory<V> | undefined = opts.record ? { t: [t0], z: [z0] } : undefined;
  let t = t0;
  let z = z0;
  let next = 0;
  let stop = 0;
  // Times equal to t0 are answered before the first step.
  while (next < times.length && times[next] === t0) zs.push(z0), next++;
  while (stop < stops.length && stops[stop] === t0) stop++;
  let k1 = yield* evaluate(t, z, stats);
  let h = yield* counted(ctl.init(ops, t, z, k1, dir), stats);
  while (stop < stops.length) {
    const target = stops[stop]!;
    if (stats.accepted + stats.rejected >= ctl.maxSteps) {
      const where = `reached maxSteps=${ctl.maxSteps} at t=${t} before t1=${t1} (${ctl.settings})`;
      throw new SolveError(`${method}: ${where}; raise maxSteps or loosen the tolerance`, t);
    }
    // Land exactly on the next stop.
    const remaining = Math.abs(target - t);
    const lands = h >= remaining;
    const step = dir * (lands ? remaining : h);
    // A NaN step comes from a NaN/Inf f(t0, z0) in the initial-step heuristic;
    // a step below half an ulp of t would advance the state with t frozen.
    if (!Number.isFinite(step)) {
      throw new SolveError(`${method}: state or vector field became NaN/Inf near t=${t} (step size ${h})`, t);
    }
    if (t + step === t) {
      const where = `step size ${h} underflows at t=${t} before t1=${t1}`;
      throw new SolveError(`${method}: ${where}; the solution may blow up here`, t);
    }
    const out = yield* rkStep(ops, tab, t, z, step, k1);
    stats.nfe += tab.c.length - 1;
    if (!ctl.ratio && opts.checkFinite && !ops.allFinite(out.z1)) {
      throw new SolveError(`${method}: state became NaN/Inf in the step from t=${t} to t=${t + step}`, t);
    }
    const decision = ctl.adapt(ctl.ratio ? ctl.ratio(ops, out.err!, z, out.z1) : 0, Math.abs(step), t);
    h = decision.hNext;
    if (!decision.accept) {
      stats.rejected++;
      continue;
    }
    const tEnd = lands ? target : t + step;
    next = outputs(ops, { t, h: step, z, z1: out.z1, tEnd }, times, next, zs);
    t = tEnd;
    z = out.z1;
    stats.accepted++;
    if (traj) traj.t.push(t), traj.z.push(z);
    while (stop < stops.length && (stops[stop]! - t) * dir <= 0) stop++;
    if (stop < stops.length) k1 = fsal ? out.kLast : yield* evaluate(t, z, stats);
  }
  return { z1: z, zs, times, stats, trajectory: traj };
}

function solveGen<V>(
  ops: VectorOps<V>,
  spec: SolverSpec | Solver,
  z0: V,
  options: SolveOptions,
): FieldGen<V, SolveResult<V>> {
  const solver = asSolver(spec);
  const t0 = options.t0 ?? 0;
  const t1 = options.t1 ?? 1;
  const times = options.times ?? [t1];
  checkInterval(t0, t1, times);
  const base = { t0, t1, record: options.record ?? false, checkFinite: options.checkFinite ?? true };
  if (times.length > 0 && times[times.length - 1] === t1) return integrate(ops, solver, z0, { ...base, times });
  // Always integrate to t1 so z1 is the state at t1.
  return (function* () {
    const r = yield* integrate(ops, solver, z0, { ...base, times: [...times, t1] });
    return { ...r, zs: r.zs.slice(0, times.length), times };
  })();
}

/** Runs a field computation (the loop, Hairer's step) with a synchronous field; whole steps run stage by stage. */
export function drive<V, R>(gen: FieldGen<V, R>, field: SyncField<V>): R {
  let r = gen.next();
  while (!r.done) r = gen.next(isStepCall(r.value) ? undefined : field(r.value.t, r.value.z));
  return r.value;
}

/** Runs a field computation with a field that may be asynchronous, optionally with compiled steps. */
export async function driveAsync<V, R>(
  gen: FieldGen<V, R>,
  field: AsyncField<V>,
  step?: AsyncStepper<V>,
  signal?: AbortSignal,
): Promise<R> {
  let r = gen.next();
  while (!r.done) {
    signal?.throwIfAborted();
    const q = r.value;
    r = gen.next(isStepCall(q) ? (step ? await step(q.step) : undefined) : await field(q.t, q.z));
  }
  return r.value;
}

/** Solve with a synchronous field (tfjs tensors inside a gradient tape, typed arrays, graph values). */
export function solve<V>(
  ops: VectorOps<V>,
  field: SyncField<V>,
  z0: V,
  spec: SolverSpec | Solver,
  options: SolveOptions = {},
): SolveResult<V> {
  return drive(solveGen(ops, spec, z0, options), field);
}

/** A whole Runge–Kutta step computed elsewhere (a compiled graph of rkStep); undefined = run it stage by stage. */
export type AsyncStepper<V> = (call: StepCall<V>['step']) => StepOut<V> | undefined | Promise<StepOut<V> | undefined>;

/** Solve with a field that may be asynchronous (onnxruntime sessions), optionally with compiled steps. */
export async function solveAsync<V>(
  ops: VectorOps<V>,
  field: AsyncField<V>,
  z0: V,
  spec: SolverSpec | Solver,
  options: SolveOptions = {},
  step?: AsyncStepper<V>,
): Promise<SolveResult<V>> {
  return driveAsync(solveGen(ops, spec, z0, options), field, step, options.signal);
}
