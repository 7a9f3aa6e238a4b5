import test from 'ava';
import { ShapeError, SpecError } from '../src/errors.js';
import { foldCheck, jacobianDeterminants, type StepMap } from '../src/audit/fold.js';
import { logDet } from '../src/linalg/lu.js';

/** z ↦ A z (+ b) for a d×d row-major A. */
function linearMap(A: number[], d: number, b: number[] = new Array(d).fill(0)): StepMap {
  return async (z, n) => {
    const out = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < d; r++) {
        let s = b[r]!;
        for (let c = 0; c < d; c++) s += A[r * d + c]! * z[i * d + c]!;
        out[i * d + r] = s;
      }
    }
    return out;
  };
}

function grid2d(m: number): Float64Array {
  const z = new Float64Array(m * m * 2);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      z[2 * (i * m + j)] = -1 + (2 * i) / (m - 1);
      z[2 * (i * m + j) + 1] = -1 + (2 * j) / (m - 1);
    }
  }
  return z;
}

test('logDet: LU with partial pivoting gives sign and log|det|', (t) => {
  const a = logDet([2, 1, 1, 3], 2); // det 5
  t.is(a.sign, 1);
  t.true(Math.abs(a.logAbsDet - Math.log(5)) < 1e-12);
  const b = logDet([0, 1, 1, 0], 2); // a swap: det −1 (needs pivoting)
  t.is(b.sign, -1);
  t.true(Math.abs(b.logAbsDet) < 1e-15);
  t.deepEqual(logDet([1, 2, 2, 4], 2), { sign: 0, logAbsDet: -Infinity });
  const c = logDet([2, -1, 0, 1, 3, 2, 0, 5, -4], 3); // det = 2(−12−10) + 1(−4−0) = −48
  t.is(c.sign, -1);
  t.true(Math.abs(c.logAbsDet - Math.log(48)) < 1e-12);
  // Large d without overflow: det(1.5 I_400) = 1.5^400.
  const d = 400;
  const big = new Float64Array(d * d);
  for (let i = 0; i < d; i++) big[i * d + i] = 1.5;
  const e = logDet(big, d);
  t.is(e.sign, 1);
  t.true(Math.abs(e.logAbsDet - d * Math.log(1.5)) < 1e-9);
  t.throws(() => logDet([1, 2, 3], 2), { instanceOf: ShapeError });
});

test('linear maps: det > 0 never folds, det < 0 folds everywhere', async (t) => {
  const z = grid2d(5);
  const good = await foldCheck(linearMap([2, 1, 0.5, 1], 2), [z, z], { n: 25, d: 2 });
  t.is(good.folded, 0);
  t.is(good.firstStep, null);
  t.is(good.states, 25);
  t.true(Math.abs(good.minDet - 1.5) < 1e-8);
  t.true(Math.abs(good.minPositiveLogAbsDet - Math.log(1.5)) < 1e-8);
  const bad = await foldCheck(linearMap([1, 2, 3, 1], 2, [0.1, -0.2]), [z, z], { n: 25, d: 2 });
  t.is(bad.folded, 25);
  t.is(bad.foldedFraction, 1);
  t.is(bad.firstStep, 0);
  t.true(Math.abs(bad.minDet - -5) < 1e-7);
  t.is(bad.examples.length, 5);
  t.is(bad.examples[0]!.sign, -1);
  t.deepEqual(bad.examples[0]!.state, [-1, -1]);
});

test('rotation has det 1', async (t) => {
  const th = 2.5;
  const rot = linearMap([Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)], 2);
  const r = await foldCheck(rot, [grid2d(4)], { n: 16, d: 2, keepDeterminants: true });
  t.is(r.steps, 1);
  t.is(r.folded, 0);
  t.true(Math.abs(r.minDet - 1) < 1e-8);
  t.true(r.determinants![0]!.logAbsDet.every((v) => Math.abs(v) < 1e-8));
});

