/**
 * Convergence order: fit the slope of log(global error) against log(h) on
 * problems with closed-form solutions and compare it with each method's order.
 * Everything runs in float64 so round-off stays far below the errors fitted.
 */
import test from 'ava';
import { float64Ops } from '../src/engines/typed.js';
import { solve } from '../src/solvers/integrate.js';
import type { FixedSolverSpec } from '../src/solvers/spec.js';
import { ADAPTIVE_METHODS, FIXED_METHODS, getTableau } from '../src/solvers/tableau.js';
import { ROT_DECAY_Z0, rotDecay, rotDecayField, type Problem } from './helpers/problems.js';

// z' = z², z(0) = 1/2: z = 1/(2 − t) (nonlinear, blows up at t = 2).
const riccati: Problem = {
  name: 'riccati',
  f: (_t, z) => Float64Array.of(z[0]! * z[0]!),
  z0: [0.5],
  t0: 0,
  t1: 1,
  exact: (t) => [1 / (2 - t)],
};

// z' = cos(t)·z, z(0) = 1: z = exp(sin t). Non-autonomous, so a wrong stage
// time t + c_i·h in the integrate loop lowers the observed order.
const cosGrowth: Problem = {
  name: 'cos-growth',
  f: (t, z) => Float64Array.of(Math.cos(t) * z[0]!),
  z0: [1],
  t0: 0,
  t1: 1.5,
  exact: (t) => [Math.exp(Math.sin(t))],
};

function maxAbsError(p: Problem, z: Float64Array): number {
  const ex = p.exact(p.t1);
  return Math.max(...ex.map((v, i) => Math.abs(v - z[i]!)));
}

/** Least-squares slope of y against x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxy / sxx;
}

/** Observed order of `method` run at fixed steps (steps = n over [t0, t1]). */
function observedOrder(p: Problem, method: string, stepCounts: readonly number[]): { order: number; errors: number[] } {
  const logH: number[] = [];
  const logE: number[] = [];
  const errors: number[] = [];
  for (const n of stepCounts) {
    // A FixedSolverSpec object (not a parsed string) so the adaptive tableaus'
    // propagated solutions can be stepped at fixed h as well.
    const spec: FixedSolverSpec = { kind: 'fixed', method, steps: n };
    const r = solve(float64Ops, p.f, Float64Array.from(p.z0), spec, { t0: p.t0, t1: p.t1 });
    const err = maxAbsError(p, r.z1);
    errors.push(err);
    logH.push(Math.log((p.t1 - p.t0) / n));
    logE.push(Math.log(err));
  }
  return { order: slope(logH, logE), errors };
}

// Step counts in each method's asymptotic range, with errors well above
// float64 round-off (smallest error fitted is ~1e-11).
const STEPS_BY_ORDER: Record<number, number[]> = {
  1: [16, 32, 64, 128, 256],
  2: [16, 32, 64, 128, 256],
  3: [8, 16, 32, 64, 128],
  4: [8, 16, 32, 64, 128],
  5: [24, 32, 48, 64, 96],
};

const EXPECTED_FIXED: Record<string, number> = { euler: 1, midpoint: 2, heun: 2, rk4: 4, rk4_38: 4 };

test('every fixed method is registered with the expected order', (t) => {
  t.deepEqual([...FIXED_METHODS].sort(), Object.keys(EXPECTED_FIXED).sort());
  for (const [m, p] of Object.entries(EXPECTED_FIXED)) t.is(getTableau(m).order, p, m);
});

for (const problem of [rotDecay, riccati, cosGrowth]) {
  for (const [method, expected] of Object.entries(EXPECTED_FIXED)) {
    test(`fixed ${method} converges with order ${expected} on ${problem.name}`, (t) => {
      const { order, errors } = observedOrder(problem, method, STEPS_BY_ORDER[expected]!);
      t.true(
        Math.abs(order - expected) <= 0.2,
        `observed order ${order.toFixed(3)}, expected ${expected}; errors ${errors.map((e) => e.toExponential(2)).join(', ')}`,
      );
      // The errors must actually be small at the finest step, not just scale.
      t.true(errors[errors.length - 1]! < 1e-2, `finest error ${errors[errors.length - 1]}`);
    });
  }
}

