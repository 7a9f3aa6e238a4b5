import test from 'ava';
import { ShapeError } from '../src/errors.js';
import { countCrossings } from '../src/audit/crossing.js';
import { trajectorySteps } from '../src/audit/states.js';
import { orient2d } from '../src/geometry/orient.js';
import { classifyPair1d, classifyPair2d } from '../src/geometry/segments.js';
import { pca2 } from '../src/linalg/pca.js';

/** Build a [K+1][N*d] trajectory from per-point lists of states. */
function build(points: number[][][]): Float64Array[] {
  const n = points.length;
  const d = points[0]![0]!.length;
  const K1 = points[0]!.length;
  return Array.from({ length: K1 }, (_, k) => {
    const s = new Float64Array(n * d);
    points.forEach((traj, i) => traj[k]!.forEach((v, c) => (s[i * d + c] = v)));
    return s;
  });
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

test('two points swapping places across one Euler step cross once (X shape, proper)', (t) => {
  const traj = build([
    [
      [0, 0],
      [1, 1],
    ],
    [
      [1, 0],
      [0, 1],
    ],
  ]);
  for (const method of ['grid', 'brute'] as const) {
    const r = countCrossings(traj, { n: 2, d: 2, method });
    t.is(r.crossings, 1);
    t.is(r.firstStep, 0);
    t.deepEqual(r.firstStepHistogram, [1]);
    t.is(r.examples.length, 1);
    t.is(r.examples[0]!.kind, 'proper');
    t.deepEqual(r.examples[0]!.point, [0.5, 0.5]);
    t.false(r.projected);
    t.is(r.explainedVariance, 1);
    t.is(r.pairsChecked, 1);
  }
});

test('head-on swap along one line is a collinear crossing; translation along the line is not', (t) => {
  const swap = countCrossings(
    build([
      [
        [0, 0],
        [1, 0],
      ],
      [
        [1, 0],
        [0, 0],
      ],
    ]),
    { n: 2, d: 2 },
  );
  t.is(swap.crossings, 1);
  t.is(swap.examples[0]!.kind, 'collinear');
  t.deepEqual(swap.examples[0]!.point, [0.5, 0]);
  // Overlapping collinear chords, order kept: a translation, not a crossing.
  const slide = countCrossings(
    build([
      [
        [0, 0],
        [2, 0],
      ],
      [
        [1, 0],
        [3, 0],
      ],
    ]),
    { n: 2, d: 2 },
  );
  t.is(slide.crossings, 0);
  // Same on a vertical and on a diagonal line.
  t.is(
    countCrossings(
      build([
        [
          [0, 0],
          [0, 2],
        ],
        [
          [0, 1],
          [0, 3],
        ],
      ]),
      { n: 2, d: 2 },
    ).crossings,
    0,
  );
  t.is(
    countCrossings(
      build([
        [
          [0, 0],
          [0, 1],
        ],
        [
          [0, 1],
          [0, 0],
        ],
      ]),
      { n: 2, d: 2 },
    ).crossings,
    1,
  );
  t.is(
    countCrossings(
      build([
        [
          [0, 0],
          [2, 2],
        ],
        [
          [1, 1],
          [3, 3],
        ],
      ]),
      { n: 2, d: 2 },
    ).crossings,
    0,
  );
});

test('parallel chords do not cross', (t) => {
  const r = countCrossings(
    build([
      [
        [0, 0],
        [1, 0],
        [2, 0],
      ],
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
      [
        [0, 2],
        [1, 2.5],
        [2, 3],
      ],
    ]),
    { n: 3, d: 2 },
  );
  t.is(r.crossings, 0);
  t.is(r.firstStep, null);
  t.deepEqual(r.firstStepHistogram, [0, 0]);
  t.is(r.pairStepsChecked, 6);
});

test('touching cases: end point on a chord, merge, duplicates', (t) => {
  // q ends exactly on p's chord (T shape).
  const tee = build([
    [
      [0, 0],
      [2, 0],
    ],
    [
      [1, 1],
      [1, 0],
    ],
  ]);
  const r = countCrossings(tee, { n: 2, d: 2 });
  t.is(r.crossings, 1);
  t.is(r.touchingPairs, 1);
  t.is(r.examples[0]!.kind, 'touch');
  t.deepEqual(r.examples[0]!.point, [1, 0]);
  const strict = countCrossings(tee, { n: 2, d: 2, countTouching: false });
  t.is(strict.crossings, 0);
  t.is(strict.touchingPairs, 0);
  // Two distinct states mapped to one: a merge (the step is not injective).
  const merge = countCrossings(
    build([
      [
        [0, 0],
        [1, 1],
      ],
      [
        [2, 0],
        [1, 1],
      ],
    ]),
    { n: 2, d: 2 },
  );
  t.is(merge.crossings, 1);
  t.is(merge.examples[0]!.kind, 'touch');
  // Identical trajectories (duplicate inputs) never cross.
  t.is(
    countCrossings(
      build([
        [
          [0, 0],
          [1, 1],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ]),
      { n: 2, d: 2 },
    ).crossings,
    0,
  );
  // Chords that would meet only if extended: no crossing.
  t.is(
    countCrossings(
      build([
        [
          [0, 0],
          [1, 0],
        ],
        [
          [2, -1],
          [2, 1],
        ],
      ]),
      { n: 2, d: 2 },
    ).crossings,
    0,
  );
  // A chord passing through a stationary point on its line: the order along the line swaps.
  t.is(classifyPair2d([0, 0], [2, 0], [1, 0], [1, 0]), 'collinear');
  t.is(classifyPair2d([0, 0], [2, 0], [1, 5], [1, 5]), null);
  t.is(classifyPair2d([0, 0], [0, 0], [0, 0], [0, 0]), null);
});

test('multi-step trajectories: first-step histogram and repeated crossings', (t) => {
  // Pair (0,1) crosses at step 0 and again at step 1; pair (1,2) first at step 2.
  const traj = build([
    [
      [0, 0],
      [1, 1],
      [0, 2],
      [0, 3],
    ],
    [
      [1, 0],
      [0, 1],
      [1, 2],
      [1, 3],
    ],
    [
      [5, 0],
      [5, 1],
      [5, 2],
      [0.5, 2.5],
    ],
  ]);
  const r = countCrossings(traj, { n: 3, d: 2, listPairs: true });
  t.is(r.steps, 3);
  t.is(r.crossingEvents, 3);
  t.is(r.crossings, 2);
  t.deepEqual(r.firstStepHistogram, [1, 0, 1]);
  t.deepEqual(r.pairs, [
    { i: 0, j: 1, firstStep: 0 },
    { i: 1, j: 2, firstStep: 2 },
  ]);
  const flat = new Float64Array(traj.length * 6);
  traj.forEach((s, k) => flat.set(s, k * 6));
  t.deepEqual(countCrossings(flat, { n: 3, d: 2 }).firstStepHistogram, [1, 0, 1]);
  t.is(countCrossings(traj, { n: 3, d: 2, maxExamples: 1 }).examples.length, 1);
});

test('1-D: order swaps, ties handled explicitly', (t) => {
  // Full reversal: every pair swaps.
  const rev = countCrossings([Float64Array.of(0, 1, 2), Float64Array.of(2, 1, 0)], { n: 3, d: 1 });
  t.is(rev.crossings, 3);
  t.true(rev.examples.every((e) => e.kind === 'order' || e.kind === 'touch'));
  // Monotone map (order kept): none.
  t.is(countCrossings([Float64Array.of(0, 1, 2), Float64Array.of(0, 5, 6)], { n: 3, d: 1 }).crossings, 0);
  // Merge at the end of the step: a touch.
  const merge = countCrossings([Float64Array.of(0, 1), Float64Array.of(1, 1)], { n: 2, d: 1 });
  t.is(merge.crossings, 1);
  t.is(merge.examples[0]!.kind, 'touch');
  t.is(
    countCrossings([Float64Array.of(0, 1), Float64Array.of(1, 1)], { n: 2, d: 1, countTouching: false }).crossings,
    0,
  );
  // Duplicates: never a crossing.
  t.is(countCrossings([Float64Array.of(0.5, 0.5), Float64Array.of(0.25, 0.25)], { n: 2, d: 1 }).crossings, 0);
  t.is(classifyPair1d(0, 2, 1, 1), 'order');
  t.is(classifyPair1d(0, 1, 1, 2), null);
  t.is(classifyPair1d(0, 0, 1, 0), 'touch');
  t.is(classifyPair1d(1, 0, 1, 2), 'touch');
  // Swap point is where the straight-line interpolants meet in time.
  const one = countCrossings([Float64Array.of(0, 1), Float64Array.of(3, 0)], { n: 2, d: 1 });
  t.deepEqual(one.examples[0]!.point, [0.75]);
  // Euler step of z' = -k z with h k = 3 reverses the order of every pair around 0.
  const xs = Float64Array.from({ length: 50 }, (_, i) => -1 + i / 25);
  const ys = xs.map((x) => (1 - 3) * x);
  const euler = countCrossings([xs, ys], { n: 50, d: 1 });
  t.is(euler.crossings, (50 * 49) / 2);
});

test('1-D sweep agrees with brute force on random trajectories', (t) => {
  const rand = lcg(7);
  const n = 800;
  const K = 4;
  const steps = [Float64Array.from({ length: n }, () => rand())];
  for (let k = 0; k < K; k++) steps.push(steps[k]!.map((x) => x + (rand() - 0.5) * 0.02));
  const fast = countCrossings(steps, { n, d: 1 });
  const slow = countCrossings(steps, { n, d: 1, method: 'brute' });
  t.true(fast.crossings > 0);
  t.is(fast.crossings, slow.crossings);
  t.is(fast.crossingEvents, slow.crossingEvents);
  t.deepEqual(fast.firstStepHistogram, slow.firstStepHistogram);
  t.true(fast.candidatePairs < slow.candidatePairs / 10);
});

test('2-D grid agrees with brute force on 2 000 random trajectories and tests far fewer candidates', (t) => {
  // Speed (wall clock) is measured by scripts/bench-crossing.ts, not asserted here.
  const rand = lcg(12345);
  const n = 2000;
  const K = 3;
  const steps = [Float64Array.from({ length: 2 * n }, () => rand())];
  for (let k = 0; k < K; k++) steps.push(steps[k]!.map((x) => x + (rand() - 0.5) * 0.03));
  const fast = countCrossings(steps, { n, d: 2, listPairs: true });
  const slow = countCrossings(steps, { n, d: 2, method: 'brute', listPairs: true });
  t.true(fast.crossings > 10);
  t.is(fast.crossings, slow.crossings);
  t.is(fast.crossingEvents, slow.crossingEvents);
  t.deepEqual(fast.pairs, slow.pairs);
  t.deepEqual(fast.firstStepHistogram, slow.firstStepHistogram);
  t.is(fast.pairsChecked, (n * (n - 1)) / 2);
  t.is(slow.candidatePairs, (K * n * (n - 1)) / 2);
  t.true(fast.candidatePairs < slow.candidatePairs / 100);
});

test('grazing chords that intersect are counted: no angle cut-off drops a proper intersection', (t) => {
  // The chords cross at x = 11/3 (the lines y = x/100 and y = (11 − x)/200); they meet at 0.86°.
  t.is(classifyPair2d([0, 0], [10, 0.1], [1, 0.05], [11, 0]), 'proper');
  const r = countCrossings(
    build([
      [
        [0, 0],
        [10, 0.1],
      ],
      [
        [1, 0.05],
        [11, 0],
      ],
    ]),
    { n: 2, d: 2 },
  );
  t.is(r.crossings, 1);
  t.is(r.examples[0]!.point[0]!.toFixed(6), (11 / 3).toFixed(6));
  // Nearly parallel, travelling the same way, order kept, and crossing: still a crossing.
  t.is(classifyPair2d([0, 0], [1, 1e-9], [0.5, 1e-9], [1.5, 0]), 'proper');
  // The same chords shifted apart so that they no longer meet: none.
  t.is(classifyPair2d([0, 0], [10, 0.1], [1, 0.2], [11, 0.15]), null);
});

test('grid handles long chords spanning the domain (large list) like brute force', (t) => {
  const rand = lcg(99);
  const n = 600;
  const a = Float64Array.from({ length: 2 * n }, () => rand());
  // Most points move a little, every 10th jumps across the whole square.
  const b = a.map((x, q) => (Math.floor(q / 2) % 10 === 0 ? 1 - x : x + (rand() - 0.5) * 0.01));
  const fast = countCrossings([a, b], { n, d: 2, listPairs: true });
  const slow = countCrossings([a, b], { n, d: 2, method: 'brute', listPairs: true });
  t.true(fast.crossings > 0);
  t.deepEqual(fast.pairs, slow.pairs);
});

test('d > 2: PCA projection of data lying in a known plane', (t) => {
  const rand = lcg(3);
  const n = 300;
  const d = 5;
  // Orthonormal plane basis in R^5 plus an offset.
  const u = [1, 2, 0, -1, 1].map((v) => v / Math.sqrt(7));
  const w0 = [0, 1, 3, 2, 0];
  const dot = w0.reduce((s, v, c) => s + v * u[c]!, 0);
  const w1 = w0.map((v, c) => v - dot * u[c]!);
  const wn = Math.hypot(...w1);
  const w = w1.map((v) => v / wn);
  const off = [0.3, -0.2, 1, 0.5, 2];
  const plane2: Float64Array[] = [Float64Array.from({ length: 2 * n }, () => rand() * 2 - 1)];
  plane2.push(plane2[0]!.map((x) => x + (rand() - 0.5) * 0.2));
  plane2.push(plane2[1]!.map((x) => x + (rand() - 0.5) * 0.2));
  const lifted = plane2.map((s) => {
    const z = new Float64Array(n * d);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < d; c++) z[i * d + c] = off[c]! + s[2 * i]! * u[c]! + s[2 * i + 1]! * w[c]!;
    return z;
  });
  const inPlane = countCrossings(plane2, { n, d: 2, listPairs: true });
  const projected = countCrossings(lifted, { n, d, listPairs: true });
  t.true(projected.projected);
  t.true(projected.explainedVariance > 1 - 1e-9);
  t.true(inPlane.crossings > 0);
  t.deepEqual(projected.pairs, inPlane.pairs);
  // The components span the plane: each is a combination of u and w.
  for (const comp of projected.pca!.components) {
    const a = comp.reduce((s, v, c) => s + v * u[c]!, 0);
    const b = comp.reduce((s, v, c) => s + v * w[c]!, 0);
    t.true(Math.abs(a * a + b * b - 1) < 1e-8);
  }
});

test('pca2 recovers axis variances of an anisotropic cloud', (t) => {
  const rand = lcg(5);
  const n = 4000;
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const z = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    z[3 * i] = 1 * gauss();
    z[3 * i + 1] = 3 * gauss();
    z[3 * i + 2] = 2 * gauss();
  }
  const p = pca2([z], n, 3);
  t.true(Math.abs(Math.abs(p.components[0][1]!) - 1) < 0.02);
  t.true(Math.abs(Math.abs(p.components[1][2]!) - 1) < 0.02);
  t.true(Math.abs(p.explainedVariance - 13 / 14) < 0.02);
  t.true(p.eigenvalues[0] >= p.eigenvalues[1]);
  // High-dimensional path (data-based operator): variance concentrated in two directions.
  const D = 200;
  const m = 500;
  const big = new Float64Array(m * D);
  for (let i = 0; i < m; i++) {
    const a = 5 * gauss();
    const b = 2 * gauss();
    for (let c = 0; c < D; c++) big[i * D + c] = 0.01 * gauss() + (c === 7 ? a : 0) + (c === 150 ? b : 0);
  }
  const q = pca2([big], m, D);
  t.true(Math.abs(Math.abs(q.components[0][7]!) - 1) < 1e-3);
  t.true(Math.abs(Math.abs(q.components[1][150]!) - 1) < 1e-3);
  t.true(q.explainedVariance > 0.99);
});

