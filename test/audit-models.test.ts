/**
 * The audits on real trained models (issue: solver-robustness audit): an
 * euler:0.5 model on 2-D dupont2019 spheres is NOT an ODE flow under its own
 * solver (its step folds space); the README's rk4:0.05 model never gets that
 * verdict, whatever the audit solver, because its chord crossings vanish
 * when refined; its global error at t1 under
 * euler:0.5 is ≥ 100× that under rk4:0.05; the critical step size comes out
 * of models trained at several steps; bad input fails clearly.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-audit-'));
const model = path.join(tmp, 'euler05');
const rk4Model = path.join(tmp, 'rk4-005');
const data = path.join(tmp, 'points.json');

test.before(async () => {
  // The README's two models (the rk4 one with fewer iterations: any smooth field shows the chord artefacts).
  const [r, q] = await Promise.all([
    runCli([
      'train',
      '--dataset',
      'spheres:dupont2019:dim=2',
      '--solver',
      'euler:0.5',
      '--iterations',
      '1000',
      '--seed',
      '1',
      '--out',
      model,
      '--json',
    ]),
    runCli([
      'train',
      '--dataset',
      'spheres:dupont2019:dim=2',
      '--field',
      'mlp:width=32',
      '--solver',
      'rk4:0.05',
      '--iterations',
      '300',
      '--seed',
      '1',
      '--out',
      rk4Model,
      '--json',
    ]),
  ]);
  if (r.code !== 0) throw new Error(r.stderr);
  if (q.code !== 0) throw new Error(q.stderr);
  // 400 test-split points as a JSON data file.
  const xs: number[][] = [];
  const ys: number[] = [];
  for (let i = 0; i < 400; i++) {
    const a = (2 * Math.PI * i) / 400;
    const radius = i % 2 === 0 ? 0.4 * ((i % 7) / 7) : 1.05 + 0.4 * ((i % 5) / 5);
    xs.push([radius * Math.cos(a), radius * Math.sin(a)]);
    ys.push(i % 2 === 0 ? 0 : 1);
  }
  fs.writeFileSync(data, JSON.stringify({ x: xs, y: ys }));
});

test('euler:0.5 model: NOT an ODE flow under its own solver, resting on the fold; no proof under rk4:0.01', async (t) => {
  const coarse = await runCli(
    ['audit', 'crossing', '--model', model, '--dataset', `json:${data}:split=none`, '--solver', 'euler:0.5', '--json'],
    { timeoutMs: 300_000 },
  );
  const fine = await runCli(
    ['audit', 'crossing', '--model', model, '--dataset', `json:${data}:split=none`, '--solver', 'rk4:0.01', '--json'],
    { timeoutMs: 300_000 },
  );
  t.is(coarse.code, 0, coarse.stderr);
  t.is(fine.code, 0, fine.stderr);
  const c = JSON.parse(coarse.stdout);
  const f = JSON.parse(fine.stdout);
  t.log(
    `euler:0.5 crossings ${c.crossings}, folded ${c.fold.folded}; rk4:0.01 crossings ${f.crossings} (artefacts ${f.refinement?.artefactPairs ?? 0}), folded ${f.fold.folded}`,
  );
  t.is(c.pairsChecked, (400 * 399) / 2);
  t.true(c.crossings > 0);
  t.true(c.fold.folded > 0, 'the 2-step Euler map folds space');
  t.is(f.crossings, 0);
  t.is(f.fold.folded, 0, 'the fine solve does not');
  t.is(c.verdict.conclusion, 'not-an-ode-flow');
  t.true(c.verdict.proofs.includes('fold'), `proofs: ${c.verdict.proofs}`);
  t.regex(c.verdict.text, /^NOT an ODE flow under euler:0\.5 — proof: a step folds space/);
  t.deepEqual(f.verdict.proofs, []);
  t.not(f.verdict.conclusion, 'not-an-ode-flow');
  const text = await runCli(
    ['audit', 'crossing', '--model', model, '--dataset', `json:${data}:split=none`, '--solver', 'euler:0.5'],
    { timeoutMs: 300_000 },
  );
  t.regex(text.stdout, /verdict: NOT an ODE flow under euler:0\.5 — proof: a step folds space/);
  t.regex(text.stdout, /rests on: fold/);
});

test('rk4:0.05 model: no NOT verdict under dopri5:1e-8, rk4:0.01 or its own solver, though chords cross', async (t) => {
  let crossings = 0;
  for (const solver of ['dopri5:1e-8', 'rk4:0.01', 'rk4:0.05']) {
    // 250 points keep the fold check and refinement quick; a generous limit for a loaded machine.
    const r = await runCli(
      [
        'audit',
        'crossing',
        '--model',
        rk4Model,
        '--dataset',
        `json:${data}:split=none`,
        '--max-points',
        '250',
        '--solver',
        solver,
        '--json',
      ],
      { timeoutMs: 300_000 },
    );
    t.is(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout);
    t.log(
      `${solver}: ${a.crossings} crossing pairs, ${a.refinement?.artefactPairs ?? 0} artefacts, folded ${a.fold.folded}, min det ${a.fold.minDet.toFixed(3)}`,
    );
    t.not(a.verdict.conclusion, 'not-an-ode-flow', `${solver}: ${a.verdict.text}`);
    t.deepEqual(a.verdict.proofs, []);
    t.is(a.fold.folded, 0);
    t.is(a.verdict.evidence.crossings, a.crossings);
    if (a.crossings > 0) t.is(a.refinement.artefactPairs + a.refinement.unresolvedPairs, a.crossings);
    crossings += a.crossings;
  }
  t.true(crossings > 0, 'the chords of nearby orbits cross under some audit step: refinement is exercised');
});

test('fan: global error at t1 under euler:0.5 is ≥ 100× that under rk4:0.05, with per-class summaries', async (t) => {
  const a = await runCli([
    'audit',
    'fan',
    '--model',
    model,
    '--dataset',
    `json:${data}:split=none`,
    '--solver',
    'euler:0.5',
    '--json',
  ]);
  const b = await runCli([
    'audit',
    'fan',
    '--model',
    model,
    '--dataset',
    `json:${data}:split=none`,
    '--solver',
    'rk4:0.05',
    '--json',
  ]);
  t.is(a.code, 0, a.stderr);
  const fa = JSON.parse(a.stdout);
  const fb = JSON.parse(b.stdout);
  t.log(`final mean error: euler:0.5 ${fa.final.mean}, rk4:0.05 ${fb.final.mean}`);
  t.true(fa.final.mean >= 100 * fb.final.mean);
  // The per-class summaries partition the points: counts, a count-weighted mean and the max agree with the totals.
  type Final = { label: number; count: number; mean: number; max: number };
  const classes: Final[] = fa.final.perClass;
  t.deepEqual(
    classes.map((c) => c.label),
    [0, 1],
  );
  t.deepEqual(
    classes.map((c) => c.count),
    [200, 200],
  );
  const weighted = classes.reduce((s, c) => s + c.count * c.mean, 0) / 400;
  t.true(Math.abs(weighted - fa.final.mean) <= 1e-12 * fa.final.mean, `${weighted} vs ${fa.final.mean}`);
  t.is(fa.final.max, Math.max(...classes.map((c) => c.max)));
  // Both trajectories start at the same encoded state: no error at t0, an error at every later time.
  t.is(fa.times.length, 3);
  t.is(fa.all.mean[0], 0);
  t.true(fa.all.mean[1] > 0 && fa.all.mean[2] > 0);
});

test('critical step size from models trained at several step sizes', async (t) => {
  const dirs: string[] = [];
  for (const h of ['0.5', '0.25', '0.1']) {
    const dir = path.join(tmp, `crit-${h}`);
    const r = await runCli([
      'train',
      '--dataset',
      'spheres:dupont2019:dim=2,n=512,testN=400',
      '--solver',
      `euler:${h}`,
      '--iterations',
      h === '0.5' ? '600' : '200',
      '--out',
      dir,
      '--json',
    ]);
    t.is(r.code, 0, r.stderr);
    dirs.push(dir);
  }
  const r = await runCli(['audit', 'critical', '--model', ...dirs, '--solvers', 'rk4:0.01,dopri5:1e-6', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.log(
    out.evidence
      .map((e: { trainSpec: string; maxDeviation: number }) => `${e.trainSpec}: ${e.maxDeviation.toFixed(3)}`)
      .join(', '),
  );
  t.is(out.evidence.length, 3);
  t.true('criticalStep' in out);
  const e05 = out.evidence.find((e: { trainParam: number }) => e.trainParam === 0.5);
  t.false(e05.pass, 'euler:0.5 is beyond the critical step');
  t.true(out.criticalStep === null || out.criticalStep < 0.5);
});

test('bad input: wrong data width, too few points, threshold outside (0, 1)', async (t) => {
  const wide = path.join(tmp, 'wide.json');
  fs.writeFileSync(
    wide,
    JSON.stringify({
      x: [
        [1, 2, 3],
        [4, 5, 6],
      ],
      y: [0, 1],
    }),
  );
  const one = path.join(tmp, 'one.json');
  fs.writeFileSync(one, JSON.stringify({ x: [[0.1, 0.2]], y: [0] }));
  const w = await runCli([
    'audit',
    'fan',
    '--model',
    model,
    '--dataset',
    `json:${wide}:split=none`,
    '--solver',
    'euler:0.5',
  ]);
  t.not(w.code, 0);
  t.regex(w.stderr, /wide\.json.*3 values.*expects 2/);
  const o = await runCli([
    'audit',
    'crossing',
    '--model',
    model,
    '--dataset',
    `json:${one}:split=none`,
    '--solver',
    'euler:0.5',
  ]);
  t.not(o.code, 0);
  t.regex(o.stderr, /at least 2 points, got 1/);
  for (const bad of ['0', '1', '1.5', '-0.1']) {
    const r = await runCli(['audit', 'critical', '--model', model, '--threshold', bad]);
    t.not(r.code, 0);
    t.regex(r.stderr, /threshold must be .*between 0 and 1/);
  }
});

test('--plot writes the figures people look at: trajectories with crossings, the fan, accuracy vs test steps', async (t) => {
  const dir = path.join(tmp, 'plots');
  const a = await runCli([
    'audit',
    'crossing',
    '--model',
    model,
    '--dataset',
    `json:${data}:split=none`,
    '--solver',
    'euler:0.5',
    '--no-fold',
    '--no-refine',
    '--plot',
    dir,
  ]);
  const b = await runCli([
    'audit',
    'fan',
    '--model',
    model,
    '--dataset',
    `json:${data}:split=none`,
    '--solver',
    'euler:0.5',
    '--plot',
    dir,
  ]);
  const c = await runCli(['evaluate', '--model', model, '--dataset', `json:${data}:split=none`, '--plot', dir]);
  for (const r of [a, b, c]) t.is(r.code, 0, r.stderr);
  for (const name of ['trajectories', 'fan', 'accuracy-vs-steps']) {
    const svg = fs.readFileSync(path.join(dir, `${name}.svg`), 'utf8');
    t.regex(svg, /^<svg/);
    const png = fs.readFileSync(path.join(dir, `${name}.png`));
    t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}.png signature`);
  }
  t.regex(fs.readFileSync(path.join(dir, 'accuracy-vs-steps.svg'), 'utf8'), /number of test steps/);
});
