/**
 * Solver spec strings: every accepted form, the canonical round trip, lists,
 * and every rejection path (a SpecError whose message quotes the spec).
 */
import test from 'ava';
import { SpecError } from '../src/errors.js';
import { fixedGrid } from '../src/solvers/integrate.js';
import {
  DEFAULT_MAX_STEPS,
  DEFAULT_SOLVER_LIMITS,
  fixedStepCount,
  formatSolverSpec,
  parseSolverList,
  parseSolverSpec,
  solverParam,
  type FixedSolverSpec,
  type SolverSpec,
} from '../src/solvers/spec.js';
import { ADAPTIVE_METHODS, FIXED_METHODS, getTableau, METHODS } from '../src/solvers/tableau.js';

test('the method registry: 5 fixed and 5 adaptive methods', (t) => {
  t.deepEqual([...FIXED_METHODS], ['euler', 'midpoint', 'heun', 'rk4', 'rk4_38']);
  t.deepEqual([...ADAPTIVE_METHODS], ['adaptive_heun', 'fehlberg2', 'bosh3', 'dopri5', 'tsit5']);
  t.deepEqual([...METHODS], [...FIXED_METHODS, ...ADAPTIVE_METHODS]);
  for (const m of FIXED_METHODS) t.false(getTableau(m).adaptive, m);
  for (const m of ADAPTIVE_METHODS) t.true(getTableau(m).adaptive, m);
  t.throws(() => getTableau('rk45'), {
    instanceOf: SpecError,
    message: /unknown solver "rk45"; expected one of euler, .*tsit5/,
  });
  t.true(Object.isFrozen(getTableau('dopri5')) && Object.isFrozen(getTableau('dopri5').a[3]));
});

const ACCEPTED: [string, SolverSpec][] = [
  ['euler:0.1', { kind: 'fixed', method: 'euler', h: 0.1 }],
  ['midpoint:h=0.25', { kind: 'fixed', method: 'midpoint', h: 0.25 }],
  ['rk4:steps=20', { kind: 'fixed', method: 'rk4', steps: 20 }],
  ['rk4_38:steps=1e2', { kind: 'fixed', method: 'rk4_38', steps: 100 }],
  ['heun:2', { kind: 'fixed', method: 'heun', h: 2 }],
  ['  euler:0.1  ', { kind: 'fixed', method: 'euler', h: 0.1 }],
  ['dopri5:1e-5', { kind: 'adaptive', method: 'dopri5', rtol: 1e-5, atol: 1e-5 }],
  ['dopri5:tol=1e-4', { kind: 'adaptive', method: 'dopri5', rtol: 1e-4, atol: 1e-4 }],
  ['dopri5:rtol=1e-5,atol=1e-7', { kind: 'adaptive', method: 'dopri5', rtol: 1e-5, atol: 1e-7 }],
  ['tsit5:atol=1e-7, rtol=1e-5', { kind: 'adaptive', method: 'tsit5', rtol: 1e-5, atol: 1e-7 }],
  // tol is the default for whichever of rtol/atol is not given.
  ['bosh3:1e-3,atol=1e-6', { kind: 'adaptive', method: 'bosh3', rtol: 1e-3, atol: 1e-6 }],
  ['fehlberg2:tol=1e-3,rtol=1e-4', { kind: 'adaptive', method: 'fehlberg2', rtol: 1e-4, atol: 1e-3 }],
  [
    'adaptive_heun:1e-3,maxSteps=500',
    { kind: 'adaptive', method: 'adaptive_heun', rtol: 1e-3, atol: 1e-3, maxSteps: 500 },
  ],
  [
    'dopri5:1e-6,firstStep=0.01,minStep=1e-4',
    { kind: 'adaptive', method: 'dopri5', rtol: 1e-6, atol: 1e-6, firstStep: 0.01, minStep: 1e-4 },
  ],
  [
    'dopri5:rtol=1e-5,atol=1e-7,maxSteps=100,firstStep=0.5,minStep=0.001',
    { kind: 'adaptive', method: 'dopri5', rtol: 1e-5, atol: 1e-7, maxSteps: 100, firstStep: 0.5, minStep: 0.001 },
  ],
];