test('3-D crossings are reported as projected with the explained variance', (t) => {
  const traj = build([
    [
      [0, 0, 0.01],
      [1, 1, 0.0],
    ],
    [
      [1, 0, -0.01],
      [0, 1, 0.0],
    ],
    [
      [0, 3, 0],
      [1, 3, 0],
    ],
  ]);
  const r = countCrossings(traj, { n: 3, d: 3 });
  t.true(r.projected);
  t.true(r.explainedVariance > 0.99 && r.explainedVariance <= 1);
  t.is(r.crossings, 1);
  t.is(r.examples[0]!.point.length, 2);
});

test('different-step intersections are off by default and counted as a weaker signal', (t) => {
  const traj = build([
    [
      [0, 0],
      [1, 0],
      [2, 0],
    ],
    [
      [5, 5],
      [0.5, 1],
      [0.5, -1],
    ],
  ]);
  const off = countCrossings(traj, { n: 2, d: 2 });
  t.is(off.crossings, 0);
  t.is(off.differentStepIntersections, undefined);
  for (const method of ['grid', 'brute'] as const) {
    const on = countCrossings(traj, { n: 2, d: 2, differentSteps: true, method });
    t.is(on.crossings, 0);
    t.is(on.differentStepIntersections!.pairs, 1);
    t.is(on.differentStepIntersections!.segmentPairs, 1);
    t.deepEqual(on.differentStepIntersections!.examples[0], { i: 0, stepI: 0, j: 1, stepJ: 1, point: [0.5, 0] });
  }
  // A point following another along one orbit (translation) is not a different-step crossing.
  const orbit = build([
    [
      [0, 0],
      [1, 0],
      [2, 0],
    ],
    [
      [1, 0],
      [2, 0],
      [3, 0],
    ],
  ]);
  t.is(countCrossings(orbit, { n: 2, d: 2, differentSteps: true }).differentStepIntersections!.pairs, 0);
});

