/**
 * Step-size adaptation (Ott et al. 2021, Alg. 1) on 2-D spheres: it ends at a
 * step whose model loses ≤ 0.1 accuracy under a finer solver, and spends fewer
 * NFE than a grid over 5 step sizes that reaches the same.
 */
import test from 'ava';
import { initBackend } from '../src/engines/backend.js';
import { evaluateModel } from './helpers/tfjs-evaluate.js';
import { compareGridAdaptation } from '../src/audit/compare.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { trainRun } from '../src/train/run.js';
import { adaptiveAdaptStep, fixedAdaptStep, fixedTestSolver, DEFAULT_ADAPT } from '../src/train/adapt.js';
import { loadDataset } from '../src/data/spec.js';

const base = {
  dataset: 'spheres:dupont2019:dim=2',
  field: 'mlp:width=32',
  seed: 1,
  batchSize: 128,
  lr: 1e-3,
  iterations: 400,
};
const fine = parseSolverSpec('rk4:0.01');

test.before(async () => {
  await initBackend('wasm');
});

test("the paper's test solvers and step rules", async (t) => {
  t.deepEqual(fixedTestSolver({ kind: 'fixed', method: 'euler', h: 0.01 }), {
    kind: 'fixed',
    method: 'midpoint',
    h: 0.01,
  });
  const coarse = fixedTestSolver({ kind: 'fixed', method: 'euler', h: 0.5 });
  t.is(coarse.method, 'midpoint');
  t.true(Math.abs(coarse.h! - Math.sqrt(0.5 / 50)) < 1e-12);
  const mid = fixedTestSolver({ kind: 'fixed', method: 'midpoint', h: 0.5 });
  t.is(mid.method, 'rk4');
  t.true(Math.abs(mid.h! - Math.pow(0.25 / 50, 0.25)) < 1e-12);
  // Disagreement halves h; near the 500-step cap the step count moves halfway to it; at the cap it holds.
  const disagree = async () => ({ accuracy: 0.5, nfe: 1 });
  t.is(
    (await fixedAdaptStep(50, { kind: 'fixed', method: 'euler', h: 0.1 }, 0.9, 10, disagree, DEFAULT_ADAPT)).spec.h,
    0.05,
  );
  const h = 1 / 300;
  const near = (await fixedAdaptStep(50, { kind: 'fixed', method: 'euler', h }, 0.9, 300, disagree, DEFAULT_ADAPT)).spec
    .h!;
  t.true(Math.abs(1 / near - 400) < 1e-6, `steps ${1 / near}`);
  const cap = await fixedAdaptStep(
    50,
    { kind: 'fixed', method: 'euler', h: 1 / 500 },
    0.9,
    500,
    disagree,
    DEFAULT_ADAPT,
  );
  t.is(cap.decision.action, 'hold');
  // Agreement tries 1.1·h and keeps it while the trial agrees with the test accuracy.
  const agree = async () => ({ accuracy: 0.9, nfe: 1 });
  const grown = await fixedAdaptStep(50, { kind: 'fixed', method: 'euler', h: 0.1 }, 0.9, 10, agree, DEFAULT_ADAPT);
  t.is(grown.decision.action, 'grow');
  t.true(Math.abs(grown.spec.h! - 0.11) < 1e-12);
});