for (const [text, expected] of ACCEPTED) {
  test(`parses "${text}"`, (t) => {
    const spec = parseSolverSpec(text);
    t.deepEqual(spec, expected);
    // The canonical form parses back to the same spec, and is a fixed point.
    const canon = formatSolverSpec(spec);
    t.deepEqual(parseSolverSpec(canon), spec, canon);
    t.is(formatSolverSpec(parseSolverSpec(canon)), canon);
  });
}

test('canonical forms', (t) => {
  t.is(formatSolverSpec(parseSolverSpec('euler:h=0.1')), 'euler:0.1');
  t.is(formatSolverSpec(parseSolverSpec('rk4:steps=20')), 'rk4:steps=20');
  t.is(formatSolverSpec(parseSolverSpec('dopri5:rtol=1e-5,atol=1e-5')), 'dopri5:0.00001');
  t.is(formatSolverSpec(parseSolverSpec('dopri5:atol=1e-7,rtol=1e-5')), 'dopri5:rtol=0.00001,atol=1e-7');
  t.is(
    formatSolverSpec(parseSolverSpec('dopri5:1e-5,minStep=1e-4,maxSteps=10')),
    'dopri5:0.00001,maxSteps=10,minStep=0.0001',
  );
});

test('formatSolverSpec round-trips awkward numbers exactly', (t) => {
  const specs: SolverSpec[] = [
    { kind: 'fixed', method: 'euler', h: 1 / 3 },
    { kind: 'fixed', method: 'rk4', h: 0.1 + 0.2 },
    { kind: 'fixed', method: 'heun', h: 1e-300 },
    { kind: 'fixed', method: 'midpoint', steps: 123456 },
    { kind: 'adaptive', method: 'tsit5', rtol: Math.PI * 1e-7, atol: 2.5e-21 },
    { kind: 'adaptive', method: 'bosh3', rtol: 1e21, atol: 1e21, maxSteps: 7, firstStep: 1 / 7, minStep: 5e-324 },
  ];
  // Limits off: this checks number formatting, not the bounds (tested below).
  const unbounded = { maxSteps: Infinity, minTol: 0 };
  for (const s of specs) t.deepEqual(parseSolverSpec(formatSolverSpec(s), unbounded), s, formatSolverSpec(s));
});

