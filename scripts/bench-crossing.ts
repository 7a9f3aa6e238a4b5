/**
 * The crossing audit's geometry against maintained packages, on correctness
 * and speed:
 *  - orientation predicate: ours (float filter + exact BigInt fallback) vs
 *    robust-predicates' orient2d (Shewchuk's adaptive expansions);
 *  - broad phase: our uniform grid vs flatbush (static packed Hilbert R-tree);
 *  - the whole count: grid vs brute force (the speed check that used to be a
 *    wall-clock assertion in test/audit-crossing.test.ts).
 *
 *   npx tsx scripts/bench-crossing.ts            # or: npm run bench:crossing
 */
import Flatbush from 'flatbush';
import { orient2d as rpOrient2d } from 'robust-predicates';
import { countCrossings } from '../src/audit/crossing.js';
import { Rng } from '../src/random.js';
import { gridPairs, type Boxes } from '../src/geometry/broad-phase.js';
import { orient2d } from '../src/geometry/orient.js';

const rng = new Rng('bench-crossing');

/** Exact sign of det[a − c, b − c] by BigInt arithmetic on the exact binary values (the reference). */
function exactSign(v: readonly number[]): number {
  const f = new Float64Array(1);
  const u = new BigUint64Array(f.buffer);
  const parts = v.map((x) => {
    f[0] = x;
    const bits = u[0]!;
    const e = Number((bits >> 52n) & 0x7ffn);
    const frac = bits & ((1n << 52n) - 1n);
    const m = e === 0 ? frac : frac | (1n << 52n);
    return [bits >> 63n ? -m : m, e === 0 ? -1074 : e - 1075] as const;
  });
  const emin = Math.min(...parts.filter(([m]) => m !== 0n).map(([, e]) => e));
  const w = parts.map(([m, e]) => (m === 0n ? 0n : m << BigInt(e - emin)));
  const det = (w[0]! - w[4]!) * (w[3]! - w[5]!) - (w[1]! - w[5]!) * (w[2]! - w[4]!);
  return det > 0n ? 1 : det < 0n ? -1 : 0;
}

/** robust-predicates assumes y points down: its sign is the opposite of the mathematical one. */
const rpSign = (v: readonly number[]): number => -Math.sign(rpOrient2d(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!)) || 0;
const ourSign = (v: readonly number[]): number => orient2d(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!);

function correctness(): void {
  const cases: { name: string; make: () => number[] }[] = [
    { name: 'random in [0,1)²', make: () => Array.from({ length: 6 }, () => rng.uniform()) },
    {
      name: 'near-collinear (ulp perturbations of y = x)',
      make: () => {
        const a = 0.5 + rng.int(16) * 2 ** -53;
        const b = 0.5 + rng.int(16) * 2 ** -53;
        return [a, b, 12, 12, 24, 24];
      },
    },
    {
      name: 'nearly parallel chords of a trajectory (|Δ| ~ 1e-9)',
      make: () => {
        const x = rng.uniform();
        const y = rng.uniform();
        return [x, y, x + 0.01, y + 0.01 * 1e-3, x + 0.005, y + 0.005 * 1e-3 + (rng.uniform() - 0.5) * 1e-9];
      },
    },
    {
      name: 'subnormal range (integers × 2^-1060)',
      make: () => Array.from({ length: 6 }, () => (rng.int(2001) - 1000) * 2 ** -1060),
    },
    {
      name: 'overflowing products (|x| ~ 1e200)',
      make: () => Array.from({ length: 6 }, () => (rng.uniform() - 0.5) * 1e200),
    },
  ];
  console.log('orientation sign vs exact BigInt reference (20 000 cases each):');
  for (const c of cases) {
    let oursWrong = 0;
    let rpWrong = 0;
    for (let q = 0; q < 20_000; q++) {
      const v = c.make();
      const ref = exactSign(v);
      if (ourSign(v) !== ref) oursWrong++;
      if (rpSign(v) !== ref) rpWrong++;
    }
    console.log(`  ${c.name.padEnd(52)} ours wrong ${oursWrong}, robust-predicates wrong ${rpWrong}`);
  }
}

function time(fn: () => number, rounds = 5): { ms: number; out: number } {
  let best = Infinity;
  let out = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    out = fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, out };
}

