/**
 * The study's main job end to end: a tiny grid + adaptation study with both
 * audits on the local pool, then the HTML report. The recorded metrics are
 * checked against the stored bundles (re-evaluating and re-auditing them
 * reproduces every number), the plan against the study (one adaptation run
 * per method), and the report for what the study asked: figures, critical
 * step, grid vs adaptation, crossings with their verdict, the fan per class.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { readResults } from '../src/study/store.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/procs.js';

test('study run → report: metrics reproduced from the bundles, one adaptation run per method, audits and figures in the report', async (t) => {
  const dir = tempDir('odeness-report-');
  const file = path.join(dir, 'study.yaml');
  fs.writeFileSync(
    file,
    [
      'name: tiny',
      'datasets: ["spheres:dupont2019:dim=2,n=256,testN=100"]',
      'field: mlp:width=8',
      'grid: [{solver: euler, steps: [0.5, 0.1]}]',
      'adapt: both',
      'seeds: 1',
      'iterations: 100',
      'batchSize: 32',
      'lr: 0.01',
      'testSolvers: paper',
      'audits: {crossing: true, fan: true}',
    ].join('\n'),
  );
  const out = path.join(dir, 'out');
  const run = await runCli(['study', 'run', file, '--out', out, '--workers', '2']);
  t.is(run.code, 0, run.stderr);
  const results = [...readResults(out).final.values()];
  t.is(results.length, 3, '2 grid jobs + 1 adaptation job (one per method, not one per grid point)');
  t.true(
    results.every((r) => r.status === 'done'),
    results.map((r) => r.error).join('; '),
  );
  const [adapted, ...grid] = [...results].sort((a, b) => Number(b.job.adapt) - Number(a.job.adapt));
  t.like(adapted!.job, { trainSolver: 'euler:steps=1', adaptStart: 'hairer' });
  t.is(adapted!.metrics!.adaptation!.decisions, 2, '100 iterations / checks every 50');
  t.not(adapted!.metrics!.trainSolver, 'euler:steps=1', "training moved off the placeholder to Hairer's step");
  t.true(adapted!.metrics!.evals.length >= 10, 'the paper test set around the final step');

  for (const r of [grid[0]!, adapted!]) {
    const m = r.metrics!;
    const bundle = path.join(out, 'models', r.id);
    t.true(fs.existsSync(path.join(bundle, 'model', 'model.json')));
    // Accuracies: the bundle re-evaluated under the training solver and a test solver.
    const test0 = m.evals[0]!;
    const ev = await runCli(['evaluate', '--bundle', bundle, '--solvers', `${m.trainSolver},${test0.spec}`, '--json']);
    t.is(ev.code, 0, ev.stderr);
    const rows = JSON.parse(ev.stdout).results as { accuracy: number; nfe: number }[];
    t.deepEqual(
      rows.map((x) => x.accuracy),
      [m.trainAccuracy, test0.accuracy],
    );
    t.is(rows[1]!.nfe, test0.nfe);
    // Audits: the same points under the same solver give the same crossings and fan.
    const cr = await runCli([
      'audit',
      'crossing',
      '--bundle',
      bundle,
      '--solver',
      m.trainSolver,
      '--max-points',
      '100',
      '--json',
    ]);
    t.is(cr.code, 0, cr.stderr);
    const c = JSON.parse(cr.stdout);
    t.is(m.audits!.crossing!.crossings, c.crossings);
    t.is(m.audits!.crossing!.pairsChecked, (100 * 99) / 2);
    t.is(m.audits!.crossing!.folded, c.fold.folded);
    const fan = await runCli([
      'audit',
      'fan',
      '--bundle',
      bundle,
      '--solver',
      m.trainSolver,
      '--max-points',
      '100',
      '--json',
    ]);
    t.is(fan.code, 0, fan.stderr);
    const f = JSON.parse(fan.stdout);
    t.is(m.audits!.fan!.final.mean, f.final.mean);
    t.deepEqual(
      m.audits!.fan!.final.perClass.map((x) => x.label),
      [0, 1],
    );
    t.is(m.audits!.fan!.series!.times.at(-1), 1);
  }

  // study run already wrote the final report; study report rewrites it the same way.
  t.true(fs.existsSync(path.join(out, 'report.html')));
  t.false(
    fs.readFileSync(path.join(out, 'report.html'), 'utf8').includes('http-equiv="refresh"'),
    'the final page does not reload',
  );
  const rep = await runCli(['study', 'report', out]);
  t.is(rep.code, 0, rep.stderr);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  t.false(/https?:\/\/|<script|<link /i.test(html), 'self-contained');
  t.regex(html, /Grid search vs adaptation/);
  t.regex(html, /start: Hairer&#39;s initial step/);
  t.regex(html, /Trajectory crossings and folds/);
  t.true(html.includes("Lady Windermere's fan: global error at t = 1 per class"));
  t.regex(html, /no crossing found|NOT an ODE flow|a hint, not proof/, 'the verdict');
  const figures = fs.readdirSync(path.join(out, 'figures'));
  t.true(figures.some((x) => x.endsWith('-euler-steps.svg')));
  t.true(figures.some((x) => x.endsWith('-euler-fan.svg')));
  t.false(
    figures.some((x) => x.endsWith('-euler-tol.svg')),
    'no adaptive test solvers: no tolerance figure',
  );
  const model = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  t.is(model.sections[0].methods[0].configs.length, 2);
  t.is(model.sections[0].methods[0].adaptation.runs.length, 1);
});
