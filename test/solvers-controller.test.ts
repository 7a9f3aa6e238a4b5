/**
 * The Solver value (a spec resolved once into tableau and step-size controller),
 * the two controllers the one integrate loop asks between steps, and Hairer's
 * initial step written once with the norm as a parameter — used by the
 * adaptive controller and by both training engines.
 */
import test from 'ava';
import { initBackend } from '../src/engines/backend.js';
import { float64Ops } from '../src/engines/typed.js';
import { SolveError } from '../src/errors.js';
import { ConstantStepSize, fixedGrid, PIDController, type StepController } from '../src/solvers/controller.js';
import { initialStep, initialStepFrom } from '../src/solvers/initial-step.js';
import { drive } from '../src/solvers/integrate.js';
import { asSolver, parseSolver, resolveSolver, withStep, withTolerance } from '../src/solvers/solver.js';
import type { AdaptiveSolver, FixedSolver } from '../src/solvers/solver.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { getTableau } from '../src/solvers/tableau.js';
import { OrtEngine } from '../src/train/ort-engine.js';
import { createTfjsEngine } from '../src/train/tfjs-engine.js';
import { configFor, randomBatch, randomModel } from './helpers/ort-compare.js';

test('a spec resolves once into its tableau and controller; a Solver passes through asSolver', (t) => {
  const fixed = parseSolver('rk4:0.3') as FixedSolver;
  t.is(fixed.kind, 'fixed');
  t.is(fixed.tableau, getTableau('rk4'));
  t.true(fixed.controller instanceof ConstantStepSize);
  t.true(Object.isFrozen(fixed));
  t.is(asSolver(fixed), fixed);
  const adaptive = parseSolver('dopri5:rtol=1e-4,atol=1e-6,maxSteps=50') as AdaptiveSolver;
  t.is(adaptive.kind, 'adaptive');
  t.true(adaptive.controller instanceof PIDController);
  t.is(adaptive.controller.maxSteps, 50);
  // The spec's kind picks the controller: a fixed grid may run an embedded pair (the order tests do).
  t.is(resolveSolver({ kind: 'fixed', method: 'dopri5', steps: 4 }).kind, 'fixed');
  // A new step size or tolerance is a new spec over the same tableau.
  const finer = withStep(fixed, 0.1);
  t.is(finer.tableau, fixed.tableau);
  t.deepEqual(finer.spec, parseSolverSpec('rk4:0.1'));
  const looser = withTolerance(adaptive, 1e-3);
  t.deepEqual(looser.spec, { ...adaptive.spec, rtol: 1e-3, atol: 1e-3 });
  t.is(looser.controller.maxSteps, 50);
});

test('ConstantStepSize: steps land on the grid points and are always accepted', (t) => {
  const c: StepController = parseSolver('euler:0.3').controller;
  t.deepEqual(c.stops(0, 1, [0.5, 1]), fixedGrid(parseSolverSpec('euler:0.3') as never, 0, 1).slice(1));
  t.is(c.stops(0, 1, [1]).length, 4);
  t.deepEqual(c.adapt(1e9, 0.3, 0), { accept: true, hNext: Infinity });
  t.is(c.ratio, undefined, 'no error control: the loop checks finiteness itself');
  t.is(c.maxSteps, Infinity);
});

