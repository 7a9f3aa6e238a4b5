/**
 * Issue 24, finding 9: `study plan` gave 331 h to 936 h for the same study
 * over five calls. The calibration is measured once per machine and cached:
 * repeated calls give the same estimate; --recalibrate measures again.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli.js';

test('study plan: the same estimate on repeated calls (cached calibration), --recalibrate measures again', async (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-cache-'));
  t.teardown(() => fs.rmSync(cache, { recursive: true, force: true }));
  const env = { ODENESS_CACHE_DIR: cache };
  const plan = async (...extra: string[]) => {
    const r = await runCli(['study', 'plan', 'examples/quick-spheres.yaml', '--json', ...extra], { env });
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).estimate as {
      wallMs: number;
      groups: { cost: { cached: boolean; measuredAt: string } }[];
    };
  };
  const first = await plan();
  t.false(first.groups[0]!.cost.cached);
  t.true(fs.existsSync(path.join(cache, 'calibration.json')));
  const again = await Promise.all([plan(), plan()]);
  for (const e of again) {
    t.true(e.groups[0]!.cost.cached);
    t.is(e.wallMs, first.wallMs, 'identical, not within noise');
  }
  const fresh = await plan('--recalibrate');
  t.false(fresh.groups[0]!.cost.cached);
  t.not(fresh.groups[0]!.cost.measuredAt, first.groups[0]!.cost.measuredAt);
});

test('a plan with grids beyond 32 stages times one more build at its largest; an entry cached without it is measured again', async (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-cache-'));
  t.teardown(() => fs.rmSync(cache, { recursive: true, force: true }));
  const study = (stepCounts: number[]) => {
    const file = path.join(cache, `s${stepCounts.join('-')}.json`);
    const doc = {
      datasets: ['spheres:dupont2019:dim=2,n=64,testN=20'],
      field: 'mlp:width=8',
      grid: [{ solver: 'euler', stepCounts }],
      iterations: 2,
      batchSize: 16,
      testSolvers: ['rk4:steps=2'],
    };
    fs.writeFileSync(file, JSON.stringify(doc));
    return file;
  };
  type Cost = { cached: boolean; buildTail?: { stages: number; ms: number } };
  const plan = async (file: string) => {
    const r = await runCli(['study', 'plan', file, '--json'], { env: { ODENESS_CACHE_DIR: cache } });
    t.is(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout).estimate as { groups: { cost: Cost }[] }).groups[0]!.cost;
  };
  const small = study([2, 8]);
  const big = study([2, 64]);
  const first = await plan(small);
  t.false(first.cached);
  t.is(first.buildTail, undefined, 'within the curve: no tail timed');
  const tailed = await plan(big);
  t.false(tailed.cached, 'the cached entry has no build at 64 stages: measured again');
  t.is(tailed.buildTail?.stages, 64);
  t.true(tailed.buildTail!.ms > 0);
  t.true((await plan(big)).cached);
  t.true((await plan(small)).cached, 'an entry with a tail serves smaller grids too');
});