test('rk4 (classic) and rk4_38 (Kutta 3/8) are different methods of the same order', (t) => {
  const spec = (method: string): FixedSolverSpec => ({ kind: 'fixed', method, steps: 8 });
  const a = solve(float64Ops, riccati.f, Float64Array.of(0.5), spec('rk4')).z1[0]!;
  const b = solve(float64Ops, riccati.f, Float64Array.of(0.5), spec('rk4_38')).z1[0]!;
  t.true(Math.abs(a - b) > 1e-9, `rk4 ${a} vs rk4_38 ${b}`);
});

// The propagated solution of each adaptive tableau, stepped at fixed h. The
// 5th-order pairs are fitted on the two smooth problems only: on the Riccati
// problem their leading error terms cancel near h = 1/16 and the fit is
// meaningless. The 5th-order tolerance is 0.35 rather than 0.2 because Tsit5's
// principal error coefficients are tuned to be tiny, so the h⁶ term still
// inflates its slope to ~5.25 at the finest h where the error (~1e-12) is
// clear of round-off; any wrong coefficient drops the slope by ≥ 1.
for (const method of ADAPTIVE_METHODS) {
  const p = getTableau(method).order;
  const problems = p === 5 ? [rotDecay, cosGrowth] : [rotDecay, riccati, cosGrowth];
  for (const problem of problems) {
    test(`adaptive tableau ${method}: propagated solution has order ${p} on ${problem.name}`, (t) => {
      const { order, errors } = observedOrder(problem, method, STEPS_BY_ORDER[p]!);
      const tol = p === 5 ? 0.35 : 0.2;
      t.true(
        Math.abs(order - p) <= tol,
        `observed order ${order.toFixed(3)}, expected ${p}; errors ${errors.map((e) => e.toExponential(2)).join(', ')}`,
      );
    });
  }
}

/**
 * The embedded error estimate h·Σ bErr_i·k_i of one step, computed here from
 * the tableau data with an independent RK stage loop. For an order-p pair
 * whose embedded solution has order p − 1 it is O(h^p).
 */
function errorEstimate(
  method: string,
  f: (t: number, z: number[]) => number[],
  t0: number,
  z0: readonly number[],
  h: number,
): number {
  const tab = getTableau(method);
  const k: number[][] = [f(t0, [...z0])];
  for (let i = 1; i < tab.c.length; i++) {
    const zi = z0.map((v, d) => v + h * tab.a[i]!.reduce((s, a, j) => s + a * k[j]![d]!, 0));
    k.push(f(t0 + tab.c[i]! * h, zi));
  }
  return Math.max(...z0.map((_, d) => Math.abs(h * tab.bErr!.reduce((s, e, j) => s + e * k[j]![d]!, 0))));
}

for (const method of ADAPTIVE_METHODS) {
  test(`adaptive tableau ${method}: the embedded error estimate of one step shrinks like h^order`, (t) => {
    const tab = getTableau(method);
    t.truthy(tab.bErr, 'adaptive tableau without error weights');
    const hs = [1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64];
    const problems: [string, (t: number, z: number[]) => number[], number[]][] = [
      ['rotation-decay', (t, z) => Array.from(rotDecayField(t, Float64Array.from(z))), [...ROT_DECAY_Z0]],
      ['riccati', (_t, z) => [z[0]! * z[0]!], [0.5]],
    ];
    for (const [name, f, z0] of problems) {
      const est = hs.map((h) => errorEstimate(method, f, 0, z0, h));
      const order = slope(hs.map(Math.log), est.map(Math.log));
      t.true(
        Math.abs(order - tab.order) <= 0.2,
        `${name}: estimate order ${order.toFixed(3)}, expected ${tab.order}; ${est.map((e) => e.toExponential(2)).join(', ')}`,
      );
    }
  });
}

test('FSAL is derived for exactly bosh3, dopri5 and tsit5', (t) => {
  const fsal = ADAPTIVE_METHODS.filter((m) => getTableau(m).fsal).sort();
  t.deepEqual(fsal, ['bosh3', 'dopri5', 'tsit5']);
  t.deepEqual(
    FIXED_METHODS.filter((m) => getTableau(m).fsal),
    [],
  );
});
