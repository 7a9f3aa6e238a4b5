import test from 'ava';
import { SpecError } from '../src/errors.js';
import { atLeastAsAccurate, criticalStep, type CriticalRow } from '../src/audit/critical.js';

const row = (h: number, train: number, tests: number[]): CriticalRow => ({
  trainSpec: `euler:${h}`,
  trainParam: h,
  trainAccuracy: train,
  tests: tests.map((a, i) => ({ spec: `test${i}`, accuracy: a })),
});

test('monotone case: critical = largest passing h', (t) => {
  const r = criticalStep([
    row(0.5, 0.99, [0.5, 0.6]),
    row(0.01, 0.98, [0.97, 0.99]),
    row(0.1, 0.97, [0.93, 0.95]),
    row(0.25, 0.98, [0.8, 0.95]),
  ]);
  t.is(r.critical, 0.1);
  t.is(r.largestPassing, 0.1);
  t.is(r.smallestFailing, 0.25);
  t.true(r.monotone);
  t.is(r.threshold, 0.1);
  t.is(r.kind, 'step');
  t.deepEqual(
    r.evidence.map((e) => e.trainParam),
    [0.01, 0.1, 0.25, 0.5],
  );
  t.deepEqual(
    r.evidence.map((e) => e.pass),
    [true, true, false, false],
  );
  t.true(Math.abs(r.evidence[2]!.maxDeviation - 0.18) < 1e-12);
  t.is(r.evidence[2]!.worstTest, 'test0');
  t.is(r.evidence[0]!.tests.length, 2);
  t.is(r.evidence[0]!.id, undefined);
  const withId = criticalStep([{ ...row(0.2, 0.9, [0.9]), id: 'job-7' }]);
  t.is(withId.evidence[0]!.id, 'job-7');
});

test('non-monotone case: a larger h passes while a smaller fails', (t) => {
  const r = criticalStep([row(0.05, 0.99, [0.98]), row(0.1, 0.95, [0.7]), row(0.2, 0.9, [0.85]), row(0.4, 0.9, [0.5])]);
  t.is(r.critical, 0.05);
  t.is(r.largestPassing, 0.2);
  t.is(r.smallestFailing, 0.1);
  t.false(r.monotone);
  // Smallest fails: no critical value at all, but a larger one still passes.
  const s = criticalStep([row(0.05, 0.99, [0.5]), row(0.1, 0.95, [0.94])]);
  t.is(s.critical, null);
  t.is(s.largestPassing, 0.1);
  // Everything fails.
  const f = criticalStep([row(0.05, 0.99, [0.5])]);
  t.is(f.critical, null);
  t.is(f.largestPassing, null);
  // Everything passes.
  const p = criticalStep([row(0.05, 0.99, [0.99]), row(1, 0.9, [0.85])]);
  t.is(p.critical, 1);
  t.is(p.smallestFailing, null);
});

test('threshold boundary is inclusive; test accuracy above train also counts', (t) => {
  t.true(criticalStep([row(0.1, 0.5, [0.75])], { threshold: 0.25 }).evidence[0]!.pass);
  t.false(criticalStep([row(0.1, 0.5, [0.76])], { threshold: 0.25 }).evidence[0]!.pass);
  t.false(criticalStep([row(0.1, 0.5, [0.24])], { threshold: 0.25 }).evidence[0]!.pass);
  t.true(criticalStep([row(0.1, 0.8, [0.7])]).evidence[0]!.pass); // 0.8 − 0.7 = 0.10000000000000009 in floats
});

test('seeds at the same value: the value passes only if every row passes; NaN fails', (t) => {
  const r = criticalStep([row(0.1, 0.9, [0.9]), row(0.1, 0.9, [0.6]), row(0.05, 0.9, [0.9]), row(0.05, 0.9, [0.88])]);
  t.deepEqual(r.params, [
    { param: 0.05, pass: true, rows: 2 },
    { param: 0.1, pass: false, rows: 2 },
  ]);
  t.is(r.critical, 0.05);
  const nan = criticalStep([row(0.1, 0.9, [0.9, NaN])]);
  t.false(nan.evidence[0]!.pass);
  t.true(Number.isNaN(nan.evidence[0]!.maxDeviation));
  t.is(nan.evidence[0]!.worstTest, 'test1');
});

test('tolerances use the same rule', (t) => {
  const r = criticalStep(
    [
      {
        trainSpec: 'dopri5:1e-2',
        trainParam: 1e-2,
        trainAccuracy: 0.95,
        tests: [{ spec: 'dopri5:1e-3', accuracy: 0.7 }],
      },
      {
        trainSpec: 'dopri5:1e-4',
        trainParam: 1e-4,
        trainAccuracy: 0.95,
        tests: [{ spec: 'dopri5:1e-5', accuracy: 0.94 }],
      },
    ],
    { kind: 'tol' },
  );
  t.is(r.kind, 'tol');
  t.is(r.critical, 1e-4);
});

test('invalid threshold, empty input and bad rows are SpecErrors', (t) => {
  for (const threshold of [0, 1, -0.1, 1.5, NaN]) {
    t.throws(() => criticalStep([row(0.1, 0.9, [0.9])], { threshold }), {
      instanceOf: SpecError,
      message: /strictly between 0 and 1/,
    });
  }
  t.throws(() => criticalStep([]), { instanceOf: SpecError, message: /no rows/ });
  t.throws(() => criticalStep([row(0.1, 0.9, [])]), { instanceOf: SpecError, message: /no test results/ });
  t.throws(() => criticalStep([row(0, 0.9, [0.9])]), { instanceOf: SpecError, message: /positive/ });
});

test('only test solvers at least as accurate as the training solver judge ODE semantics', (t) => {
  t.true(atLeastAsAccurate('euler:0.1', 'midpoint:steps=10'));
  t.true(atLeastAsAccurate('euler:0.1', 'rk4:steps=20'));
  t.false(atLeastAsAccurate('euler:0.1', 'euler:steps=5'), 'fewer steps');
  t.false(atLeastAsAccurate('rk4:0.1', 'euler:steps=20'), 'lower order');
  t.true(atLeastAsAccurate('rk4:0.1', 'dopri5:1e-6'));
  t.true(atLeastAsAccurate('dopri5:1e-4', 'dopri5:1e-5'));
  t.false(atLeastAsAccurate('dopri5:1e-4', 'dopri5:1e-3'), 'looser tolerance');
  t.false(atLeastAsAccurate('dopri5:1e-4', 'rk4:0.01'), 'fixed test of an adaptive model: not comparable');
});
