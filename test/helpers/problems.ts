/**
 * Test problems with closed-form solutions, shared by the solver tests.
 *
 * Rotation-decay: z' = Az, A = [[-1/2, -2], [2, -1/2]], so exp(At) = e^{-t/2}·R(2t)
 * (a rotation by 2t shrinking as e^{-t/2}); from z(0) = (1, 1/2).
 */
export interface Problem {
  readonly name: string;
  readonly f: (t: number, z: Float64Array) => Float64Array;
  readonly z0: readonly number[];
  readonly t0: number;
  readonly t1: number;
  readonly exact: (t: number) => number[];
}

/** The rotation-decay field on any float array type (float64 reference, float32 engine). */
export function rotDecayOf<T extends Float64Array | Float32Array>(Ctor: {
  of(...v: number[]): T;
}): (t: number, z: T) => T {
  return (_t, z) => Ctor.of(-0.5 * z[0]! - 2 * z[1]!, 2 * z[0]! - 0.5 * z[1]!);
}

export const rotDecayField = rotDecayOf<Float64Array>(Float64Array);
export const rotDecayField32 = rotDecayOf<Float32Array>(Float32Array);

/** Aᵀ as a nested array: a row state z times it is (Az)ᵀ (tfjs batches of row states). */
export const ROT_DECAY_AT: number[][] = [
  [-0.5, 2],
  [-2, -0.5],
];

export const ROT_DECAY_Z0: readonly number[] = [1, 0.5];

/** exp(At)·z(0) for z(0) = (1, 1/2). */
export function rotDecayExact(t: number): number[] {
  const e = Math.exp(-0.5 * t);
  const c = Math.cos(2 * t);
  const s = Math.sin(2 * t);
  return [e * (c * 1 - s * 0.5), e * (s * 1 + c * 0.5)];
}

export const rotDecay: Problem = {
  name: 'rotation-decay',
  f: rotDecayField,
  z0: ROT_DECAY_Z0,
  t0: 0,
  t1: 1,
  exact: rotDecayExact,
};
