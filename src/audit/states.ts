/** Discrete trajectories as the audits take them: K+1 states of N points in dimension d. */
import { ShapeError, SpecError } from '../errors.js';
import type { Floats } from '../linalg/pca.js';

export type { Floats };

/**
 * Trajectories of N points in dimension d over K steps, states at K+1 times:
 * either one flat array of shape [K+1, N, d] (row-major) or an array of K+1
 * per-time arrays of length N·d.
 */
export type TrajectoryInput = Floats | readonly Floats[];

/** Normalise a trajectory input to K+1 views of length n·d (no copy). */
export function trajectorySteps(traj: TrajectoryInput, n: number, d: number, what = 'trajectory'): Floats[] {
  if (!Number.isInteger(n) || n < 1) throw new SpecError(`${what}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(d) || d < 1) throw new SpecError(`${what}: d must be a positive integer, got ${d}`);
  const size = n * d;
  if (ArrayBuffer.isView(traj)) {
    const flat = traj as Floats;
    if (flat.length === 0 || flat.length % size !== 0) {
      throw new ShapeError(
        `${what}: flat array of length ${flat.length} is not [K+1, ${n}, ${d}] (a positive multiple of ${size})`,
      );
    }
    const out: Floats[] = [];
    for (let o = 0; o < flat.length; o += size) out.push(flat.subarray(o, o + size));
    return out;
  }
  const steps = traj as readonly Floats[];
  if (steps.length === 0) throw new ShapeError(`${what}: no states given`);
  steps.forEach((s, k) => {
    if (s.length !== size)
      throw new ShapeError(`${what}: state ${k} has length ${s.length}, expected n·d = ${n}·${d} = ${size}`);
  });
  return steps.slice();
}

export function assertFinite(steps: readonly Floats[], d: number, what: string): void {
  for (let k = 0; k < steps.length; k++) {
    const s = steps[k]!;
    for (let q = 0; q < s.length; q++) {
      if (!Number.isFinite(s[q]!)) {
        throw new ShapeError(
          `${what}: non-finite value ${s[q]} at time index ${k}, point ${Math.floor(q / d)}, component ${q % d}`,
        );
      }
    }
  }
}
