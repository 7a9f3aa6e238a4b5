import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileFormatError, SpecError } from '../src/errors.js';
import { CIFAR10_RECORD_BYTES, loadCifar10, loadDataset } from '../src/data/index.js';
import { Rng } from '../src/random.js';

const root = mkdtempSync(join(tmpdir(), 'odeness-cifar-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

/**
 * Records with ids first … first+count−1: label id % 10, pixel p = (id + p) % 256,
 * except the first byte of each plane marks the channel (R 10, G 20, B 30) and
 * the second byte holds the id, so a loaded row can be traced back.
 */
function records(first: number, count: number, labels?: (id: number) => number): Buffer {
  const buf = Buffer.alloc(count * CIFAR10_RECORD_BYTES);
  for (let k = 0; k < count; k++) {
    const id = first + k;
    const off = k * CIFAR10_RECORD_BYTES;
    buf[off] = labels ? labels(id) : id % 10;
    for (let p = 0; p < 3072; p++) buf[off + 1 + p] = (id + p) % 256;
    for (let c = 0; c < 3; c++) buf[off + 1 + c * 1024] = 10 * (c + 1);
    buf[off + 2] = id;
  }
  return buf;
}

function makeDir(name: string, files: Record<string, Buffer>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, b] of Object.entries(files)) writeFileSync(join(dir, f), b);
  return dir;
}

const idOf = (x: Float32Array, row: number) => Math.round(x[row * 3072 + 1]! * 255);

