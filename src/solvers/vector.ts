/**
 * The vector-space operations the integrate loop needs. A numeric engine
 * (tfjs tensors, typed arrays) implements this once; the solver never knows
 * which engine it runs on.
 */
import type { Tableau } from './tableau.js';

export interface VectorOps<V> {
  /** base + Σ coeffs[i]·terms[i] (base may be absent = 0); zero coefficients are skipped. */
  combine(base: V | undefined, coeffs: readonly number[], terms: readonly V[]): V;
  /**
   * RMS over every component of v / (atol + rtol·max_j |refs_j|) — the norm of
   * torchdiffeq's error ratio and Hairer's initial-step heuristic.
   */
  scaledRms(v: V, rtol: number, atol: number, refs: readonly V[]): number;
  /** False when any component is NaN or ±Inf. */
  allFinite(v: V): boolean;
}

/** One request of the integrate loop to evaluate the vector field f(t, z). */
export interface FieldCall<V> {
  readonly t: number;
  readonly z: V;
}

/**
 * The loop's offer to have a whole Runge–Kutta step computed elsewhere:
 * from (t, z) with step h and k1 = f(t, z), under the tableau.
 */
export interface StepCall<V> {
  readonly step: { readonly tab: Tableau; readonly t: number; readonly h: number; readonly z: V; readonly k1: V };
}

/** The result of one Runge–Kutta step. */
export interface StepOut<V> {
  readonly z1: V;
  /** Error estimate (embedded pairs only). */
  readonly err?: V;
  /** The last stage value; f(t+h, z1) for FSAL tableaus. */
  readonly kLast: V;
}

/** What the loop yields: a field evaluation, or a step request (answered with a StepOut or undefined). */
export type SolveRequest<V> = FieldCall<V> | StepCall<V>;

/** A computation that asks for field evaluations and steps as it goes (the integrate loop, Hairer's step). */
export type FieldGen<V, R> = Generator<SolveRequest<V>, R, V | StepOut<V> | undefined>;

export function isStepCall<V>(r: SolveRequest<V>): r is StepCall<V> {
  return 'step' in r;
}

/** A vector field on engine values: synchronous (tfjs, typed arrays). */
export type SyncField<V> = (t: number, z: V) => V;
/** A vector field that may be asynchronous (onnxruntime sessions). */
export type AsyncField<V> = (t: number, z: V) => V | Promise<V>;
