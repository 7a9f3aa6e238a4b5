/**
 * Seeded mini-batches. Each epoch is a fresh permutation of the rows drawn
 * from the given stream (pass a dedicated fork, e.g. rng.fork('batches')).
 */
import { SpecError } from '../errors.js';
import type { Rng } from '../random.js';
import type { Split } from './types.js';

export interface BatchOptions {
  /** Stop after this many epochs (default: never; the caller counts iterations). */
  readonly epochs?: number;
  /**
   * Drop the incomplete last batch of each epoch (default true: every batch has
   * exactly batchSize rows, so tensor shapes stay fixed and per-batch accuracy
   * has one denominator). With false the last batch of an epoch may be smaller.
   */
  readonly dropLast?: boolean;
}

/**
 * Row indices of successive mini-batches. Validates eagerly: throws SpecError
 * right away when batchSize is not a positive integer or exceeds split.n.
 * Each yielded Int32Array is a fresh copy the caller may keep.
 */
export function batchIterator(
  split: Pick<Split, 'n'>,
  batchSize: number,
  rng: Rng,
  options: BatchOptions = {},
): Generator<Int32Array, void, undefined> {
  const n = split.n;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new SpecError(`batch size must be a positive integer, got ${batchSize}`);
  if (batchSize > n)
    throw new SpecError(
      `batch size ${batchSize} exceeds the ${n} examples in the training set; use a batch size ≤ ${n}`,
    );
  const epochs = options.epochs ?? Infinity;
  if (!(epochs === Infinity || (Number.isInteger(epochs) && epochs >= 0)))
    throw new SpecError(`epochs must be a non-negative integer, got ${epochs}`);
  const dropLast = options.dropLast ?? true;
  return (function* () {
    for (let e = 0; e < epochs; e++) {
      const perm = rng.permutation(n);
      const end = dropLast ? n - (n % batchSize) : n;
      for (let start = 0; start < end; start += batchSize) yield perm.slice(start, Math.min(start + batchSize, end));
    }
  })();
}

/** Copy the given rows of a split (x row width = x.length / n). */
export function gather(split: Split, indices: ArrayLike<number>): Split {
  const width = split.n === 0 ? 0 : split.x.length / split.n;
  const m = indices.length;
  const x = new Float32Array(m * width);
  const y = new Int32Array(m);
  for (let k = 0; k < m; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= split.n)
      throw new RangeError(`gather: row ${i} out of range 0…${split.n - 1}`);
    x.set(split.x.subarray(i * width, (i + 1) * width), k * width);
    y[k] = split.y[i]!;
  }
  return { x, y, n: m };
}