test("Euler step of z' = -k z folds in 1-D exactly when h k > 1", async (t) => {
  const k = 4;
  const euler =
    (h: number): StepMap =>
    async (z) =>
      z.map((v) => v + h * -k * v);
  const xs = Float64Array.from({ length: 21 }, (_, i) => -1 + i / 10);
  // Trajectory with 3 steps at h = 0.1 (hk = 0.4): no fold.
  const traj = [xs, xs.map((x) => 0.6 * x), xs.map((x) => 0.36 * x), xs.map((x) => 0.216 * x)];
  const ok = await foldCheck(euler(0.1), traj, { n: 21, d: 1 });
  t.is(ok.steps, 3);
  t.is(ok.states, 63);
  t.is(ok.folded, 0);
  t.true(Math.abs(ok.minDet - 0.6) < 1e-8);
  const folds = await foldCheck(euler(0.5), [xs, xs.map((x) => -x)], { n: 21, d: 1 });
  t.is(folds.folded, 21);
  t.true(Math.abs(folds.minDet - -1) < 1e-8);
  // h k = 1 collapses everything onto 0: det = 0 counts as a fold.
  const flat = await foldCheck(euler(0.25), [xs, new Float64Array(21)], { n: 21, d: 1 });
  t.is(flat.folded, 21);
  t.is(flat.minDet, 0);
});

test('nonlinear map: finite-difference determinant matches the analytic Jacobian', async (t) => {
  // Ψ(z) = z + h tanh(W z + b) in 2-D; J = I + h diag(1 − tanh²) W.
  const W = [-3, 1, 1, 0.5];
  const b = [0.1, -0.3];
  const h = 0.9;
  const step: StepMap = async (z, n) => {
    const out = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < 2; r++)
        out[2 * i + r] = z[2 * i + r]! + h * Math.tanh(W[2 * r]! * z[2 * i]! + W[2 * r + 1]! * z[2 * i + 1]! + b[r]!);
    }
    return out;
  };
  const z = grid2d(9);
  const det = await jacobianDeterminants(step, z, 81, 2, { maxRows: 20 });
  let negatives = 0;
  for (let i = 0; i < 81; i++) {
    const s0 = 1 - Math.tanh(W[0]! * z[2 * i]! + W[1]! * z[2 * i + 1]! + b[0]!) ** 2;
    const s1 = 1 - Math.tanh(W[2]! * z[2 * i]! + W[3]! * z[2 * i + 1]! + b[1]!) ** 2;
    const J = [1 + h * s0 * W[0]!, h * s0 * W[1]!, h * s1 * W[2]!, 1 + h * s1 * W[3]!];
    const exact = J[0]! * J[3]! - J[1]! * J[2]!;
    t.is(det.sign[i], Math.sign(exact));
    t.true(Math.abs(det.sign[i]! * Math.exp(det.logAbsDet[i]!) - exact) < 1e-6);
    if (exact <= 0) negatives++;
  }
  t.log(`${negatives}/81 folded states`);
  t.true(negatives > 0 && negatives < 81);
  const r = await foldCheck(step, [z, z], { n: 81, d: 2, maxRows: 33 });
  t.is(r.folded, negatives);
});

test('time-dependent maps receive the step index; chunking respects maxRows', async (t) => {
  const seen: number[] = [];
  const calls: number[] = [];
  const step: StepMap = async (z, n, d, k) => {
    seen.push(k);
    calls.push(n);
    // Step 1 reflects, steps 0 and 2 scale.
    return k === 1 ? z.map((v) => -v) : z.map((v) => 2 * v);
  };
  const xs = Float64Array.from({ length: 10 }, (_, i) => i);
  const r = await foldCheck(step, [xs, xs, xs, xs], { n: 10, d: 1, maxRows: 6 });
  t.deepEqual(r.foldedPerStep, [0, 10, 0]);
  t.is(r.firstStep, 1);
  t.true(calls.every((c) => c <= 6));
  t.deepEqual([...new Set(seen)], [0, 1, 2]);
});

test('bad options and wrong map output are clear errors', async (t) => {
  const xs = Float64Array.of(0, 1);
  await t.throwsAsync(
    foldCheck(async (z) => z, [xs], { n: 2, d: 1, eps: 0 }),
    { instanceOf: SpecError },
  );
  await t.throwsAsync(
    foldCheck(async (z) => z.subarray(1), [xs], { n: 2, d: 1 }),
    { instanceOf: ShapeError, message: /returned/ },
  );
  await t.throwsAsync(
    foldCheck(async (z) => z, [Float64Array.of(1)], { n: 2, d: 1 }),
    { instanceOf: ShapeError },
  );
});
