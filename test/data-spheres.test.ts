import test from 'ava';
import { createHash } from 'node:crypto';
import { SpecError } from '../src/errors.js';
import { makeSpheres, Rng, sampleSpheres, shellCounts, SPHERE_PRESETS, type Split } from '../src/data/index.js';

const sha = (a: Float32Array | Int32Array) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex')
    .slice(0, 16);

function radii(split: Split, d: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < split.n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += split.x[i * d + j]! ** 2;
    out.push(Math.sqrt(s));
  }
  return out;
}

const EPS = 1e-6; // float32 storage

/** Index of the shell whose [rMin, rMax] holds r (and whose label matches), or -1. */
function shellOf(r: number, label: number, shells: readonly { rMin: number; rMax: number; label: number }[]): number {
  return shells.findIndex((s) => s.label === label && r >= s.rMin - EPS && r <= s.rMax + EPS);
}

for (const d of [1, 2, 3, 10, 900]) {
  test(`ott2021 in d=${d}: every radius lies in a shell of its class; shares N/4, N/2, N/4`, (t) => {
    const ds = makeSpheres({ dim: d, shells: 'ott2021', rng: new Rng(11) });
    t.deepEqual(ds.inputShape, [d]);
    t.is(ds.classes, 2);
    t.is(ds.spec, `spheres:ott2021:dim=${d}`);
    t.is(ds.name, `spheres-ott2021-d${d}`);
    for (const [split, n] of [
      [ds.train, 2000],
      [ds.test, 1000],
    ] as const) {
      t.is(split.n, n);
      t.is(split.x.length, n * d);
      t.is(split.y.length, n);
      const counts = [0, 0, 0];
      radii(split, d).forEach((r, i) => {
        const k = shellOf(r, split.y[i]!, SPHERE_PRESETS.ott2021);
        if (k < 0) t.fail(`row ${i}: radius ${r} label ${split.y[i]} outside its shells`);
        else counts[k]!++;
      });
      t.deepEqual(counts, [n / 4, n / 2, n / 4]);
    }
  });
}

test('dupont2019: ball r ≤ 0.5 is class 0, annulus [1, 1.5] is class 1, equal shares', (t) => {
  const ds = makeSpheres({ dim: 2, shells: 'dupont2019', rng: new Rng(5) });
  t.is(ds.train.n, 2000);
  t.is(ds.test.n, 1000);
  const r = radii(ds.train, 2);
  let ones = 0;
  let inner = 0;
  r.forEach((ri, i) => {
    const y = ds.train.y[i]!;
    if (y === 1) {
      ones++;
      t.true(ri >= 1 - EPS && ri <= 1.5 + EPS);
    } else {
      t.is(y, 0);
      t.true(ri <= 0.5 + EPS);
      if (ri < 0.25) inner++;
    }
  });
  t.is(ones, 1000);
  // radius = 0.5·u^(1/2) → P(r < 0.25) = 0.25 (plain u would give 0.5).
  t.true(Math.abs(inner / 1000 - 0.25) < 0.06, `fraction inside r<0.25: ${inner / 1000}`);
});

test('radius law u^(1/d) and isotropic directions (d = 3)', (t) => {
  const shells = [{ rMin: 1, rMax: 2, label: 0, share: 1 }];
  const s = sampleSpheres(3, shells, 4000, new Rng('law'));
  const r = radii(s, 3);
  // P(r ≤ 1.5) = P(u^(1/3) ≤ 0.5) = 1/8.
  const below = r.filter((v) => v <= 1.5).length / r.length;
  t.true(Math.abs(below - 0.125) < 0.03, `P(r ≤ 1.5) = ${below}`);
  for (let j = 0; j < 3; j++) {
    let m = 0;
    for (let i = 0; i < s.n; i++) m += s.x[i * 3 + j]! / r[i]!;
    t.true(Math.abs(m / s.n) < 0.06, `mean direction component ${j}: ${m / s.n}`);
  }
});

test('d = 1: points are ±r', (t) => {
  const ds = makeSpheres({ dim: 1, shells: 'ott2021', nTrain: 400, nTest: 100, rng: new Rng(2) });
  const xs = Array.from(ds.train.x);
  t.true(xs.some((v) => v < 0) && xs.some((v) => v > 0));
});