test('orient2d is exact on near-collinear and tiny inputs', (t) => {
  // Points perturbed off the line y = x by ulps: exact sign is sign(j - i).
  const ulp = 2 ** -53;
  let naiveWrong = 0;
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      const ax = 0.5 + i * ulp;
      const ay = 0.5 + j * ulp;
      t.is(orient2d(ax, ay, 12, 12, 24, 24), Math.sign(j - i));
      const naive = Math.sign((ax - 24) * (12 - 24) - (ay - 24) * (12 - 24));
      if (naive !== Math.sign(j - i)) naiveWrong++;
    }
  }
  // The naive formula gets some of these wrong: the cases are hard enough to need exactness.
  t.true(naiveWrong > 0, `naive float orientation wrong in ${naiveWrong}/256 cases`);
  // Integer coordinates scaled by 2^-1060 (subnormal products): the sign of the integer determinant.
  const s = 2 ** -1060;
  const rand = lcg(11);
  for (let q = 0; q < 200; q++) {
    const v = Array.from({ length: 6 }, () => Math.floor(rand() * 2001) - 1000);
    const det = BigInt(v[0]! - v[4]!) * BigInt(v[3]! - v[5]!) - BigInt(v[1]! - v[5]!) * BigInt(v[2]! - v[4]!);
    const expect = det > 0n ? 1 : det < 0n ? -1 : 0;
    t.is(orient2d(v[0]! * s, v[1]! * s, v[2]! * s, v[3]! * s, v[4]! * s, v[5]! * s), expect);
  }
  // Huge coordinates whose products overflow.
  t.is(orient2d(1e200, 0, 0, 1e200, -1e200, 0), 1);
  t.is(orient2d(0, 0, 1e300, 1e300, 2e300, 2e300), 0);
});

