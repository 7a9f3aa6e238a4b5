import test from 'ava';
import { SpecError } from '../src/errors.js';
import { batchIterator, gather, Rng } from '../src/data/index.js';

const take = <T>(it: Iterator<T>, k: number): T[] => Array.from({ length: k }, () => it.next().value as T);

test('each epoch covers every row once (dropLast: false)', (t) => {
  const batches = [...batchIterator({ n: 10 }, 4, new Rng(1), { epochs: 2, dropLast: false })];
  t.deepEqual(
    batches.map((b) => b.length),
    [4, 4, 2, 4, 4, 2],
  );
  const epoch1 = batches.slice(0, 3).flatMap((b) => Array.from(b));
  const epoch2 = batches.slice(3).flatMap((b) => Array.from(b));
  t.deepEqual(
    [...epoch1].sort((a, b) => a - b),
    Array.from({ length: 10 }, (_, i) => i),
  );
  t.deepEqual(
    [...epoch2].sort((a, b) => a - b),
    Array.from({ length: 10 }, (_, i) => i),
  );
  t.notDeepEqual(epoch1, epoch2, 'reshuffled per epoch');
});

test('default: full batches only, endless, seeded', (t) => {
  const it = batchIterator({ n: 10 }, 4, new Rng('b'));
  const got = take(it, 9); // 2 per epoch → 4.5 epochs
  t.true(got.every((b) => b.length === 4));
  const again = take(batchIterator({ n: 10 }, 4, new Rng('b')), 9);
  t.deepEqual(
    got.map((b) => Array.from(b)),
    again.map((b) => Array.from(b)),
  );
  const other = take(batchIterator({ n: 10 }, 4, new Rng('c')), 9);
  t.notDeepEqual(
    got.map((b) => Array.from(b)),
    other.map((b) => Array.from(b)),
  );
  // Within one epoch the two batches are disjoint.
  const [a, b] = got;
  t.is(new Set([...a!, ...b!]).size, 8);
  t.deepEqual([...batchIterator({ n: 5 }, 5, new Rng(1), { epochs: 3 })].length, 3);
  t.deepEqual([...batchIterator({ n: 5 }, 2, new Rng(1), { epochs: 0 })], []);
});

test('batch size is validated when the iterator is created', (t) => {
  t.throws(() => batchIterator({ n: 100 }, 128, new Rng(1)), {
    instanceOf: SpecError,
    message: 'batch size 128 exceeds the 100 examples in the training set; use a batch size ≤ 100',
  });
  t.throws(() => batchIterator({ n: 100 }, 0, new Rng(1)), {
    instanceOf: SpecError,
    message: /positive integer, got 0/,
  });
  t.throws(() => batchIterator({ n: 100 }, 2.5, new Rng(1)), { instanceOf: SpecError });
  t.throws(() => batchIterator({ n: 100 }, 10, new Rng(1), { epochs: -1 }), { instanceOf: SpecError });
});

test('gather copies rows and labels', (t) => {
  const split = { x: Float32Array.from([0, 1, 10, 11, 20, 21]), y: Int32Array.from([5, 6, 7]), n: 3 };
  const g = gather(split, Int32Array.from([2, 0, 2]));
  t.deepEqual(Array.from(g.x), [20, 21, 0, 1, 20, 21]);
  t.deepEqual(Array.from(g.y), [7, 5, 7]);
  t.is(g.n, 3);
  t.throws(() => gather(split, [3]), { instanceOf: RangeError });
});
