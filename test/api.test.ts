import test from 'ava';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT } from './helpers/cli.js';

test('the package entry point exposes the library API the CLI is built on', async (t) => {
  const require = createRequire(import.meta.url);
  const pkg = require(path.join(ROOT, 'package.json')) as { exports: { '.': { default: string } } };
  const api = await import(path.join(ROOT, pkg.exports['.'].default));
  for (const name of [
    'runStudy',
    'planStudy',
    'trainRun',
    'evaluate',
    'openModelSource',
    'evaluateBundle',
    'solve',
    'solveAsync',
    'parseSolverSpec',
    'crossingAudit',
    'crossingVerdict',
    'fanAudit',
    'criticalStep',
    'writeBundle',
    'initBackend',
  ]) {
    t.is(typeof api[name], 'function', name);
  }
  const spec = api.parseSolverSpec('rk4:steps=4');
  const r = api.solve(api.float64Ops, (_t: number, z: Float64Array) => z.map((v) => -v), Float64Array.of(1), spec);
  t.true(Math.abs(r.z1[0] - Math.exp(-1)) < 1e-3);
  t.is(r.stats.nfe, 16);
});