test('adaptation keeps ODE semantics and costs fewer NFE than a 5-step-size grid reaching the same', async (t) => {
  const dataset = await loadDataset(base.dataset, base.seed);
  const summarize = async (solver: string, adapt: boolean) => {
    const run = await trainRun({ ...base, solver, adapt: adapt ? {} : false }, { dataset });
    const [own, test] = evaluateModel(run.model, dataset.test, [parseSolverSpec(run.training.solver), fine]);
    const nfe = run.result.nfe;
    return {
      spec: run.training.solver,
      trainAccuracy: own!.accuracy,
      testAccuracy: test!.accuracy,
      totalNfe: nfe.forward + nfe.backward + nfe.checks,
      decisions: run.result.adaptation.length,
    };
  };
  const adaptation = await summarize('euler:0.5', true);
  t.log(
    `adaptation: ${adaptation.spec}, acc ${adaptation.trainAccuracy} / ${adaptation.testAccuracy}, NFE ${adaptation.totalNfe}, ${adaptation.decisions} decisions`,
  );
  t.is(adaptation.decisions, 400 / 50);
  const grid = [];
  for (const h of [0.5, 0.25, 0.125, 0.0625, 0.03125]) grid.push(await summarize(`euler:${h}`, false));
  const cmp = compareGridAdaptation(grid, adaptation);
  for (const r of cmp.grid.runs)
    t.log(
      `grid ${r.spec}: acc ${r.trainAccuracy} / ${r.testAccuracy}, NFE ${r.totalNfe}, ${r.pass ? 'ODE' : 'not ODE'}`,
    );
  t.true(cmp.adaptation.pass, 'the adapted model loses ≤ 0.1 under rk4:0.01');
  t.truthy(cmp.grid.cheapestPassing, 'some grid configuration keeps ODE semantics');
  t.true(
    cmp.adaptation.totalNfe < cmp.grid.totalNfe,
    `adaptation ${cmp.adaptation.totalNfe} NFE vs grid ${cmp.grid.totalNfe}`,
  );
  t.true(cmp.adaptationWins);
});

test('tolerance adaptation: test solver dopri5 at tol/10 made stricter until it costs more NFE; shrink ×0.5, grow ×1.1, hold on 5 equal NFE', async (t) => {
  const spec = parseSolverSpec('bosh3:1e-4') as import('../src/solvers/spec.js').AdaptiveSolverSpec;
  const asked: string[] = [];
  // The test solver's NFE grows as its tolerance tightens: 60 at 1e-5, 90 at 1e-6.
  const accuracy = (acc: (tol: number) => number) => async (s: import('../src/solvers/spec.js').SolverSpec) => {
    const tol = (s as { rtol: number }).rtol;
    asked.push(`${s.method}:${tol.toExponential(0)}`);
    return { accuracy: acc(tol), nfe: Math.round(-30 * Math.log10(tol)) - 90 };
  };
  const fail = await adaptiveAdaptStep(
    50,
    spec,
    0.95,
    70,
    [],
    accuracy(() => 0.5),
    DEFAULT_ADAPT,
  );
  t.deepEqual(
    asked,
    ['dopri5:1e-5', 'dopri5:1e-6'],
    'tol/10 first, then /10 again while its NFE ≤ the training NFE (60 ≤ 70)',
  );
  t.is(fail.decision.action, 'shrink');
  t.is(fail.spec.rtol, 0.5e-4);
  t.is(fail.spec.atol, 0.5e-4);
  const pass = await adaptiveAdaptStep(
    100,
    spec,
    0.95,
    10,
    [],
    accuracy(() => 0.95),
    DEFAULT_ADAPT,
  );
  t.is(pass.decision.action, 'grow');
  t.true(Math.abs(pass.spec.rtol - 1.1e-4) < 1e-15);
  const hold = await adaptiveAdaptStep(
    150,
    spec,
    0.95,
    10,
    [10, 10, 10, 10, 10],
    accuracy(() => 0.95),
    DEFAULT_ADAPT,
  );
  t.is(hold.decision.action, 'hold', 'a looser tolerance buys nothing when the NFE has not changed for 5 checks');
  t.is(hold.spec.rtol, 1e-4);
  asked.length = 0;
  await adaptiveAdaptStep(
    50,
    { ...spec, method: 'fehlberg2' },
    0.95,
    0,
    [],
    accuracy(() => 0.95),
    DEFAULT_ADAPT,
  );
  t.is(asked[0], 'dopri5:2e-5', 'fehlberg2-trained: dopri5 at tol/5');
});
