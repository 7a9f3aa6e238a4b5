/**
 * CIFAR-10 from the standard binary batches ("CIFAR-10 binary version"):
 * data_batch_1.bin … data_batch_5.bin and test_batch.bin, each a sequence of
 * 3073-byte records: 1 label byte (0–9), then 1024 R, 1024 G, 1024 B bytes
 * (32×32 row-major planes). That is already CHW, so a record maps to one
 * [3, 32, 32] sample scaled by 1/255.
 *
 * Training data: the data batches that exist, in order 1…5 (at least one).
 * `limit` keeps the first `limit` training records (only those bytes are read).
 * Test data: test_batch.bin when present (its first `nTest` records if given);
 * otherwise a seeded random part of the data-batch records (fork 'cifar10' of
 * the given stream), `nTest` of them (default 20 %), is split off before `limit` applies.
 * A directory that only contains the extracted "cifar-10-batches-bin" folder
 * is accepted too.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError, SpecError } from '../errors.js';
import { isPositiveInt } from '../formats/index.js';
import { formatDatasetSpec } from './format.js';
import type { Rng } from '../random.js';
import type { Dataset, Split } from './types.js';

export const CIFAR10_RECORD_BYTES = 3073;
const PIXELS = 3 * 32 * 32;
export const CIFAR10_DATA_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;
/** Fraction split off as test data when test_batch.bin is absent and nTest is not given. */
export const CIFAR10_DEFAULT_TEST_FRACTION = 0.2;

export interface Cifar10Options {
  readonly dir: string;
  /** Keep at most this many training records. */
  readonly limit?: number;
  /** Test records: the first nTest of test_batch.bin, or the size of the split-off part. */
  readonly nTest?: number;
  /** The run's random stream: the loader draws from its own fork of it ('cifar10'). */
  readonly rng: Rng;
}

/** Number of records in a batch file, checking that its size is a positive multiple of 3073. */
export function cifarRecordCount(file: string): number {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new FileFormatError(file, 'not a regular file');
    size = st.size;
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    throw new FileFormatError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  if (size === 0 || size % CIFAR10_RECORD_BYTES !== 0) {
    throw new FileFormatError(
      file,
      `size ${size} bytes is not a positive multiple of the ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 record (1 label + ` +
        `3072 pixel bytes); truncated, or not the binary version?`,
    );
  }
  return size / CIFAR10_RECORD_BYTES;
}

/**
 * Decode `count` records starting at record `first` of a batch file into
 * x/y at row `row`. Labels must be 0–9.
 */
function readRecords(file: string, first: number, count: number, x: Float32Array, y: Int32Array, row: number): void {
  if (count <= 0) return;
  const chunkRecords = 1024;
  const buf = Buffer.allocUnsafe(Math.min(count, chunkRecords) * CIFAR10_RECORD_BYTES);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new FileFormatError(file, `cannot open: ${(e as Error).message}`, { cause: e });
  }
  try {
    for (let done = 0; done < count; ) {
      const k = Math.min(chunkRecords, count - done);
      const want = k * CIFAR10_RECORD_BYTES;
      let got = 0;
      while (got < want) {
        const r = readSync(fd, buf, got, want - got, (first + done) * CIFAR10_RECORD_BYTES + got);
        if (r === 0) throw new FileFormatError(file, `unexpected end of file at record ${first + done}`);
        got += r;
      }
      for (let j = 0; j < k; j++) {
        const off = j * CIFAR10_RECORD_BYTES;
        const label = buf[off]!;
        const rec = first + done + j;
        if (label > 9)
          throw new FileFormatError(file, `record ${rec} has label ${label}, expected 0–9 (is this CIFAR-100?)`);
        const r = row + done + j;
        y[r] = label;
        const base = r * PIXELS;
        for (let p = 0; p < PIXELS; p++) x[base + p] = buf[off + 1 + p]! / 255;
      }
      done += k;
    }
  } finally {
    closeSync(fd);
  }
}

interface Source {
  readonly file: string;
  readonly records: number;
}

