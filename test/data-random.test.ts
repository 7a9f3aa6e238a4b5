import test from 'ava';
import { Rng, createRng } from '../src/data/index.js';

test('xoshiro128** core matches the reference outputs for state [1, 2, 3, 4]', (t) => {
  const r = Rng.fromState([1, 2, 3, 4]);
  t.deepEqual(
    Array.from({ length: 6 }, () => r.nextUint32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
  t.throws(() => Rng.fromState([0, 0, 0, 0]), { instanceOf: RangeError });
});

test('seeded streams are pinned (a change of PRNG or seeding is caught)', (t) => {
  const r = new Rng(42);
  t.deepEqual(
    Array.from({ length: 4 }, () => r.nextUint32()),
    [3192602540, 2418129431, 183956585, 2917129461],
  );
  const s = new Rng('odeness');
  t.is(s.uniform(), 0.3645596825257956);
  t.is(s.uniform(), 0.5782314887399864);
  t.true(Math.abs(s.normal() - -1.1212469837484398) < 1e-14);
  t.true(Math.abs(s.normal() - 0.9798793486714189) < 1e-14);
  t.is(s.int(1000), 880);
  t.deepEqual(Array.from(new Rng(7).permutation(10)), [9, 8, 6, 4, 1, 0, 5, 3, 2, 7]);
  t.is(new Rng(42).fork('init').nextUint32(), 1273856746);
  t.is(new Rng(42).fork('init').fork('x').nextUint32(), 310983729);
});

test('same seed → same stream; different seed → different stream', (t) => {
  const draw = (seed: number | string) => {
    const r = createRng(seed);
    return Array.from({ length: 20 }, () => r.uniform());
  };
  t.deepEqual(draw(3), draw(3));
  t.notDeepEqual(draw(3), draw(4));
  t.notDeepEqual(draw('a'), draw('b'));
  t.deepEqual(draw(5), draw('5'), 'a number seed and its decimal string name the same stream');
  t.deepEqual(draw(0), draw(-0));
  t.throws(() => new Rng(Number.NaN), { instanceOf: RangeError });
  t.throws(() => new Rng(Infinity), { instanceOf: RangeError });
});

test('fork is a pure function of (seed, label path) and does not advance the parent', (t) => {
  const a = new Rng(1);
  const b = new Rng(1);
  const fa = a.fork('data');
  for (let i = 0; i < 10; i++) b.nextUint32(); // b has advanced; its fork must not care
  const fb = b.fork('data');
  t.is(fa.nextUint32(), fb.nextUint32());
  // Parent unaffected by forking.
  const c = new Rng(1);
  c.fork('x');
  t.is(c.nextUint32(), new Rng(1).nextUint32());
  // Labels give distinct streams, also distinct from the parent.
  const first = (r: Rng) => [r.nextUint32(), r.nextUint32()];
  t.notDeepEqual(first(new Rng(1).fork('data')), first(new Rng(1).fork('init')));
  t.notDeepEqual(first(new Rng(1).fork('data')), first(new Rng(1)));
  t.notDeepEqual(first(new Rng(1).fork('a').fork('b')), first(new Rng(1).fork('a/b')), 'labels are escaped');
  t.is(new Rng(1).fork('a').fork(2).key, '1/a/2');
});

test('uniform, normal and int have the right ranges and moments', (t) => {
  const r = new Rng('moments');
  const n = 40000;
  let su = 0;
  let sn = 0;
  let sn2 = 0;
  let lo = 1;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    lo = Math.min(lo, u);
    hi = Math.max(hi, u);
    su += u;
    const z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  t.true(lo >= 0 && hi < 1);
  t.true(Math.abs(su / n - 0.5) < 0.01);
  t.true(Math.abs(sn / n) < 0.03);
  t.true(Math.abs(sn2 / n - 1) < 0.04);
  const u = r.uniform(-2, 3);
  t.true(u >= -2 && u < 3);
  const z = Array.from({ length: 2000 }, () => r.normal(10, 0.5));
  t.true(Math.abs(z.reduce((a, b) => a + b, 0) / z.length - 10) < 0.05);

  const counts = new Array(7).fill(0);
  for (let i = 0; i < 7000; i++) {
    const k = r.int(7);
    t.true(Number.isInteger(k) && k >= 0 && k < 7);
    counts[k]++;
  }
  for (const c of counts) t.true(Math.abs(c - 1000) < 150, `int(7) counts ${counts}`);
  t.is(r.int(1), 0);
  t.true(r.int(2 ** 32) < 2 ** 32);
  for (const bad of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN]) t.throws(() => r.int(bad), { instanceOf: RangeError });
});

test('fillNormal fills a Float32Array with the same values as normal()', (t) => {
  const out = new Rng(9).fillNormal(new Float32Array(5), 0, 2);
  const r = new Rng(9);
  t.deepEqual(Array.from(out), Array.from(Float32Array.from({ length: 5 }, () => r.normal(0, 2))));
});

test('shuffle permutes in place (arrays and typed arrays) and is seeded', (t) => {
  const arr = Array.from({ length: 50 }, (_, i) => i);
  const out = new Rng(3).shuffle(arr);
  t.is(out, arr);
  t.deepEqual(
    [...arr].sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i),
  );
  t.notDeepEqual(
    arr,
    Array.from({ length: 50 }, (_, i) => i),
  );
  const typed = new Rng(3).shuffle(Int32Array.from({ length: 50 }, (_, i) => i));
  t.deepEqual(Array.from(typed), arr);
  t.deepEqual(new Rng(3).shuffle(['x']), ['x']);
  t.deepEqual(new Rng(3).shuffle([]), []);
});
