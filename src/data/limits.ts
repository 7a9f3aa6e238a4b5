/**
 * What a dataset may ask for, checked before anything is allocated, and the
 * label contract every dataset keeps (labels 0…K−1, K ≥ 2).
 *
 *   values   2^28 float32 values per split (1 GiB): MNIST's 70 000 × 784 is 2^25.6
 *   dim      1 000 000 values per sample (a vector dimension or C·H·W)
 *   samples  10 000 000 per split
 *   classes  10 000: logits and one-hot targets are batch × classes
 */
import { DataError, SizeError } from '../errors.js';

export const DATA_LIMITS = Object.freeze({ values: 2 ** 28, dim: 1_000_000, samples: 10_000_000, classes: 10_000 });

/** The largest float32 value; anything beyond overflows to Infinity when stored. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** Throws a SizeError unless `n` samples of `width` values fit the limits. */
export function checkDataSize(what: string, n: number, width: number): void {
  if (width > DATA_LIMITS.dim)
    throw new SizeError(`${what}: ${width} values per sample exceed the limit of ${DATA_LIMITS.dim}`);
  if (n > DATA_LIMITS.samples) throw new SizeError(`${what}: ${n} samples exceed the limit of ${DATA_LIMITS.samples}`);
  if (n * width > DATA_LIMITS.values) {
    throw new SizeError(
      `${what}: ${n} samples × ${width} values = ${n * width} values exceed the limit of ${DATA_LIMITS.values} (1 ` +
        `GiB of float32) per split`,
    );
  }
}

/** Is `v` storable as a finite float32? */
export function isFloat32(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX;
}

/** Labels as ranges for a message: [0, 1, 2, 5] → "0…2, 5" (at most `max` items). */
function ranges(labels: readonly number[], max = 8): string {
  const parts: string[] = [];
  for (let i = 0; i < labels.length && parts.length < max; ) {
    let j = i;
    while (j + 1 < labels.length && labels[j + 1] === labels[j]! + 1) j++;
    parts.push(j > i ? `${labels[i]}…${labels[j]}` : `${labels[i]}`);
    i = j + 1;
  }
  const shown = parts.join(', ');
  return parts.length === max ? `${shown}, …` : shown;
}

/**
 * The class count of training data: `classes` when given, else max(label) + 1.
 * Labels must be integers 0…K−1 with K ≥ 2; when K is inferred every class
 * must be present (a gap means a labelling mistake), and at least two classes
 * must be present in any case (one class trains to "loss 0, accuracy 1").
 */
export function checkTrainingLabels(what: string, y: ArrayLike<number>, classes?: number): number {
  if (classes !== undefined && (!Number.isSafeInteger(classes) || classes < 2 || classes > DATA_LIMITS.classes)) {
    throw new DataError(`${what}: classes must be an integer from 2 to ${DATA_LIMITS.classes}, got ${classes}`);
  }
  const limit = classes ?? DATA_LIMITS.classes;
  const seen = new Set<number>();
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new DataError(
        classes !== undefined
          ? `${what}: y[${i}] is ${v}, expected a label 0…${classes - 1} (classes=${classes})`
          : `${what}: y[${i}] is ${v}, expected a label from 0 to ${DATA_LIMITS.classes - 1} (labels are class ` +
              `indices 0…K−1)`,
      );
    }
    seen.add(v);
  }
  const k = classes ?? Math.max(-1, ...seen) + 1;
  if (seen.size < 2)
    throw new DataError(
      `${what}: ${seen.size === 0 ? 'no labels' : `only class ${[...seen][0]} is present`}; training needs at least ` +
        `2 classes`,
    );
  if (classes === undefined) {
    const missing = Array.from({ length: k }, (_, c) => c).filter((c) => !seen.has(c));
    if (missing.length > 0)
      throw new DataError(
        `${what}: labels must be 0…${k - 1} with every class present; missing ` +
          `${missing.length === 1 ? 'class' : 'classes'} ${ranges(missing)}`,
      );
  }
  return k;
}

/**
 * Evaluation data against a model: every label must be one of the model's
 * classes (a label beyond them would silently count as wrong).
 */
export function checkLabelsFitModel(what: string, y: ArrayLike<number>, classes: number): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      throw new DataError(`${what}: y[${i}] is ${v}, but the model has ${classes} classes (labels 0…${classes - 1})`);
    }
  }
}