/** Read the given global record indices of the concatenated sources; rows come out in ascending index order. */
function readSelected(sources: readonly Source[], indices: Int32Array): Split {
  const n = indices.length;
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  // Sorted indices → contiguous runs inside each file.
  const sorted = Int32Array.from(indices).sort();
  let k = 0;
  let start = 0;
  for (const s of sources) {
    const end = start + s.records;
    while (k < n && sorted[k]! < end) {
      let runEnd = k + 1;
      while (runEnd < n && sorted[runEnd]! === sorted[runEnd - 1]! + 1 && sorted[runEnd]! < end) runEnd++;
      readRecords(s.file, sorted[k]! - start, runEnd - k, x, y, k);
      k = runEnd;
    }
    start = end;
  }
  return { x, y, n };
}

function positiveInt(what: string, v: number | undefined): void {
  if (v !== undefined && !isPositiveInt(v))
    throw new SpecError(`cifar10: ${what} must be a positive integer, got ${v}`);
}

/** Resolve the directory holding the batch files (accepts the parent of cifar-10-batches-bin). */
export function resolveCifarDir(dir: string): string {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new FileFormatError(dir, 'CIFAR-10 directory not found');
  }
  if (!st.isDirectory())
    throw new FileFormatError(dir, 'not a directory; expected the folder with data_batch_1.bin … test_batch.bin');
  const has = (d: string) => CIFAR10_DATA_FILES.some((f) => existsSync(join(d, f)));
  if (has(dir)) return dir;
  const nested = join(dir, 'cifar-10-batches-bin');
  if (has(nested)) return nested;
  throw new FileFormatError(
    dir,
    `no CIFAR-10 data batch found; expected at least one of ${CIFAR10_DATA_FILES.join(', ')} (binary version, ` +
      `https://www.cs.toronto.edu/~kriz/cifar.html)`,
  );
}

export function loadCifar10(opts: Cifar10Options): Dataset {
  positiveInt('limit', opts.limit);
  positiveInt('test size', opts.nTest);
  const dir = resolveCifarDir(opts.dir);
  const sources: Source[] = CIFAR10_DATA_FILES.map((f) => join(dir, f))
    .filter((f) => existsSync(f))
    .map((file) => ({ file, records: cifarRecordCount(file) }));
  const total = sources.reduce((a, s) => a + s.records, 0);
  const testFile = join(dir, CIFAR10_TEST_FILE);

  let train: Split;
  let test: Split;
  if (existsSync(testFile)) {
    const testRecords = cifarRecordCount(testFile);
    const nTest = Math.min(opts.nTest ?? testRecords, testRecords);
    const nTrain = Math.min(opts.limit ?? total, total);
    train = readSelected(
      sources,
      Int32Array.from({ length: nTrain }, (_, i) => i),
    );
    test = readSelected(
      [{ file: testFile, records: testRecords }],
      Int32Array.from({ length: nTest }, (_, i) => i),
    );
  } else {
    const nTest = opts.nTest ?? Math.max(1, Math.round(total * CIFAR10_DEFAULT_TEST_FRACTION));
    if (nTest >= total) {
      throw new FileFormatError(
        dir,
        `no ${CIFAR10_TEST_FILE}, and the ${total} data-batch records cannot be split into ${nTest} test records ` +
          `plus a training part`,
      );
    }
    const perm = opts.rng.fork('cifar10').permutation(total);
    const testIdx = perm.slice(0, nTest).sort();
    const rest = perm.slice(nTest).sort();
    const trainIdx = rest.subarray(0, Math.min(opts.limit ?? rest.length, rest.length));
    train = readSelected(sources, trainIdx);
    test = readSelected(sources, testIdx);
  }
  return {
    spec: formatDatasetSpec({ kind: 'cifar10', dir: opts.dir, limit: opts.limit, testN: opts.nTest }),
    name: 'cifar10',
    inputShape: [3, 32, 32],
    classes: 10,
    train,
    test,
  };
}
