/**
 * In-memory datasets. Inputs are float32, row-major: sample i occupies
 * x[i·w … (i+1)·w) with w = prod(inputShape); images are CHW per sample
 * (see src/models/types.ts). Labels are class indices 0 … classes−1.
 */
export interface Split {
  /** n × prod(inputShape) values, row-major. */
  x: Float32Array;
  /** n class labels. */
  y: Int32Array;
  n: number;
}

export interface Dataset {
  /** Canonical spec string that reproduces this dataset together with the seed. */
  spec: string;
  /** Short label for tables and file names, e.g. "spheres-ott2021-d2", "mnist14". */
  name: string;
  /** Per-sample input shape: [d] for vectors, [C, H, W] for images. */
  inputShape: number[];
  classes: number;
  train: Split;
  test: Split;
}

/** Values per sample of a split (x.length / n). */
export function rowWidth(split: Split): number {
  return split.n === 0 ? 0 : split.x.length / split.n;
}