test('same seed → byte-identical arrays; other seed → different; train and test differ', (t) => {
  const a = makeSpheres({ dim: 10, shells: 'ott2021', rng: new Rng(123) });
  const b = makeSpheres({ dim: 10, shells: 'ott2021', rng: new Rng(123) });
  const c = makeSpheres({ dim: 10, shells: 'ott2021', rng: new Rng(124) });
  const bytes = (v: Float32Array | Int32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  t.true(bytes(a.train.x).equals(bytes(b.train.x)));
  t.true(bytes(a.train.y).equals(bytes(b.train.y)));
  t.true(bytes(a.test.x).equals(bytes(b.test.x)));
  t.true(bytes(a.test.y).equals(bytes(b.test.y)));
  t.false(bytes(a.train.x).equals(bytes(c.train.x)));
  t.false(bytes(a.test.x).equals(bytes(c.test.x)));
  t.notDeepEqual(Array.from(a.train.x.subarray(0, 100)), Array.from(a.test.x.subarray(0, 100)));
});

test('pinned small draw (a change of PRNG or sampling is caught)', (t) => {
  const ds = makeSpheres({ dim: 3, shells: 'ott2021', nTrain: 8, nTest: 4, rng: new Rng(1) });
  t.deepEqual(Array.from(ds.train.y), [1, 1, 0, 0, 1, 0, 1, 0]);
  t.deepEqual(Array.from(ds.train.x.subarray(0, 3)), [-0.12806180119514465, 0.019877927377820015, 0.2672578990459442]);
  t.is(sha(ds.train.x), '2a9a9b5afc011dc9');
  t.is(sha(ds.test.x), '29d1c055448e5b80');
  const big = makeSpheres({ dim: 2, shells: 'ott2021', rng: new Rng(0) });
  t.is(sha(big.train.x), 'abdb60fb6e6f179c');
  t.is(sha(big.train.y), '016461055a021a3a');
  t.is(sha(big.test.x), 'c1c8da7e0ca476e5');
});

test('order is shuffled, not grouped by shell', (t) => {
  const { y } = makeSpheres({ dim: 2, shells: 'ott2021', rng: new Rng(8) }).train;
  let changes = 0;
  for (let i = 1; i < y.length; i++) if (y[i] !== y[i - 1]) changes++;
  // Grouped data would change label twice; random order about n/2 times.
  t.true(changes > 800, `label changes: ${changes}`);
});

test('shellCounts: largest-remainder rounding sums to n', (t) => {
  const sh = (...shares: number[]) => shares.map((share) => ({ rMin: 0, rMax: 1, label: 0, share }));
  t.deepEqual(shellCounts(sh(0.25, 0.5, 0.25), 2000), [500, 1000, 500]);
  t.deepEqual(shellCounts(sh(0.25, 0.5, 0.25), 10), [3, 5, 2]);
  t.deepEqual(shellCounts(sh(1, 1, 1), 10), [4, 3, 3]);
  t.deepEqual(shellCounts(sh(2, 1), 7), [5, 2]);
  t.deepEqual(shellCounts(sh(1, 1), 0), [0, 0]);
});

test('custom shells, sizes and classes', (t) => {
  const shells = [
    { rMin: 0, rMax: 1, label: 2, share: 1 },
    { rMin: 2, rMax: 3, label: 0, share: 3 },
  ];
  const ds = makeSpheres({ dim: 4, shells, nTrain: 100, nTest: 20, rng: new Rng('c') });
  t.is(ds.classes, 3);
  t.is(ds.train.n, 100);
  t.is(ds.test.n, 20);
  t.is(Array.from(ds.train.y).filter((v) => v === 2).length, 25);
  radii(ds.train, 4).forEach((r, i) => t.true(shellOf(r, ds.train.y[i]!, shells) >= 0));
});

test('invalid options are SpecErrors', (t) => {
  t.throws(() => makeSpheres({ dim: 0, shells: 'ott2021', rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /dim must be a positive integer, got 0/,
  });
  t.throws(() => makeSpheres({ dim: 2.5, shells: 'ott2021', rng: new Rng(1) }), { instanceOf: SpecError });
  t.throws(() => makeSpheres({ dim: 2, shells: 'ott2021', nTrain: 0, rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /training-set size/,
  });
  t.throws(() => makeSpheres({ dim: 2, shells: 'nope' as 'ott2021', rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /unknown preset "nope"; expected one of ott2021, dupont2019/,
  });
  t.throws(() => makeSpheres({ dim: 2, shells: [], rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /at least one shell/,
  });
  t.throws(() => makeSpheres({ dim: 2, shells: [{ rMin: 2, rMax: 1, label: 0, share: 1 }], rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /shell 0/,
  });
  t.throws(() => makeSpheres({ dim: 2, shells: [{ rMin: 0, rMax: 1, label: -1, share: 1 }], rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /label/,
  });
  t.throws(() => makeSpheres({ dim: 2, shells: [{ rMin: 0, rMax: 1, label: 0, share: 0 }], rng: new Rng(1) }), {
    instanceOf: SpecError,
    message: /share/,
  });
});