test('good files: data batches in order, test batch, CHW layout, scaled to [0, 1]', (t) => {
  const dir = makeDir('good', {
    'data_batch_1.bin': records(0, 5),
    'data_batch_2.bin': records(5, 3),
    'test_batch.bin': records(100, 4),
  });
  const ds = loadCifar10({ dir, rng: new Rng(1) });
  t.deepEqual(ds.inputShape, [3, 32, 32]);
  t.is(ds.classes, 10);
  t.is(ds.name, 'cifar10');
  t.is(ds.spec, `cifar10:dir=${dir}`);
  t.is(ds.train.n, 8);
  t.is(ds.train.x.length, 8 * 3072);
  t.deepEqual(Array.from(ds.train.y), [0, 1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(
    Array.from({ length: 8 }, (_, i) => idOf(ds.train.x, i)),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  t.is(ds.test.n, 4);
  t.deepEqual(Array.from(ds.test.y), [0, 1, 2, 3]);
  t.is(idOf(ds.test.x, 3), 103);
  // Row 6 (id 6): planes R, G, B start with 10, 20, 30; pixel p is (6 + p) % 256.
  const row = ds.train.x.subarray(6 * 3072, 7 * 3072);
  t.is(row[0], Math.fround(10 / 255));
  t.is(row[1024], Math.fround(20 / 255));
  t.is(row[2048], Math.fround(30 / 255));
  t.is(row[3071], Math.fround(((6 + 3071) % 256) / 255));
  t.is(row[1500], Math.fround(((6 + 1500) % 256) / 255));
  t.true(ds.train.x.every((v) => v >= 0 && v <= 1));
});

test('limit keeps the first training records (across files); testN caps the test batch', (t) => {
  const dir = makeDir('limit', {
    'data_batch_1.bin': records(0, 5),
    'data_batch_3.bin': records(5, 5),
    'test_batch.bin': records(100, 4),
  });
  const six = loadCifar10({ dir, rng: new Rng(1), limit: 6, nTest: 2 });
  t.is(six.train.n, 6);
  t.is(idOf(six.train.x, 5), 5);
  t.is(six.test.n, 2);
  t.is(six.spec, `cifar10:dir=${dir},limit=6,testN=2`);
  const three = loadCifar10({ dir, rng: new Rng(1), limit: 3 });
  t.deepEqual(Array.from(three.train.y), [0, 1, 2]);
  t.is(loadCifar10({ dir, rng: new Rng(1), limit: 1000 }).train.n, 10);
});

test('without test_batch a seeded test part is split off', (t) => {
  const dir = makeDir('notest', { 'data_batch_2.bin': records(0, 10), 'data_batch_4.bin': records(10, 10) });
  const a = loadCifar10({ dir, rng: new Rng(7) });
  t.is(a.test.n, 4); // 20 %
  t.is(a.train.n, 16);
  const ids = (s: typeof a.train) => Array.from({ length: s.n }, (_, i) => idOf(s.x, i));
  const all = [...ids(a.train), ...ids(a.test)].sort((p, q) => p - q);
  t.deepEqual(
    all,
    Array.from({ length: 20 }, (_, i) => i),
  );
  ids(a.train).forEach((id, i) => t.is(a.train.y[i], id % 10));
  const b = loadCifar10({ dir, rng: new Rng(7) });
  t.deepEqual(ids(b.test), ids(a.test));
  const others = [8, 9, 10, 11].map((seed) => ids(loadCifar10({ dir, rng: new Rng(seed) }).test).join());
  t.true(
    others.some((o) => o !== ids(a.test).join()),
    'the split depends on the seed',
  );
  const c = loadCifar10({ dir, rng: new Rng(7), nTest: 5, limit: 3 });
  t.is(c.test.n, 5);
  t.is(c.train.n, 3);
  t.throws(() => loadCifar10({ dir, rng: new Rng(7), nTest: 20 }), {
    instanceOf: FileFormatError,
    message: /cannot be split/,
  });
});

test('accepts the parent of cifar-10-batches-bin', (t) => {
  const parent = join(root, 'parent');
  makeDir(join('parent', 'cifar-10-batches-bin'), {
    'data_batch_1.bin': records(0, 2),
    'test_batch.bin': records(0, 1),
  });
  const ds = loadCifar10({ dir: parent, rng: new Rng(1) });
  t.is(ds.train.n, 2);
  t.is(ds.test.n, 1);
});

test('missing directory, no batch file, not a directory', (t) => {
  const missing = join(root, 'does-not-exist');
  const e1 = t.throws(() => loadCifar10({ dir: missing, rng: new Rng(1) }), { instanceOf: FileFormatError });
  t.is(e1?.message, `${missing}: CIFAR-10 directory not found`);
  const empty = makeDir('empty', { 'test_batch.bin': records(0, 1), 'readme.txt': Buffer.from('hi') });
  t.throws(() => loadCifar10({ dir: empty, rng: new Rng(1) }), {
    instanceOf: FileFormatError,
    message: new RegExp(
      `^${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no CIFAR-10 data batch found; expected at least one of data_batch_1.bin`,
    ),
  });
  const file = join(empty, 'readme.txt');
  t.throws(() => loadCifar10({ dir: file, rng: new Rng(1) }), {
    instanceOf: FileFormatError,
    message: /readme\.txt: not a directory/,
  });
});

test('truncated file names the file and the record size', (t) => {
  const dir = makeDir('truncated', { 'data_batch_1.bin': records(0, 3).subarray(0, 3 * CIFAR10_RECORD_BYTES - 100) });
  const e = t.throws(() => loadCifar10({ dir, rng: new Rng(1) }), { instanceOf: FileFormatError });
  t.is((e as FileFormatError).file, join(dir, 'data_batch_1.bin'));
  t.regex(e!.message, /size 9119 bytes is not a positive multiple of the 3073-byte CIFAR-10 record/);
  const dir2 = makeDir('truncated-test', { 'data_batch_1.bin': records(0, 3), 'test_batch.bin': Buffer.alloc(10) });
  t.throws(() => loadCifar10({ dir: dir2, rng: new Rng(1) }), {
    instanceOf: FileFormatError,
    message: /test_batch\.bin: size 10 bytes/,
  });
  const dir3 = makeDir('zero', { 'data_batch_1.bin': Buffer.alloc(0) });
  t.throws(() => loadCifar10({ dir: dir3, rng: new Rng(1) }), { instanceOf: FileFormatError, message: /size 0 bytes/ });
});

test('a label above 9 is rejected with file and record', (t) => {
  const dir = makeDir('badlabel', { 'data_batch_1.bin': records(0, 3, (id) => (id === 1 ? 12 : 0)) });
  const e = t.throws(() => loadCifar10({ dir, rng: new Rng(1) }), { instanceOf: FileFormatError });
  t.is(e?.message, `${join(dir, 'data_batch_1.bin')}: record 1 has label 12, expected 0–9 (is this CIFAR-100?)`);
  // With a test batch, records beyond the limit are not read.
  writeFileSync(join(dir, 'test_batch.bin'), records(0, 1));
  t.is(loadCifar10({ dir, rng: new Rng(1), limit: 1 }).train.n, 1);
  t.throws(() => loadCifar10({ dir, rng: new Rng(1), limit: 2 }), {
    instanceOf: FileFormatError,
    message: /record 1 has label 12/,
  });
  writeFileSync(
    join(dir, 'test_batch.bin'),
    records(0, 2, () => 10),
  );
  t.throws(() => loadCifar10({ dir, rng: new Rng(1), limit: 1 }), {
    instanceOf: FileFormatError,
    message: /test_batch\.bin: record 0 has label 10/,
  });
});

test('loadDataset("cifar10:dir=…") and option errors', async (t) => {
  const dir = makeDir('spec', { 'data_batch_1.bin': records(0, 4), 'test_batch.bin': records(0, 2) });
  const ds = await loadDataset(`cifar10:dir=${dir},limit=3`, 0);
  t.is(ds.train.n, 3);
  t.is(ds.spec, `cifar10:dir=${dir},limit=3`);
  t.throws(() => loadCifar10({ dir, rng: new Rng(1), limit: 0 }), {
    instanceOf: SpecError,
    message: /limit must be a positive integer/,
  });
});
