/**
 * The audits on real trained models (issue: solver-robustness audit): an
 * euler:0.5 model on 2-D dupont2019 spheres has crossing trajectories under
 * its own solver and none under rk4:0.01; its global error at t1 under
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
const data = path.join(tmp, 'points.json');

test.before(async () => {
  const r = await runCli(['train', '--dataset', 'spheres:dupont2019:dim=2', '--solver', 'euler:0.5', '--iterations', '1000', '--seed', '1', '--out', model, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
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

test('crossings > 0 under euler:0.5 and exactly 0 under rk4:0.01 on the same inputs', async (t) => {
  const coarse = await runCli(['audit', 'crossing', '--model', model, '--data', data, '--solver', 'euler:0.5', '--json']);
  const fine = await runCli(['audit', 'crossing', '--model', model, '--data', data, '--solver', 'rk4:0.01', '--json']);
  t.is(coarse.code, 0, coarse.stderr);
  t.is(fine.code, 0, fine.stderr);
  const c = JSON.parse(coarse.stdout);
  const f = JSON.parse(fine.stdout);
  t.log(`euler:0.5 crossings ${c.crossings}, folded ${c.fold.folded}; rk4:0.01 crossings ${f.crossings}, folded ${f.fold.folded}`);
  t.is(c.pairsChecked, (400 * 399) / 2);
  t.true(c.crossings > 0);
  t.is(f.crossings, 0);
  t.true(c.fold.folded > 0, 'the 2-step Euler map folds space');
  t.is(f.fold.folded, 0, 'the fine solve does not');
  t.is(c.verdict.conclusion, 'not-an-ode-flow');
  t.true(c.verdict.proofs.includes('fold'), `proofs: ${c.verdict.proofs}`);
  t.is(f.verdict.conclusion, 'no-evidence');
  t.deepEqual(f.verdict.proofs, []);
});

test("fan: global error at t1 under euler:0.5 is ≥ 100× that under rk4:0.05, with per-class summaries", async (t) => {
  const a = await runCli(['audit', 'fan', '--model', model, '--data', data, '--solver', 'euler:0.5', '--json']);
  const b = await runCli(['audit', 'fan', '--model', model, '--data', data, '--solver', 'rk4:0.05', '--json']);
  t.is(a.code, 0, a.stderr);
  const fa = JSON.parse(a.stdout);
  const fb = JSON.parse(b.stdout);
  t.log(`final mean error: euler:0.5 ${fa.final.mean}, rk4:0.05 ${fb.final.mean}`);
  t.true(fa.final.mean >= 100 * fb.final.mean);
  t.true(fa.final.max >= fa.final.mean);
  t.deepEqual(fa.final.perClass.map((c: { label: number }) => c.label), [0, 1]);
  t.is(fa.times.length, 3);
});

test('critical step size from models trained at several step sizes', async (t) => {
  const dirs: string[] = [];
  for (const h of ['0.5', '0.25', '0.1']) {
    const dir = path.join(tmp, `crit-${h}`);
    const r = await runCli(['train', '--dataset', 'spheres:dupont2019:dim=2,n=512,testN=400', '--solver', `euler:${h}`, '--iterations', h === '0.5' ? '600' : '200', '--out', dir, '--json']);
    t.is(r.code, 0, r.stderr);
    dirs.push(dir);
  }
  const r = await runCli(['audit', 'critical', '--models', ...dirs, '--solvers', 'rk4:0.01,dopri5:1e-6', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.log(out.evidence.map((e: { trainSpec: string; maxDeviation: number }) => `${e.trainSpec}: ${e.maxDeviation.toFixed(3)}`).join(', '));
  t.is(out.evidence.length, 3);
  t.true('criticalStep' in out);
  const e05 = out.evidence.find((e: { trainParam: number }) => e.trainParam === 0.5);
  t.false(e05.pass, 'euler:0.5 is beyond the critical step');
  t.true(out.criticalStep === null || out.criticalStep < 0.5);
});

test('bad input: wrong data width, too few points, threshold outside (0, 1)', async (t) => {
  const wide = path.join(tmp, 'wide.json');
  fs.writeFileSync(wide, JSON.stringify({ x: [[1, 2, 3], [4, 5, 6]], y: [0, 1] }));
  const one = path.join(tmp, 'one.json');
  fs.writeFileSync(one, JSON.stringify({ x: [[0.1, 0.2]], y: [0] }));
  const w = await runCli(['audit', 'fan', '--model', model, '--data', wide, '--solver', 'euler:0.5']);
  t.not(w.code, 0);
  t.regex(w.stderr, /wide\.json.*3 values.*expects 2/);
  const o = await runCli(['audit', 'crossing', '--model', model, '--data', one, '--solver', 'euler:0.5']);
  t.not(o.code, 0);
  t.regex(o.stderr, /at least 2 points, got 1/);
  for (const bad of ['0', '1', '1.5', '-0.1']) {
    const r = await runCli(['audit', 'critical', '--models', model, '--threshold', bad]);
    t.not(r.code, 0);
    t.regex(r.stderr, /threshold must be .*between 0 and 1/);
  }
});

test('--plot writes the figures people look at: trajectories with crossings, the fan, accuracy vs test steps', async (t) => {
  const dir = path.join(tmp, 'plots');
  const a = await runCli(['audit', 'crossing', '--model', model, '--data', data, '--solver', 'euler:0.5', '--no-fold', '--plot', dir]);
  const b = await runCli(['audit', 'fan', '--model', model, '--data', data, '--solver', 'euler:0.5', '--plot', dir]);
  const c = await runCli(['evaluate', '--model', model, '--data', data, '--plot', dir]);
  for (const r of [a, b, c]) t.is(r.code, 0, r.stderr);
  for (const name of ['trajectories', 'fan', 'accuracy-vs-steps']) {
    const svg = fs.readFileSync(path.join(dir, `${name}.svg`), 'utf8');
    t.regex(svg, /^<svg/);
    const png = fs.readFileSync(path.join(dir, `${name}.png`));
    t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}.png signature`);
  }
  t.regex(fs.readFileSync(path.join(dir, 'accuracy-vs-steps.svg'), 'utf8'), /number of test steps/);
});
