/**
 * Solves that cannot finish: the step budget runs out, the state blows up or
 * turns NaN, minStep is rejected. Each must end promptly in a SolveError whose
 * message and .t name where it happened. Also the fixed grid's step sequence.
 */
import test from 'ava';
import { float64Ops } from '../src/engines/typed.js';
import { SolveError } from '../src/errors.js';
import { solve, solveAsync } from '../src/solvers/integrate.js';
import { parseSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import { ADAPTIVE_METHODS, FIXED_METHODS } from '../src/solvers/tableau.js';
import { rotDecayField } from './helpers/problems.js';

const rotDecay = rotDecayField;
// z' = z², z(0) = 2: z = 1/(1/2 − t), which blows up at t = 1/2.
const square = (_t: number, z: Float64Array): Float64Array => Float64Array.of(z[0]! * z[0]!);

function run(
  field: (t: number, z: Float64Array) => Float64Array,
  z0: number[],
  spec: SolverSpec | string,
  opts = {},
): { error: SolveError; calls: number } {
  let calls = 0;
  const s = typeof spec === 'string' ? parseSolverSpec(spec) : spec;
  try {
    solve(float64Ops, (t, z) => (calls++, field(t, z)), Float64Array.from(z0), s, opts);
  } catch (e) {
    if (e instanceof SolveError) return { error: e, calls };
    throw e;
  }
  throw new Error(`${JSON.stringify(s)} finished without a SolveError`);
}

test('exceeding maxSteps is a SolveError naming the budget, the time reached and the remedy', (t) => {
  const { error, calls } = run(rotDecay, [1, 0.5], 'dopri5:1e-8,maxSteps=5');
  t.regex(
    error.message,
    /^dopri5: reached maxSteps=5 at t=\S+ before t1=1 \(rtol=1e-8, atol=1e-8\); raise maxSteps or loosen the tolerance$/,
  );
  t.true(error.message.includes(`at t=${error.t} `));
  t.true(error.t > 0 && error.t < 1);
  // Exactly the budget was spent: 2 + 6 evaluations per attempted step.
  t.is(calls, 2 + 6 * 5);
  // The default budget (10 000 steps) applies when none is given: adaptive_heun
  // needs ~20 000 steps for 1e-8 over [0, 2].
  const def = run(rotDecay, [1, 0.5], 'adaptive_heun:1e-8', { t1: 2 });
  t.regex(def.error.message, /reached maxSteps=10000 at t=1\.\d+ before t1=2/);
  // The same budget holds backwards.
  const back = run(rotDecay, [1, 0.5], 'tsit5:1e-9,maxSteps=3', { t0: 2, t1: -2 });
  t.regex(back.error.message, /maxSteps=3 at t=\S+ before t1=-2/);
  t.true(back.error.t < 2 && back.error.t > -2);
});

for (const [spec, from] of [
  ['rk4:0.1', '0.7'],
  ['rk4:0.05', '0.6'],
  ['heun:0.01', '0.54'],
] as const) {
  test(`a fixed-step blow-up (${spec} on z' = z² from 2) is a SolveError naming the step`, (t) => {
    const { error, calls } = run(square, [2], spec);
    t.regex(
      error.message,
      new RegExp(
        `^${spec.split(':')[0]}: state became NaN/Inf in the step from t=${from.replace('.', '\\.')}\\d* to t=`,
      ),
    );
    t.true(error.message.includes(`from t=${error.t} `));
    // The exact solution blows up at 0.5; the discrete one cannot overflow earlier.
    t.true(error.t >= 0.5 && error.t < 1, String(error.t));
    // It stops at the first non-finite step instead of running on to t1.
    const h = Number(spec.split(':')[1]);
    const stages = spec.startsWith('rk4') ? 4 : 2;
    t.is(calls, stages * (Math.round(error.t / h) + 1));
  });
}

test('checkFinite: false lets a fixed-step blow-up run to t1', (t) => {
  const r = solve(float64Ops, square, Float64Array.of(2), parseSolverSpec('rk4:0.1'), { checkFinite: false });
  t.false(Number.isFinite(r.z1[0]!));
  t.is(r.stats.accepted, 10);
});

for (const method of FIXED_METHODS) {
  test(`fixed ${method}: a field that is NaN/Inf at t0 fails in the first step`, (t) => {
    // f(0, 0) = log 0 = −Inf (and NaN beyond), which every stage combination propagates.
    const { error, calls } = run((_t, z) => Float64Array.of(Math.log(z[0]!)), [0], `${method}:0.1`);
    t.regex(error.message, /state became NaN\/Inf in the step from t=0 to t=0\.1/);
    t.is(error.t, 0);
    t.true(calls <= 4);
  });
}

for (const method of ADAPTIVE_METHODS) {
  test(`adaptive ${method}: a blow-up (z' = z² from 2, singular at t = 0.5) is a prompt SolveError naming the time`, (t) => {
    const { error, calls } = run(square, [2], `${method}:1e-3`);
    // Near the singularity the step size shrinks until t + h == t; the solver
    // must stop there rather than go on stepping the state with time frozen
    // (which once cost 4 000–18 000 evaluations and then blamed maxSteps).
    t.regex(
      error.message,
      new RegExp(`^${method}: .*(NaN/Inf|underflows).* t=${String(error.t).replace('.', '\\.')}[ ;(]`),
    );
    t.notRegex(error.message, /maxSteps/);
    t.true(Math.abs(error.t - 0.5) < 0.05, `t = ${error.t}`);
    t.true(calls < 3000, `${calls} evaluations`);
  });

  test(`adaptive ${method}: a field that turns NaN after t = 0.5 is a SolveError just before 0.5`, (t) => {
    const { error, calls } = run(
      (tt, z) => (tt <= 0.5 ? Float64Array.of(z[0]!) : Float64Array.of(NaN)),
      [1],
      `${method}:1e-6`,
    );
    t.regex(
      error.message,
      new RegExp(`^${method}: state became NaN/Inf near t=${String(error.t).replace('.', '\\.')}$`),
    );
    t.true(error.t <= 0.5 && error.t > 0.5 - 1e-9, `t = ${error.t}`);
    t.true(calls < 1000, `${calls} evaluations`);
  });

  test(`adaptive ${method}: a field that is NaN/Inf at t0 fails at once, not after maxSteps`, (t) => {
    // f(0, 0) = Inf: the initial-step heuristic yields a zero or NaN step.
    const { error, calls } = run((_t, z) => Float64Array.of(1 / z[0]!), [0], `${method}:1e-5`);
    t.is(error.t, 0);
    t.regex(error.message, /t=0\b/);
    t.notRegex(error.message, /maxSteps/);
    t.true(calls <= 3, `${calls} evaluations`);
    const big = run((_t, z) => Float64Array.of(z[0]! * z[0]!), [1e200], `${method}:1e-5`);
    t.is(big.error.t, 0);
    t.true(big.calls <= 3, `${big.calls} evaluations`);
  });
}

test('a rejected step at minStep is a SolveError naming minStep and the time', (t) => {
  const { error } = run(square, [2], 'dopri5:1e-6,minStep=0.01');
  t.regex(
    error.message,
    /^dopri5: a step of minStep=0\.01 was rejected at t=\S+ \(error ratio [\d.e+-]+\); the solution may blow up here$/,
  );
  t.true(error.message.includes(`at t=${error.t} `));
  t.true(error.t > 0.3 && error.t < 0.5, String(error.t));
});

test('fixed grid: h = 0.1 over [0, 1] takes exactly 10 steps; h = 0.3 ends with a step of 0.1', (t) => {
  const times: number[] = [];
  const r = solve(
    float64Ops,
    (tt, z) => (times.push(tt), rotDecay(tt, z)),
    Float64Array.of(1, 0.5),
    parseSolverSpec('euler:0.1'),
    { record: true },
  );
  t.is(r.stats.accepted, 10);
  t.is(times.length, 10);
  t.is(r.trajectory!.t.length, 11);
  t.is(r.trajectory!.t[10], 1);
  const s = solve(float64Ops, rotDecay, Float64Array.of(1, 0.5), parseSolverSpec('midpoint:0.3'), { record: true });
  const tt = s.trajectory!.t;
  t.is(s.stats.accepted, 4);
  t.deepEqual(
    tt.map((v) => Math.round(v * 1e12) / 1e12),
    [0, 0.3, 0.6, 0.9, 1],
  );
  t.is(tt[4], 1);
  t.true(Math.abs(tt[4]! - tt[3]! - 0.1) < 1e-12);
  // The short last step is really integrated with h = 0.1: compare with a
  // hand-rolled midpoint rule over the same grid.
  let z = [1, 0.5];
  for (let k = 0; k < 4; k++) {
    const h = tt[k + 1]! - tt[k]!;
    const k1 = rotDecay(0, Float64Array.from(z));
    const k2 = rotDecay(0, Float64Array.of(z[0]! + (h / 2) * k1[0]!, z[1]! + (h / 2) * k1[1]!));
    z = [z[0]! + h * k2[0]!, z[1]! + h * k2[1]!];
  }
  t.true(Math.abs(s.z1[0]! - z[0]!) < 1e-15 && Math.abs(s.z1[1]! - z[1]!) < 1e-15, `${[...s.z1]} vs ${z}`);
});

test('solveAsync stops at the next field call once its signal aborts (a cancelled study job), for fixed and adaptive solvers', async (t) => {
  for (const spec of ['rk4:steps=1000', 'dopri5:1e-9']) {
    const ac = new AbortController();
    let calls = 0;
    const field = async (_t: number, z: Float64Array) => {
      if (++calls === 10) ac.abort(new Error('stop here'));
      return Float64Array.from(z, (v) => -v);
    };
    await t.throwsAsync(
      solveAsync(float64Ops, field, Float64Array.of(1, 2), parseSolverSpec(spec), { signal: ac.signal }),
      { message: 'stop here' },
    );
    t.is(calls, 10, `${spec}: no field call after the abort`);
  }
  const whole = await solveAsync(
    float64Ops,
    async (_t: number, z: Float64Array) => Float64Array.from(z, (v) => -v),
    Float64Array.of(1),
    parseSolverSpec('rk4:steps=10'),
    { signal: new AbortController().signal },
  );
  t.true(Math.abs(whole.z1[0]! - Math.exp(-1)) < 1e-6, 'a signal that never aborts changes nothing');
});
