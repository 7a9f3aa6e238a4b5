/**
 * Datasets and evaluation data from a JSON file {"x": number[][], "y": number[]}.
 * Every row of x must have the same, non-zero number of finite numbers; y holds
 * one non-negative integer label per row. Errors are FileFormatErrors naming
 * the file and the offending index, e.g. `data.json: x[3] has 4 values, expected 2`.
 */
import { readFileSync } from 'node:fs';
import { FileFormatError, SpecError } from '../errors.js';
import { formatDatasetSpec } from './format.js';
import { isPositiveInt } from '../formats/index.js';
import {
  checkDataSize,
  checkLabelsFitModel,
  checkTrainingLabels,
  DATA_LIMITS,
  FLOAT32_MAX,
  isFloat32,
} from './limits.js';
import type { Rng } from '../random.js';
import type { Dataset, Split } from './types.js';

export interface JsonData {
  x: Float32Array;
  y: Int32Array;
  n: number;
  /** Values per row. */
  width: number;
}

function describe(v: unknown, opaque = false): string {
  if (v === undefined) return 'missing';
  // Opaque: the file is not the user's own (a cluster job's data): name the kind of value, never its text.
  if (opaque) return Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // e.g. 1e400 parses to Infinity
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Validate parsed JSON (`file` only names the source in messages). */
export function jsonToData(doc: unknown, file: string, opaque = false): JsonData {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new FileFormatError(file, 'expected a JSON object {"x": [[...], ...], "y": [...]}');
  }
  const { x: xs, y: ys } = doc as { x?: unknown; y?: unknown };
  if (!Array.isArray(xs))
    throw new FileFormatError(
      file,
      `field "x" is ${xs === undefined ? 'missing' : 'not an array'}; expected an array of numeric rows`,
    );
  if (xs.length === 0) throw new FileFormatError(file, 'field "x" is empty; expected at least one row');
  if (!Array.isArray(ys))
    throw new FileFormatError(
      file,
      `field "y" is ${ys === undefined ? 'missing' : 'not an array'}; expected an array of integer labels`,
    );
  const n = xs.length;
  if (ys.length !== n) throw new FileFormatError(file, `"y" has ${ys.length} labels but "x" has ${n} rows`);
  const first = xs[0];
  if (!Array.isArray(first))
    throw new FileFormatError(file, `x[0] is ${describe(first, opaque)}, expected an array of numbers`);
  const width = first.length;
  if (width === 0) throw new FileFormatError(file, 'x[0] is empty; expected at least one value per row');
  checkDataSize(file, n, width);
  const x = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    const row = xs[i] as unknown;
    if (!Array.isArray(row))
      throw new FileFormatError(file, `x[${i}] is ${describe(row, opaque)}, expected an array of numbers`);
    if (row.length !== width) throw new FileFormatError(file, `x[${i}] has ${row.length} values, expected ${width}`);
    for (let j = 0; j < width; j++) {
      const v = row[j] as unknown;
      if (typeof v !== 'number' || !isFloat32(v))
        throw new FileFormatError(
          file,
          `x[${i}][${j}] is ${describe(v, opaque)}, expected a finite number within the float32 range (|x| ≤ ` +
            `${FLOAT32_MAX.toPrecision(5)})`,
        );
      x[i * width + j] = v;
    }
  }
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = ys[i] as unknown;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= DATA_LIMITS.classes) {
      throw new FileFormatError(
        file,
        `y[${i}] is ${describe(v, opaque)}, expected a non-negative integer label (a class index below ` +
          `${DATA_LIMITS.classes})`,
      );
    }
    y[i] = v;
  }
  return { x, y, n, width };
}

/**
 * Read and validate a JSON data file. With `classes` (the model it is
 * evaluated with), every label must be one of the model's classes.
 */
export function readJsonData(file: string, options: { classes?: number } = {}): JsonData {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const detail =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, expected a JSON file'
          : `cannot read: ${(e as Error).message}`;
    throw new FileFormatError(file, detail, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const data = jsonToData(doc, file);
  if (options.classes !== undefined) checkLabelsFitModel(file, data.y, options.classes);
  return data;
}

export const DEFAULT_JSON_TEST_FRACTION = 0.2;

export interface JsonDatasetOptions {
  readonly file: string;
  /** The file's rows, already read (src/data/confined.ts reads them under a data root); default: read `file`. */
  readonly data?: JsonData;
  /** The run's random stream: the loader draws from its own fork of it ('json'). */
  readonly rng: Rng;
  /**
   * Test fraction in (0, 1) for a seeded random split (default 0.2), or 'none':
   * no split, train and test both hold all rows (for evaluation).
   */
  readonly split?: number | 'none';
  /** Number of classes (default max(y) + 1); must exceed every label. */
  readonly classes?: number;
  /** Per-sample shape, e.g. [1, 28, 28]; its product must equal the row width (default [width]). */
  readonly shape?: readonly number[];
}

function take(d: JsonData, idx: Int32Array): Split {
  const w = d.width;
  const x = new Float32Array(idx.length * w);
  const y = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    x.set(d.x.subarray(i * w, (i + 1) * w), k * w);
    y[k] = d.y[i]!;
  }
  return { x, y, n: idx.length };
}

export function loadJsonDataset(opts: JsonDatasetOptions): Dataset {
  const { file } = opts;
  const split = opts.split ?? DEFAULT_JSON_TEST_FRACTION;
  if (split !== 'none' && !(typeof split === 'number' && split > 0 && split < 1)) {
    throw new SpecError(`json: split must be a test fraction between 0 and 1 (exclusive) or "none", got ${split}`);
  }
  const data = opts.data ?? readJsonData(file);
  let maxLabel = 0;
  for (let i = 0; i < data.n; i++) maxLabel = Math.max(maxLabel, data.y[i]!);
  const classes = opts.classes ?? maxLabel + 1;
  if (!isPositiveInt(classes)) throw new SpecError(`json: classes must be a positive integer, got ${classes}`);
  if (classes <= maxLabel)
    throw new FileFormatError(file, `label ${maxLabel} found, but classes=${classes} allows only 0…${classes - 1}`);
  // Training data: every class present and at least two; evaluation data (split=none) may hold any subset.
  if (split !== 'none') checkTrainingLabels(file, data.y, opts.classes);
  const shape = opts.shape ? [...opts.shape] : [data.width];
  if (shape.length === 0 || shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new SpecError(`json: shape must be positive integers, got [${shape.join(', ')}]`);
  }
  const prod = shape.reduce((a, b) => a * b, 1);
  if (prod !== data.width)
    throw new FileFormatError(file, `rows have ${data.width} values, but shape ${shape.join('x')} needs ${prod}`);

  let train: Split;
  let test: Split;
  if (split === 'none') {
    train = { x: data.x, y: data.y, n: data.n };
    test = { x: data.x, y: data.y, n: data.n };
  } else {
    const nTest = Math.round(data.n * split);
    if (nTest < 1 || nTest >= data.n) {
      throw new FileFormatError(
        file,
        `${data.n} rows cannot be split with test fraction ${split} into non-empty train and test parts; use ` +
          `split=none`,
      );
    }
    const perm = opts.rng.fork('json').permutation(data.n);
    test = take(data, perm.subarray(0, nTest));
    train = take(data, perm.subarray(nTest));
  }
  const base = file.replace(/^.*[\\/]/, '').replace(/\.json$/i, '');
  return {
    spec: formatDatasetSpec({ kind: 'json', file, split: opts.split, classes: opts.classes, shape: opts.shape }),
    name: `json-${base}`,
    inputShape: shape,
    classes,
    train,
    test,
  };
}
