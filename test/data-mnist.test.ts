import test from 'ava';
import { SpecError } from '../src/errors.js';
import { avgPool2d, loadDataset, loadMnist, loadMnistPool } from '../src/data/index.js';
import { Rng } from '../src/random.js';

// One parse of the package's digit files per process; later loads hit the cache.
const ds = loadMnist({ rng: new Rng(1) });
const ROW = 784;

const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const same = (a: Float32Array | Int32Array, b: Float32Array | Int32Array) => bytes(a).equals(bytes(b));

const rowKey = (x: Float32Array, i: number, w: number) =>
  Buffer.from(x.buffer, x.byteOffset + i * w * 4, w * 4).toString('base64');

test('pool: all 10 000 digits of the mnist package, 28×28 in [0, 1], labels 0–9', (t) => {
  const pool = loadMnistPool();
  t.is(pool, loadMnistPool(), 'cached within the process');
  t.is(pool.n, 10000);
  t.is(pool.x.length, 10000 * ROW);
  t.deepEqual([...pool.inputShape], [1, 28, 28]);
  const counts = new Array(10).fill(0);
  for (const v of pool.y) counts[v]++;
  t.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
});

test('default split: 8000 / 2000, shapes, ranges and labels', (t) => {
  t.is(ds.name, 'mnist');
  t.is(ds.spec, 'mnist');
  t.deepEqual(ds.inputShape, [1, 28, 28]);
  t.is(ds.classes, 10);
  t.is(ds.train.n, 8000);
  t.is(ds.test.n, 2000);
  t.is(ds.train.x.length, 8000 * ROW);
  t.is(ds.test.x.length, 2000 * ROW);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of ds.train.x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  t.is(lo, 0);
  t.is(hi, 1);
  const seen = new Set(ds.train.y);
  t.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.true([...ds.test.y].every((v) => v >= 0 && v <= 9));
  // Shuffled: the first 100 training labels are not all one digit.
  t.true(new Set(ds.train.y.subarray(0, 100)).size >= 8);
});

test('train and test are disjoint and rows keep their labels', (t) => {
  const pool = loadMnistPool();
  const labelOf = new Map<string, number>();
  for (let i = 0; i < pool.n; i++) labelOf.set(rowKey(pool.x, i, ROW), pool.y[i]!);
  const trainKeys = new Set<string>();
  for (let i = 0; i < ds.train.n; i++) {
    const k = rowKey(ds.train.x, i, ROW);
    trainKeys.add(k);
    if (labelOf.get(k) !== ds.train.y[i]) t.fail(`train row ${i} lost its label`);
  }
  let overlap = 0;
  for (let i = 0; i < ds.test.n; i++) {
    const k = rowKey(ds.test.x, i, ROW);
    if (trainKeys.has(k)) overlap++;
    if (labelOf.get(k) !== ds.test.y[i]) t.fail(`test row ${i} lost its label`);
  }
  t.is(trainKeys.size, 8000);
  t.is(overlap, 0);
});

test('seeded: same seed → identical split, other seed → different', (t) => {
  const again = loadMnist({ rng: new Rng(1) });
  t.true(same(again.train.x, ds.train.x));
  t.true(same(again.test.x, ds.test.x));
  t.true(same(again.test.y, ds.test.y));
  const other = loadMnist({ rng: new Rng(2) });
  t.notDeepEqual(Array.from(other.train.y.subarray(0, 50)), Array.from(ds.train.y.subarray(0, 50)));
});

test('avgPool2d on known patterns', (t) => {
  // One 4×4 image 0..15, factor 2.
  const img = Float32Array.from({ length: 16 }, (_, i) => i);
  t.deepEqual(Array.from(avgPool2d(img, 1, 1, 4, 4, 2)), [2.5, 4.5, 10.5, 12.5]);
  t.deepEqual(Array.from(avgPool2d(img, 1, 1, 4, 4, 4)), [7.5]);
  // Two samples × two channels: each plane pooled on its own.
  const x = new Float32Array(2 * 2 * 16);
  x.fill(1, 16, 32); // sample 0, channel 1
  x.fill(3, 48, 64); // sample 1, channel 1
  t.deepEqual(Array.from(avgPool2d(x, 2, 2, 4, 4, 2)), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 3, 3, 3, 3]);
  // 28×28 checkerboard → 0.5 everywhere at 14×14; a bright 2×2 block lands in one output pixel.
  const board = Float32Array.from({ length: ROW }, (_, k) => ((Math.floor(k / 28) + (k % 28)) % 2 ? 1 : 0));
  t.true(Array.from(avgPool2d(board, 1, 1, 28, 28, 2)).every((v) => v === 0.5));
  const block = new Float32Array(ROW);
  for (const [r, c] of [
    [6, 8],
    [6, 9],
    [7, 8],
    [7, 9],
  ])
    block[r! * 28 + c!] = 1;
  const pooled = avgPool2d(block, 1, 1, 28, 28, 2);
  t.is(pooled[3 * 14 + 4], 1);
  t.is(
    pooled.reduce((a, b) => a + b, 0),
    1,
  );
  t.throws(() => avgPool2d(img, 1, 1, 4, 4, 3), { instanceOf: SpecError });
});

test('size=14 and size=7 are the average-pooled 28×28 images of the same split', (t) => {
  const d14 = loadMnist({ rng: new Rng(1), size: 14 });
  t.deepEqual(d14.inputShape, [1, 14, 14]);
  t.is(d14.name, 'mnist14');
  t.is(d14.spec, 'mnist:size=14');
  t.is(d14.train.x.length, 8000 * 196);
  t.true(same(d14.train.y, ds.train.y));
  t.true(same(d14.test.x, avgPool2d(ds.test.x, 2000, 1, 28, 28, 2)));
  // Spot-check one pixel by hand.
  const i = 17;
  const [r, c] = [6, 5];
  const base = i * ROW;
  const manual =
    (ds.train.x[base + 12 * 28 + 10]! +
      ds.train.x[base + 12 * 28 + 11]! +
      ds.train.x[base + 13 * 28 + 10]! +
      ds.train.x[base + 13 * 28 + 11]!) /
    4;
  t.true(Math.abs(d14.train.x[i * 196 + r * 14 + c]! - manual) < 1e-6);
  const d7 = loadMnist({ rng: new Rng(1), size: 7, nTrain: 100, nTest: 50 });
  t.deepEqual(d7.inputShape, [1, 7, 7]);
  t.is(d7.train.x.length, 100 * 49);
  t.is(d7.test.n, 50);
});

test('loadDataset("mnist:size=14,n=500,testN=100")', async (t) => {
  const d = await loadDataset('mnist:size=14,n=500,testN=100', 3);
  t.is(d.spec, 'mnist:size=14,n=500,testN=100');
  t.is(d.train.n, 500);
  t.is(d.test.n, 100);
  t.deepEqual(d.inputShape, [1, 14, 14]);
});

test('bad sizes are rejected', (t) => {
  t.throws(() => loadMnist({ rng: new Rng(1), size: 5 }), {
    instanceOf: SpecError,
    message: /size must be one of 28, 14, 7, 4, got 5/,
  });
  t.throws(() => loadMnist({ rng: new Rng(1), nTrain: 9000, nTest: 2000 }), {
    instanceOf: SpecError,
    message: /only 10000/,
  });
  t.throws(() => loadMnist({ rng: new Rng(1), nTrain: 0 }), { instanceOf: SpecError });
});
