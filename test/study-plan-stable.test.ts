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
