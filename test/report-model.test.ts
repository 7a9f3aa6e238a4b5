/**
 * The report model from a synthetic study whose numbers are chosen: means
 * over seeds with spread, critical values (plain and censored), the paper's
 * Table 1 per method, audits with their verdicts, adaptation counted once,
 * results outside the plan kept apart.
 */
import test from 'ava';
import { buildReportModel } from '../src/report/model.js';
import { done } from './helpers/metrics.js';
import { ADAPT_FINAL_H, syntheticStudy } from './helpers/synthetic-study.js';

const NOW = '2026-11-29T20:00:00.000Z';

test('grouping, means over seeds and counts', (t) => {
  const s = syntheticStudy();
  const m = buildReportModel({ results: s.results, plan: s.plan }, { generatedAt: NOW });
  t.like(m.counts, { planned: 14, done: 13, failed: 1, pending: 0, notInPlan: 1 });
  t.is(m.generatedAt, NOW);
  t.is(m.sections.length, 1);
  t.like(m.sections[0], { dataset: 'spheres:dupont2019:dim=2', field: 'mlp:width=8,depth=2,act=tanh' });
  const [euler, dopri5] = m.sections[0]!.methods;
  t.is(dopri5!.method, 'dopri5');
  t.is(euler!.method, 'euler');
  t.deepEqual(
    euler!.configs.map((c) => c.trainSpec),
    ['euler:0.5', 'euler:0.25', 'euler:0.1'],
    'largest step first',
  );
  const c05 = euler!.configs[0]!;
  t.deepEqual(c05.seeds, [0, 1]);
  t.is(c05.steps, 2);
  t.is(c05.trainAccuracy!.n, 2);
  t.true(Math.abs(c05.trainAccuracy!.mean - 0.96) < 1e-12);
  t.true(Math.abs(c05.trainAccuracy!.std - 0.01) < 1e-12);
  t.is(c05.trainNfe!.mean, 400);
  const rk4 = c05.evals.find((e) => e.spec === 'rk4:steps=4')!;
  t.is(rk4.accuracy.mean, 0.55);
  t.true(rk4.judges);
  t.false(c05.evals.find((e) => e.spec === 'euler:steps=2')!.judges, 'the training solver itself does not judge');
  t.false(c05.evals.find((e) => e.spec === 'euler:steps=1')!.judges, 'a coarser test solver does not judge');
  // The failed dopri5 1e-4 seed leaves one seed in its configuration.
  t.deepEqual(
    dopri5!.configs.map((c) => [c.trainSpec, c.seeds.length]),
    [
      ['dopri5:0.01', 2],
      ['dopri5:0.0001', 1],
    ],
  );
  t.is(m.jobs.length, 14);
  t.deepEqual(
    m.notInPlan.map((j) => j.id),
    [s.foreign.id],
  );
});

test('critical values: plain, censored above (≥), censored below (<)', (t) => {
  const s = syntheticStudy();
  const m = buildReportModel({ results: s.results, plan: s.plan });
  const [euler, dopri5] = m.sections[0]!.methods;
  t.like(euler!.critical, { kind: 'step', value: 0.25, censored: null, smallestTested: 0.1, largestTested: 0.5 });
  t.like(dopri5!.critical, { kind: 'tol', value: 0.01, censored: 'above' });
  t.true(euler!.testTolerances < 2, 'one reference tolerance: no accuracy-vs-1/tol figure');
  t.true(dopri5!.testTolerances >= 2);
  // Every euler configuration failing: censored below.
  const bad = s.results.map((r) =>
    r.status === 'done' && !r.job.adapt && r.job.trainSolver.startsWith('euler')
      ? done(r.job, { ...r.metrics!, evals: r.metrics!.evals.map((e) => ({ ...e, accuracy: 0.5 })) })
      : r,
  );
  const worse = buildReportModel({ results: bad, plan: s.plan }).sections[0]!.methods[0]!;
  t.like(worse.critical, { value: null, censored: 'below', smallestTested: 0.1 });
  t.is(worse.comparison!.grid, null, 'no grid configuration keeps ODE semantics');
});