test('parseSolverList splits on method names, keeping options with their spec', (t) => {
  t.deepEqual(parseSolverList('euler:0.5,rk4:0.01,dopri5:rtol=1e-5,atol=1e-7'), [
    { kind: 'fixed', method: 'euler', h: 0.5 },
    { kind: 'fixed', method: 'rk4', h: 0.01 },
    { kind: 'adaptive', method: 'dopri5', rtol: 1e-5, atol: 1e-7 },
  ]);
  t.deepEqual(parseSolverList(' midpoint:steps=4  tsit5:1e-6,maxSteps=50, heun:0.2 '), [
    { kind: 'fixed', method: 'midpoint', steps: 4 },
    { kind: 'adaptive', method: 'tsit5', rtol: 1e-6, atol: 1e-6, maxSteps: 50 },
    { kind: 'fixed', method: 'heun', h: 0.2 },
  ]);
  t.throws(() => parseSolverList(' , '), { instanceOf: SpecError, message: /empty solver list/ });
  t.throws(() => parseSolverList('euler:0.5,foo:1'), {
    instanceOf: SpecError,
    message: /^solver spec "foo:1": unknown solver "foo"; expected one of euler,/,
  });
  t.throws(() => parseSolverList('euler:0.5,0.25'), {
    instanceOf: SpecError,
    message: /^solver spec "euler:0\.5,0\.25": a bare value may only come first and once, got "0\.25"$/,
  });
  t.throws(() => parseSolverList('rk4:0.1,dopri5:0'), { instanceOf: SpecError, message: /"dopri5:0".*must be > 0/ });
});

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const REJECTED: [string, RegExp][] = [
  ['rk45:0.1', /unknown solver "rk45"/],
  ['Euler:0.1', /unknown solver "Euler"/],
  [':0.1', /unknown solver ""/],
  ['euler:0', /step size must be > 0, got 0/],
  ['euler:-0.1', /step size must be > 0, got -0\.1/],
  ['rk4:h=-1', /step size must be > 0/],
  ['rk4:steps=2.5', /steps must be a positive integer, got 2\.5/],
  ['rk4:steps=0', /steps must be a positive integer, got 0/],
  ['rk4:steps=-3', /steps must be a positive integer/],
  ['euler:NaN', /step size must be a finite number, got "NaN"/],
  ['euler:Infinity', /step size must be a finite number/],
  ['euler:1e999', /step size must be a finite number/],
  ['euler:abc', /step size must be a finite number, got "abc"/],
  ['dopri5:Infinity', /tolerance must be a finite number/],
  ['dopri5:rtol=1e-5,atol=nan', /atol must be a finite number, got "nan"/],
  ['dopri5:0', /rtol must be > 0, got 0/],
  ['dopri5:-1e-5', /must be > 0/],
  ['dopri5:rtol=1e-5,atol=0', /atol must be > 0, got 0/],
  ['dopri5:rtol=1e-5', /give a tolerance, or both rtol and atol/],
  ['dopri5:1e-5,maxSteps=10.5', /maxSteps must be a positive integer, got 10\.5/],
  ['dopri5:1e-5,maxSteps=0', /maxSteps must be a positive integer/],
  ['dopri5:1e-5,firstStep=0', /firstStep must be > 0/],
  ['dopri5:1e-5,minStep=-1', /minStep must be > 0/],
  ['euler', /missing value; expected a step size or count, e\.g\. euler:0\.1/],
  ['euler:', /missing value/],
  ['euler:  ', /missing value/],
  ['dopri5', /missing value; expected a tolerance, e\.g\. dopri5:1e-5/],
  ['rk4:h=', /h must be a finite number, got ""/],
  ['rk4:steps', /step size must be a finite number, got "steps"/],
  ['euler:0.1,', /step size must be a finite number, got ""|bare value/],
  ['euler:dt=0.1', /unknown option "dt" for euler; expected h, steps/],
  ['rk4:0.1,rtol=1e-3', /unknown option "rtol" for rk4/],
  ['dopri5:1e-5,steps=10', /unknown option "steps" for dopri5; expected rtol, atol, tol, maxSteps, firstStep, minStep/],
  ['dopri5:1e-5,maxsteps=10', /unknown option "maxsteps"/],
  ['euler:h=0.1,h=0.2', /h given twice/],
  ['dopri5:rtol=1e-5,rtol=1e-6,atol=1e-7', /rtol given twice/],
  // A bare value is h (fixed) or tol (adaptive): naming it again is a duplicate too.
  ['euler:0.1,h=0.2', /h given twice/],
  ['dopri5:1e-5,tol=1e-3', /tol given twice/],
  ['euler:0.1,0.2', /a bare value may only come first and once/],
  ['dopri5:rtol=1e-5,1e-6', /a bare value may only come first and once/],
  ['euler:0.1,steps=10', /give a step size or a step count, not both/],
  ['rk4:h=0.1,steps=10', /not both/],
];

for (const [text, why] of REJECTED) {
  test(`rejects "${text}"`, (t) => {
    const e = t.throws(() => parseSolverSpec(text), { instanceOf: SpecError, message: why });
    // Every message quotes the offending spec string as given.
    t.true(e?.message.startsWith(`solver spec "${text}": `), e?.message);
    t.regex(e!.message, new RegExp(`"${esc(text)}"`));
  });
}

test('fixed grids: h = 0.1 over [0, 1] is exactly 10 steps; a non-dividing h gives a shorter last step', (t) => {
  const spec = (s: string): FixedSolverSpec => parseSolverSpec(s) as FixedSolverSpec;
  const g = fixedGrid(spec('euler:0.1'), 0, 1);
  t.is(g.length, 11);
  t.is(g[0], 0);
  t.is(g[10], 1);
  t.is(fixedStepCount(spec('euler:0.1')), 10);
  for (let k = 0; k < 10; k++) t.true(Math.abs(g[k + 1]! - g[k]! - 0.1) < 1e-12);
  for (const [span, h, n] of [
    [0.3, 0.1, 3],
    [0.7, 0.1, 7],
    [1, 1 / 3, 3],
    [1, 0.25, 4],
    [2, 0.2, 10],
  ] as const) {
    t.is(fixedStepCount(spec(`euler:${h}`), 0, span), n, `${span}/${h}`);
    t.is(fixedGrid(spec(`euler:${h}`), 0, span).length, n + 1, `${span}/${h}`);
  }
  const short = fixedGrid(spec('rk4:0.3'), 0, 1);
  t.is(short.length, 5);
  for (let k = 0; k < 3; k++) t.true(Math.abs(short[k + 1]! - short[k]! - 0.3) < 1e-12);
  t.true(Math.abs(short[4]! - short[3]! - 0.1) < 1e-12);
  t.is(short[4], 1);
  // Backwards: the grid runs from t0 down to t1.
  t.deepEqual(fixedGrid(spec('euler:0.25'), 1, 0), [1, 0.75, 0.5, 0.25, 0]);
  const back = fixedGrid(spec('euler:0.4'), 1, 0);
  t.deepEqual(
    back.map((v) => Math.round(v * 1e12) / 1e12),
    [1, 0.6, 0.2, 0],
  );
  // Step counts split the interval evenly; h beyond the interval is one step.
  t.deepEqual(fixedGrid(spec('rk4:steps=4'), 0, 2), [0, 0.5, 1, 1.5, 2]);
  t.deepEqual(fixedGrid(spec('rk4:steps=3'), 2, -1), [2, 1, 0, -1]);
  t.deepEqual(fixedGrid(spec('heun:5'), 0, 1), [0, 1]);
});