function orientSpeed(): void {
  const m = 1_000_000;
  const easy = Float64Array.from({ length: 6 * m }, () => rng.uniform());
  const hard = new Float64Array(6 * m);
  for (let q = 0; q < m; q++) {
    const x = rng.uniform();
    hard.set([x, x, x + 1, x + 1, x + 2 + rng.int(4) * 2 ** -50, x + 2], 6 * q);
  }
  console.log(`orientation predicate, ${m} calls (best of 5):`);
  for (const [name, data] of [
    ['random points', easy],
    ['near-collinear', hard],
  ] as const) {
    const ours = time(() => {
      let s = 0;
      for (let q = 0; q < 6 * m; q += 6)
        s += orient2d(data[q]!, data[q + 1]!, data[q + 2]!, data[q + 3]!, data[q + 4]!, data[q + 5]!);
      return s;
    });
    const rp = time(() => {
      let s = 0;
      for (let q = 0; q < 6 * m; q += 6)
        s -= Math.sign(rpOrient2d(data[q]!, data[q + 1]!, data[q + 2]!, data[q + 3]!, data[q + 4]!, data[q + 5]!));
      return s;
    });
    console.log(
      `  ${name.padEnd(16)} ours ${ours.ms.toFixed(1)} ms, robust-predicates ${rp.ms.toFixed(1)} ms (ratio ours/rp ${(ours.ms / rp.ms).toFixed(2)}); sums ${ours.out} / ${rp.out}`,
    );
  }
}

/** Chord boxes of n points on concentric circles, one rk4-like step of a rotation. */
function rotationBoxes(n: number, angle: number): Boxes {
  const x0 = new Float64Array(n);
  const y0 = new Float64Array(n);
  const x1 = new Float64Array(n);
  const y1 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = 0.1 + 1.4 * Math.sqrt(rng.uniform());
    const a = 2 * Math.PI * rng.uniform();
    const ax = r * Math.cos(a);
    const ay = r * Math.sin(a);
    const bx = r * Math.cos(a + angle);
    const by = r * Math.sin(a + angle);
    x0[i] = Math.min(ax, bx);
    x1[i] = Math.max(ax, bx);
    y0[i] = Math.min(ay, by);
    y1[i] = Math.max(ay, by);
  }
  return { count: n, x0, y0, x1, y1 };
}

function flatbushPairs(b: Boxes, visit: (a: number, c: number) => void): number {
  const index = new Flatbush(b.count);
  for (let i = 0; i < b.count; i++) index.add(b.x0[i]!, b.y0[i]!, b.x1[i]!, b.y1[i]!);
  index.finish();
  let visits = 0;
  for (let i = 0; i < b.count; i++) {
    for (const j of index.search(b.x0[i]!, b.y0[i]!, b.x1[i]!, b.y1[i]!)) {
      if (j <= i) continue;
      visits++;
      visit(i, j);
    }
  }
  return visits;
}

function broadPhase(): void {
  console.log('broad phase, pairs of overlapping chord boxes of one step (best of 5):');
  for (const [n, angle] of [
    [1000, 0.05],
    [10_000, 0.05],
    [10_000, 0.5],
    [100_000, 0.01],
  ] as const) {
    const b = rotationBoxes(n, angle);
    let gridSum = 0;
    let fbSum = 0;
    const g = time(() => {
      gridSum = 0;
      return gridPairs(b, (i, j) => (gridSum += i * 31 + j));
    });
    const f = time(() => {
      fbSum = 0;
      return flatbushPairs(b, (i, j) => (fbSum += i * 31 + j));
    });
    const same = g.out === f.out && gridSum === fbSum;
    console.log(
      `  n=${String(n).padStart(6)} step angle ${angle}: grid ${g.ms.toFixed(1)} ms, flatbush ${f.ms.toFixed(1)} ms (ratio grid/flatbush ${(g.ms / f.ms).toFixed(2)}); ${g.out} pairs, same pairs: ${same}`,
    );
  }
}

function wholeCount(): void {
  const n = 2000;
  const K = 3;
  const steps = [Float64Array.from({ length: 2 * n }, () => rng.uniform())];
  for (let k = 0; k < K; k++) steps.push(steps[k]!.map((x) => x + (rng.uniform() - 0.5) * 0.03));
  const fast = time(() => countCrossings(steps, { n, d: 2 }).crossings, 3);
  const slow = time(() => countCrossings(steps, { n, d: 2, method: 'brute' }).crossings, 3);
  console.log(
    `countCrossings, ${n} random trajectories × ${K} steps: grid ${fast.ms.toFixed(1)} ms, brute ${slow.ms.toFixed(1)} ms (${(slow.ms / fast.ms).toFixed(1)}× faster); crossings ${fast.out} / ${slow.out}`,
  );
}

correctness();
orientSpeed();
broadPhase();
wholeCount();