test('PIDController: accept at ratio ≤ 1, 0.9·ratio^(−1/order) within [0.2, 10]; accepted steps never shrink', (t) => {
  const c: StepController = parseSolver('bosh3:1e-4').controller; // order 3
  t.deepEqual(c.stops(0, 1, [0.5, 1]), [0.5, 1], 'lands on every requested time');
  t.deepEqual(c.adapt(0, 0.1, 0), { accept: true, hNext: 0.1 * 10 });
  t.deepEqual(c.adapt(1, 0.1, 0), { accept: true, hNext: 0.1 }, 'factor 0.9 is raised to 1 for an accepted step');
  const near = (d: { accept: boolean; hNext: number }, accept: boolean, hNext: number) =>
    d.accept === accept && Math.abs(d.hNext / hNext - 1) < 1e-12;
  t.true(near(c.adapt(1e-3, 0.1, 0), true, 0.1 * 0.9 * 10));
  t.true(near(c.adapt(8, 0.1, 0), false, 0.1 * 0.9 * 0.5));
  t.deepEqual(c.adapt(1e12, 0.1, 0), { accept: false, hNext: 0.1 * 0.2 });
  const one = Float64Array.of(1);
  t.is(c.ratio!(float64Ops, Float64Array.of(NaN), one, one), Infinity, 'a NaN error estimate forces a rejection');
  const scaled = c.ratio!(float64Ops, Float64Array.of(2e-4), one, Float64Array.of(3));
  t.true(Math.abs(scaled - 0.5) < 1e-12, 'scaled by the larger of the two states');
  const floored = parseSolver('bosh3:1e-4,minStep=0.05').controller;
  t.is(floored.adapt(8, 0.06, 0).hNext, 0.05);
  const atFloor = /^bosh3: a step of minStep=0\.05 was rejected at t=0\.5 /;
  t.throws(() => floored.adapt(8, 0.05, 0.5), { instanceOf: SolveError, message: atFloor });
  const nan = 'bosh3: state became NaN/Inf near t=0.5';
  t.throws(() => c.adapt(Infinity, 1e-16, 0.5), { instanceOf: SolveError, message: nan });
});

test("Hairer's initial step: the adaptive controller's first step, in its scaled norm; firstStep, minStep override", (t) => {
  // dz/dt = −2z: f0 = −2·z0, and f1 − f0 = 0.02·z0 after the probe step h0 = 0.01·d0/d1 = 0.005.
  let calls = 0;
  const field = (_t: number, z: Float64Array) => (calls++, float64Ops.combine(undefined, [-2], [z]));
  const z0 = Float64Array.of(1, 2);
  const f0 = field(0, z0);
  const norm = (v: Float64Array) => float64Ops.scaledRms(v, 1e-4, 1e-4, [z0]);
  const d0 = norm(z0);
  const expected = Math.min(0.5, Math.pow(0.01 / (4 * d0), 1 / 4));
  const h = drive(initialStep(float64Ops, norm, 3, 0, z0, f0), field);
  t.true(Math.abs(h / expected - 1) < 1e-9, `${h} vs ${expected}`);
  t.is(drive(parseSolver('bosh3:1e-4').controller.init(float64Ops, 0, z0, f0, 1), field), h);
  calls = 0;
  t.is(drive(initialStepFrom(float64Ops, norm, 3, 0, z0), field), h);
  t.is(calls, 2, 'f0 and one probe');
  t.is(drive(parseSolver('bosh3:1e-4,firstStep=0.3').controller.init(float64Ops, 0, z0, f0, 1), field), 0.3);
  t.is(drive(parseSolver('bosh3:1e-4,minStep=0.5').controller.init(float64Ops, 0, z0, f0, 1), field), 0.5);
});

test("both training engines take Hairer's step from that function, in the mean per-sample norm", async (t) => {
  await initBackend('wasm');
  const config = configFor('mlp:width=8,act=tanh,time', [3], 1, 3);
  const model = randomModel(config, 1);
  const { x } = randomBatch(config, 16, 11);
  const ort = await OrtEngine.create(model, { batchSize: 16, lr: 1e-3 });
  const tfjs = createTfjsEngine(model, { batchSize: 16, lr: 1e-3 });
  try {
    for (const order of [1, 4]) {
      const [a, b] = [await ort.initialStep(x, order), await tfjs.initialStep(x, order)];
      t.true(a > 0 && Math.abs(a / b - 1) < 1e-5, `order ${order}: ort ${a} vs tfjs ${b}`);
    }
  } finally {
    await ort.dispose();
    await tfjs.dispose();
  }
});
