/**
 * Hairer's initial step size (Hairer, Nørsett & Wanner I, p.169), written once
 * with the norm as a parameter, as torchdiffeq's `_select_initial_step(…, norm)`:
 * the adaptive controller measures with the tolerance-scaled RMS, the training
 * engines with the batch's mean per-sample Euclidean norm (the paper's start of
 * step-size adaptation). A generator like the integrate loop, so every engine
 * drives it with its own field (see drive/driveAsync in integrate.ts).
 */
import type { FieldGen, VectorOps } from './vector.js';

/** A norm of engine values. */
export type Norm<V> = (v: V) => number;

/** The step from (t0, z0) with f0 = f(t0, z0) already known; costs one evaluation. */
export function* initialStep<V>(
  ops: VectorOps<V>,
  norm: Norm<V>,
  order: number,
  t0: number,
  z0: V,
  f0: V,
  dir = 1,
): FieldGen<V, number> {
  const d0 = norm(z0);
  const d1 = norm(f0);
  const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
  const z1 = ops.combine(z0, [dir * h0], [f0]);
  const f1 = (yield { t: t0 + dir * h0, z: z1 }) as V;
  const d2 = norm(ops.combine(f1, [-1], [f0])) / h0;
  const dmax = Math.max(d1, d2);
  const h1 = dmax <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / dmax, 1 / (order + 1));
  return Math.min(100 * h0, h1);
}

/** The step from (t0, z0) alone: evaluates f0 first (two evaluations in all). */
export function* initialStepFrom<V>(
  ops: VectorOps<V>,
  norm: Norm<V>,
  order: number,
  t0: number,
  z0: V,
): FieldGen<V, number> {
  const f0 = (yield { t: t0, z: z0 }) as V;
  return yield* initialStep(ops, norm, order, t0, z0, f0);
}