test('malformed input gives ShapeError', (t) => {
  t.throws(() => countCrossings(new Float64Array(5), { n: 2, d: 2 }), { instanceOf: ShapeError });
  t.throws(() => countCrossings([new Float64Array(4), new Float64Array(3)], { n: 2, d: 2 }), {
    instanceOf: ShapeError,
  });
  t.throws(() => countCrossings([Float64Array.of(0, NaN), Float64Array.of(0, 1)], { n: 2, d: 1 }), {
    instanceOf: ShapeError,
    message: /non-finite/,
  });
  t.is(trajectorySteps(new Float64Array(12), 2, 2).length, 3);
  // A single state: no steps, no crossings.
  const r = countCrossings([Float64Array.of(0, 0, 1, 1)], { n: 2, d: 2 });
  t.is(r.steps, 0);
  t.is(r.crossings, 0);
});

test('grid agrees with brute force on lattice data full of touches and collinear chords', (t) => {
  const rand = lcg(2024);
  const n = 400;
  const K = 3;
  const steps = [Float64Array.from({ length: 2 * n }, () => Math.floor(rand() * 21))];
  for (let k = 0; k < K; k++) steps.push(steps[k]!.map((x) => x + Math.floor(rand() * 3) - 1));
  const fast = countCrossings(steps, { n, d: 2, listPairs: true });
  const slow = countCrossings(steps, { n, d: 2, method: 'brute', listPairs: true });
  t.true(fast.touchingPairs > 0);
  t.true(fast.crossings > fast.touchingPairs);
  t.deepEqual(fast.pairs, slow.pairs);
  t.is(fast.touchingPairs, slow.touchingPairs);
  t.is(fast.crossingEvents, slow.crossingEvents);
});
