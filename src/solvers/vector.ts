/**
 * The vector-space operations the integrate loop needs. A numeric engine
 * (tfjs tensors, typed arrays) implements this once; the solver never knows
 * which engine it runs on.
 */
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

/** A vector field on engine values: synchronous (tfjs, typed arrays). */
export type SyncField<V> = (t: number, z: V) => V;
/** A vector field that may be asynchronous (onnxruntime sessions). */
export type AsyncField<V> = (t: number, z: V) => V | Promise<V>;