test("the paper's Table 1: the grid's cheapest valid run vs the adaptation run, means over seeds", (t) => {
  const s = syntheticStudy();
  const euler = buildReportModel({ results: s.results, plan: s.plan }).sections[0]!.methods[0]!;
  const c = euler.comparison!;
  t.is(c.grid!.trainSpec, 'euler:0.25', 'the cheapest configuration at or below the critical step');
  t.is(c.grid!.trainNfe!.mean, 800);
  t.true(Math.abs(c.grid!.trainAccuracy!.mean - 0.96) < 1e-12);
  t.is(c.gridSearchNfe!.mean, 400 + 800 + 2000, 'per seed: every euler configuration');
  t.is(c.adaptation.trainNfe!.mean, 1600);
  t.is(c.adaptation.trainNfe!.std, 100);
  t.true(Math.abs(c.adaptation.trainAccuracy!.mean - 0.96) < 1e-12);
  t.true(Math.abs(c.adaptation.finalParam!.mean - (ADAPT_FINAL_H + 0.16) / 2) < 1e-12);
  t.is(euler.adaptation!.start, "Hairer's initial step");
  t.is(euler.adaptation!.runs.length, 2);
  t.is(euler.adaptation!.duplicates, 0);
  const dopri5 = buildReportModel({ results: s.results, plan: s.plan }).sections[0]!.methods[1]!;
  t.is(dopri5.adaptation!.start, 'dopri5:0.000001');
});

test('adaptation results repeated by an older plan are counted once', (t) => {
  const s = syntheticStudy();
  const adapt = s.results.filter((r) => r.job.adapt && r.job.trainSolver.startsWith('euler'));
  // Older plans: one identical adaptation job per grid point (other ids, same seed and start).
  const copies = adapt.flatMap((r) =>
    [1, 2, 3].map((k) => done({ ...r.job, id: `${r.id.slice(0, 15)}${k}` }, r.metrics!)),
  );
  const m = buildReportModel({ results: [...s.results, ...copies] });
  const euler = m.sections[0]!.methods[0]!;
  t.is(euler.adaptation!.runs.length, 2);
  t.is(euler.adaptation!.duplicates, 6);
  t.is(euler.comparison!.adaptation.trainNfe!.mean, 1600, 'not 4 × the true cost');
});

test('audits per training configuration with the audit library verdict', (t) => {
  const s = syntheticStudy();
  const euler = buildReportModel({ results: s.results, plan: s.plan }).sections[0]!.methods[0]!;
  const [c05, , c01] = euler.configs;
  t.deepEqual(
    c05!.audits.crossing!.seeds.map((x) => [x.crossings, x.folded, x.verdict.conclusion]),
    [
      [12, 3, 'not-an-ode-flow'],
      [12, 3, 'not-an-ode-flow'],
    ],
  );
  t.deepEqual(
    c01!.audits.crossing!.seeds.map((x) => x.verdict.conclusion),
    ['no-evidence', 'no-evidence'],
  );
  t.deepEqual(
    c05!.audits.fan!.perClass.map((c) => [c.label, c.finalMean.mean]),
    [
      [0, 0.1],
      [1, 0.2],
    ],
  );
  t.deepEqual(c05!.audits.fan!.series!.times, [0, 0.5, 1]);
  t.deepEqual(c05!.audits.fan!.series!.perClass[1]!.mean, [0, 0.1, 0.2]);
});

test('without a plan every result is analysed; a bad threshold is refused', (t) => {
  const s = syntheticStudy();
  const m = buildReportModel({ results: s.results });
  t.is(m.counts.planned, undefined);
  t.is(m.notInPlan.length, 0);
  t.is(m.jobs.length, 15);
  t.throws(() => buildReportModel({ results: s.results }, { threshold: 1 }), {
    message: /threshold must be a number strictly between 0 and 1/,
  });
});

test('sections and methods follow the study order (its plan), not the alphabet: dim=10 after dim=2, euler before dopri5', (t) => {
  const s = syntheticStudy();
  t.deepEqual(
    buildReportModel({ results: s.results, plan: s.plan }).sections[0]!.methods.map((m) => m.method),
    ['euler', 'dopri5'],
  );
  const reversed = { ...s.plan, jobs: [...s.plan.jobs].reverse() };
  t.deepEqual(
    buildReportModel({ results: s.results, plan: reversed }).sections[0]!.methods.map((m) => m.method),
    ['dopri5', 'euler'],
  );
  // Two datasets whose names sort the other way round.
  const moved = s.results.map((r, i) =>
    i % 2
      ? { ...r, job: { ...r.job, dataset: 'spheres:ott2021:dim=10' } }
      : { ...r, job: { ...r.job, dataset: 'spheres:ott2021:dim=2' } },
  );
  t.deepEqual(
    buildReportModel({ results: moved }).sections.map((x) => x.dataset),
    ['spheres:ott2021:dim=2', 'spheres:ott2021:dim=10'],
  );
});