test('solverParam and DEFAULT_MAX_STEPS', (t) => {
  t.is(solverParam(parseSolverSpec('euler:0.1')), 0.1);
  t.is(solverParam(parseSolverSpec('rk4:steps=20')), 0.05);
  t.is(solverParam(parseSolverSpec('rk4:steps=20'), 0, 2), 0.1);
  t.is(solverParam(parseSolverSpec('dopri5:rtol=1e-5,atol=1e-7')), 1e-5);
  t.is(DEFAULT_MAX_STEPS, 10_000);
});

test('every spec is bounded when parsed: a step-count ceiling and a tolerance floor, overridable', (t) => {
  t.deepEqual(DEFAULT_SOLVER_LIMITS, { maxSteps: 100_000, minTol: 1e-10 });
  // At the limits: accepted.
  t.deepEqual(parseSolverSpec('rk4:steps=100000'), { kind: 'fixed', method: 'rk4', steps: 100_000 });
  t.deepEqual(parseSolverSpec('euler:0.00001'), { kind: 'fixed', method: 'euler', h: 1e-5 });
  t.deepEqual(parseSolverSpec('dopri5:rtol=1e-8,atol=1e-10'), {
    kind: 'adaptive',
    method: 'dopri5',
    rtol: 1e-8,
    atol: 1e-10,
  });
  // Beyond them: one-line SpecErrors naming the spec, the value and the limit.
  t.throws(() => parseSolverSpec('rk4:steps=1e9'), {
    instanceOf: SpecError,
    message: /^solver spec "rk4:steps=1e9": steps exceeds the limit of 100000 steps \(raise the limit/,
  });
  t.throws(() => parseSolverSpec('euler:1e-9'), {
    instanceOf: SpecError,
    message:
      /^solver spec "euler:1e-9": step size 1e-9 means 1000000000 steps over \[0, 1\], which exceeds the limit of 100000 steps/,
  });
  t.throws(() => parseSolverSpec('dopri5:1e-300'), {
    instanceOf: SpecError,
    message: /rtol 1e-300 is below the tolerance floor 1e-10/,
  });
  t.throws(() => parseSolverSpec('dopri5:1e-12'), {
    instanceOf: SpecError,
    message: /rtol 1e-12 is below the tolerance floor 1e-10/,
  });
  t.throws(() => parseSolverSpec('dopri5:rtol=1e-6,atol=1e-11'), {
    instanceOf: SpecError,
    message: /atol 1e-11 is below the tolerance floor/,
  });
  t.throws(() => parseSolverSpec('dopri5:1e-5,maxSteps=1000000'), {
    instanceOf: SpecError,
    message: /maxSteps exceeds the limit of 100000 steps/,
  });
  t.throws(() => parseSolverList('rk4:0.1,euler:1e-9'), { instanceOf: SpecError, message: /"euler:1e-9"/ });
  // The library raises them explicitly.
  const wide = { maxSteps: 2_000_000, minTol: 1e-14 };
  t.deepEqual(parseSolverSpec('euler:1e-6', wide), { kind: 'fixed', method: 'euler', h: 1e-6 });
  t.deepEqual(parseSolverSpec('dopri5:1e-12', wide), { kind: 'adaptive', method: 'dopri5', rtol: 1e-12, atol: 1e-12 });
  t.throws(() => parseSolverSpec('rk4:steps=10', { maxSteps: 5, minTol: 1e-10 }), { message: /limit of 5 steps/ });
});
