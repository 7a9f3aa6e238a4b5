/**
 * The study's main job end to end on the embedded default: a tiny grid +
 * adaptation study on the local pool, then the HTML report — self-contained
 * (no network references), with the accuracy-vs-steps figure, the critical
 * step, the job table and grid vs adaptation.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli.js';

test('study run → report: self-contained HTML with figures, critical step, jobs, grid vs adaptation', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-report-'));
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
  const lines = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, 4);
  for (const r of lines) {
    t.is(r.status, 'done', r.error);
    t.true(r.metrics.trainAccuracy >= 0 && r.metrics.trainAccuracy <= 1);
    t.true(r.metrics.evals.length >= 10, 'the paper test set');
    t.true(typeof r.metrics.audits.crossing.crossings === 'number');
    t.true(r.metrics.audits.fan.final.mean >= 0);
    t.true(fs.existsSync(path.join(out, 'models', r.id, 'field.onnx')));
    t.true(fs.existsSync(path.join(out, 'models', r.id, 'model', 'model.json')));
  }
  const adapted = lines.filter((r) => r.job.adapt);
  t.is(adapted.length, 2);
  for (const r of adapted) t.is(r.metrics.adaptation.decisions, 2, '100 iterations / checks every 50');

  const rep = await runCli(['study', 'report', out]);
  t.is(rep.code, 0, rep.stderr);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  t.false(/https?:\/\//.test(html), 'no network references');
  t.false(/<script|<link /i.test(html));
  t.regex(html, /<svg/);
  t.regex(html, /Grid search vs adaptation/);
  t.regex(html, /euler:0\.5/);
  t.true(fs.readdirSync(path.join(out, 'figures')).some((f) => f.endsWith('.svg')));
  // The exported bundles of a study are real: re-evaluate one from the CLI.
  const ev = await runCli(['evaluate', '--bundle', path.join(out, 'models', lines[0].id), '--solvers', 'rk4:0.1', '--json']);
  t.is(ev.code, 0, ev.stderr);
  t.is(JSON.parse(ev.stdout).results.length, 1);
});
