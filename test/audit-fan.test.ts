import test from 'ava';
import { ShapeError } from '../src/errors.js';
import { fanStats, summarize } from '../src/audit/fan.js';

test('summarize: mean, population std, min, max, median', (t) => {
  t.deepEqual(summarize([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(1.25), min: 1, max: 4, median: 2.5 });
  t.deepEqual(summarize([5, 1, 3]), { mean: 3, std: Math.sqrt(8 / 3), min: 1, max: 5, median: 3 });
  t.true(Number.isNaN(summarize([]).mean));
});

test('fan: per-point global error and per-class summaries on synthetic data', (t) => {
  // 4 points in 2-D, 3 times. Reference: zeros. Solver: class 0 errors grow as (k, 0)·i,
  // class 1 errors as (0, 2k). Errors: class 0 points i=0,2 → k·1, k·3; class 1 points i=1,3 → 2k.
  const n = 4;
  const d = 2;
  const K1 = 3;
  const labels = [0, 1, 0, 1];
  const solver: Float64Array[] = [];
  const reference: Float64Array[] = [];
  for (let k = 0; k < K1; k++) {
    const s = new Float64Array(n * d);
    const r = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      r[i * d] = i; // reference states are arbitrary; only the difference matters
      r[i * d + 1] = -i;
      if (labels[i] === 0) {
        s[i * d] = i + k * (i + 1);
        s[i * d + 1] = -i;
      } else {
        s[i * d] = i;
        s[i * d + 1] = -i + 2 * k;
      }
    }
    solver.push(s);
    reference.push(r);
  }
  const fan = fanStats(solver, reference, labels, { n, d, times: [0, 0.5, 1] });
  t.deepEqual(fan.times, [0, 0.5, 1]);
  t.deepEqual(
    fan.perClass.map((c) => c.label),
    [0, 1],
  );
  const [c0, c1] = fan.perClass;
  t.is(c0!.count, 2);
  t.deepEqual(c0!.mean, [0, 2, 4]); // (1k + 3k)/2
  t.deepEqual(c0!.std, [0, 1, 2]);
  t.deepEqual(c0!.min, [0, 1, 2]);
  t.deepEqual(c0!.max, [0, 3, 6]);
  t.deepEqual(c0!.median, [0, 2, 4]);
  t.deepEqual(c1!.mean, [0, 2, 4]);
  t.deepEqual(c1!.std, [0, 0, 0]);
  t.deepEqual(Array.from(fan.errors![2]!), [2, 4, 6, 4]);
  t.is(fan.final.max, 6);
  t.is(fan.final.mean, 4);
  t.is(fan.final.median, 4);
  t.deepEqual(fan.final.perClass[0]!.meanErrorVector, [4, 0]);
  t.deepEqual(fan.final.perClass[1]!.meanErrorVector, [0, 4]);
  t.deepEqual(fan.all.mean, [0, 2, 4]);
  // Flat input and default times give the same numbers.
  const flat = (a: Float64Array[]): Float64Array => {
    const out = new Float64Array(a.length * n * d);
    a.forEach((s, k) => out.set(s, k * n * d));
    return out;
  };
  const fan2 = fanStats(flat(solver), flat(reference), Int32Array.from(labels), { n, d, keepErrors: false });
  t.deepEqual(fan2.times, [0, 0.5, 1]);
  t.deepEqual(fan2.perClass, fan.perClass);
  t.is(fan2.errors, undefined);
});

test('fan: the classes separate by error on a linear decay solved with Euler', (t) => {
  // z' = -z, Euler with h = 0.25 vs exact; class by radius: the error is ∝ |z0|.
  const n = 200;
  const K = 4;
  const h = 1 / K;
  const z0 = Float64Array.from({ length: n }, (_, i) => (i < n / 2 ? 0.1 : 1) * (i % 2 ? 1 : -1));
  const labels = Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1));
  const euler = [z0];
  const exact = [z0];
  for (let k = 1; k <= K; k++) {
    euler.push(euler[k - 1]!.map((z) => z * (1 - h)));
    exact.push(z0.map((z) => z * Math.exp(-k * h)));
  }
  const fan = fanStats(euler, exact, labels, { n, d: 1 });
  const e = Math.exp(-1) - 0.75 ** 4;
  t.true(Math.abs(fan.perClass[1]!.mean[K]! - e) < 1e-12);
  t.true(Math.abs(fan.perClass[0]!.mean[K]! - 0.1 * e) < 1e-12);
  t.true(fan.perClass[1]!.mean.every((m, k) => k === 0 || m > fan.perClass[0]!.mean[k]!));
});

test('fan: shape errors', (t) => {
  const a = [new Float64Array(4), new Float64Array(4)];
  t.throws(() => fanStats(a, [new Float64Array(4)], [0, 1], { n: 2, d: 2 }), {
    instanceOf: ShapeError,
    message: /time grid/,
  });
  t.throws(() => fanStats(a, a, [0], { n: 2, d: 2 }), { instanceOf: ShapeError, message: /labels/ });
  t.throws(() => fanStats(a, a, [0, 1], { n: 2, d: 2, times: [0] }), { instanceOf: ShapeError });
});
