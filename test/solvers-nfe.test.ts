/**
 * Number of function evaluations: stats.nfe must equal the calls the field
 * really received, and follow each method's formula (torchdiffeq's for the
 * FSAL pairs: dopri5 costs 2 + 6·(accepted + rejected) with Hairer's initial
 * step).
 */
import test from 'ava';
import { float64Ops } from '../src/engines/typed.js';
import { solve, type SolveOptions, type SolveResult } from '../src/solvers/integrate.js';
import { parseSolverSpec, type AdaptiveSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import { ADAPTIVE_METHODS, getTableau } from '../src/solvers/tableau.js';
import { rotDecayField } from './helpers/problems.js';

// z' = cos(t)·z: smooth but non-autonomous, and the controller rejects steps on it.
const cosGrowth = (t: number, z: Float64Array): Float64Array => Float64Array.of(Math.cos(t) * z[0]!);
// z' = Az with a decaying rotation (test/helpers/problems.ts).
const rotDecay = rotDecayField;

interface Counted {
  r: SolveResult<Float64Array>;
  calls: { t: number; z: Float64Array }[];
}

function counted(
  field: (t: number, z: Float64Array) => Float64Array,
  z0: Float64Array,
  spec: SolverSpec,
  opts: SolveOptions = {},
): Counted {
  const calls: { t: number; z: Float64Array }[] = [];
  const r = solve(float64Ops, (t, z) => (calls.push({ t, z: Float64Array.from(z) }), field(t, z)), z0, spec, opts);
  return { r, calls };
}

const STAGES: Record<string, number> = { euler: 1, midpoint: 2, heun: 2, rk4: 4, rk4_38: 4 };

for (const [method, s] of Object.entries(STAGES)) {
  test(`fixed ${method} costs ${s} evaluation(s) per step`, (t) => {
    t.is(getTableau(method).c.length, s);
    for (const [spec, steps] of [
      [`${method}:0.1`, 10],
      [`${method}:steps=7`, 7],
      [`${method}:0.3`, 4], // 0.3 does not divide 1: three full steps and a short one
      [`${method}:5`, 1], // h larger than the interval: one step of length 1
    ] as const) {
      const { r, calls } = counted(rotDecay, Float64Array.of(1, 0.5), parseSolverSpec(spec));
      t.is(calls.length, s * steps, spec);
      t.is(r.stats.nfe, calls.length, spec);
      t.is(r.stats.accepted, steps, spec);
      t.is(r.stats.rejected, 0, spec);
    }
    // Output times are interpolated: they add no evaluations.
    const { r, calls } = counted(rotDecay, Float64Array.of(1, 0.5), parseSolverSpec(`${method}:0.1`), {
      times: [0.05, 0.33, 0.5, 1],
    });
    t.is(calls.length, 10 * s);
    t.is(r.stats.nfe, calls.length);
  });
}

/**
 * Expected NFE of an adaptive solve: 1 for f(t0, z0), 1 for Hairer's
 * initial-step probe unless firstStep is given, s − 1 new stages per attempted
 * step, and — for tableaus that are not first-same-as-last — a fresh
 * f(t, z) after every accepted step except the last.
 */
function expectedAdaptiveNfe(method: string, accepted: number, rejected: number, firstStepGiven: boolean): number {
  const tab = getTableau(method);
  const s = tab.c.length;
  return (firstStepGiven ? 1 : 2) + (s - 1) * (accepted + rejected) + (tab.fsal ? 0 : accepted - 1);
}

test('the published formulas: dopri5 2 + 6·steps (1 + 6·steps with firstStep), bosh3 2 + 3·steps, tsit5 2 + 6·steps', (t) => {
  for (const [method, perStep] of [
    ['dopri5', 6],
    ['bosh3', 3],
    ['tsit5', 6],
  ] as const) {
    t.true(getTableau(method).fsal);
    const a = counted(cosGrowth, Float64Array.of(1), parseSolverSpec(`${method}:1e-6`), { t1: 3 });
    t.is(a.calls.length, 2 + perStep * (a.r.stats.accepted + a.r.stats.rejected), method);
    const b = counted(cosGrowth, Float64Array.of(1), parseSolverSpec(`${method}:1e-6,firstStep=1`), { t1: 3 });
    t.true(b.r.stats.rejected > 0, `${method}: firstStep=1 should be rejected at 1e-6`);
    t.is(b.calls.length, 1 + perStep * (b.r.stats.accepted + b.r.stats.rejected), `${method} firstStep`);
  }
  for (const [method, s] of [
    ['adaptive_heun', 2],
    ['fehlberg2', 3],
  ] as const) {
    t.false(getTableau(method).fsal);
    t.is(getTableau(method).c.length, s);
    const a = counted(cosGrowth, Float64Array.of(1), parseSolverSpec(`${method}:1e-4`), { t1: 3 });
    const { accepted, rejected } = a.r.stats;
    t.is(a.calls.length, 2 + (s - 1) * (accepted + rejected) + (accepted - 1), method);
  }
});

for (const method of ADAPTIVE_METHODS) {
  test(`${method}: stats.nfe equals the real field calls, with and without rejections, firstStep and output times`, (t) => {
    let sawRejection = false;
    const cases: [AdaptiveSolverSpec, SolveOptions][] = [];
    for (const tol of [1e-3, 1e-4, 1e-5, 1e-6]) {
      const base: AdaptiveSolverSpec = { kind: 'adaptive', method, rtol: tol, atol: tol };
      cases.push([base, { t1: 3 }]);
      cases.push([{ ...base, firstStep: 1 }, { t1: 3 }]);
      cases.push([base, { t1: 3, times: [0.5, 1, 1, 2.5] }]);
      cases.push([base, { t0: 3, t1: 0.5 }]);
    }
    for (const [spec, opts] of cases) {
      const { r, calls } = counted(cosGrowth, Float64Array.of(1.5), spec, opts);
      const what = `${JSON.stringify(spec)} ${JSON.stringify(opts)}`;
      t.is(r.stats.nfe, calls.length, what);
      t.is(
        calls.length,
        expectedAdaptiveNfe(method, r.stats.accepted, r.stats.rejected, spec.firstStep !== undefined),
        what,
      );
      // The first evaluation is f(t0, z0).
      t.is(calls[0]!.t, opts.t0 ?? 0);
      t.deepEqual([...calls[0]!.z], [1.5]);
      if (r.stats.rejected > 0) sawRejection = true;
    }
    t.true(sawRejection, 'no case exercised a rejected step');
  });
}

test('FSAL reuse: the first stage of each step is the last stage of the previous accepted one', (t) => {
  const { r, calls } = counted(rotDecay, Float64Array.of(1, 0.5), parseSolverSpec('dopri5:1e-6,firstStep=0.05'), {
    record: true,
  });
  t.is(r.stats.rejected, 0);
  // Calls: f(t0), then 6 per step whose last one is at the step's end point.
  const traj = r.trajectory!;
  for (let k = 1; k < traj.t.length; k++) {
    const last = calls[6 * k]!;
    t.is(last.t, traj.t[k]);
    t.deepEqual([...last.z], [...traj.z[k]!]);
  }
});
