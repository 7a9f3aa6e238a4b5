/**
 * Issue 24, findings 1 and 8: numbers as people write them and the smaller
 * input slips. Specs and verdicts print the shortest form people write
 * (rk4:0.73205, dopri5:1e-6) while job ids, which hash the canonical spec
 * strings, do not change; --threads is capped at the cores with a note; a
 * repeated grid point is reported, and euler:0.5 + euler:steps=2 plan one job
 * with a note; dopri5:rtol=0 says what is wrong; 'euler: 0.5' is one spec.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { displaySpec, displayNumber, formatSolverSpec, parseSolverList, parseSolverSpec } from '../src/solvers/spec.js';
import { planStudy } from '../src/study/plan.js';
import { parse as parseYaml } from 'yaml';
import { runCli } from './helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-numbers-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('display: the shortest form people write; the canonical spec keeps the exact value', (t) => {
  t.is(displaySpec('rk4:0.7320500000000003'), 'rk4:0.73205');
  t.is(displaySpec('euler:0.09526850748025809'), 'euler:0.0952685');
  t.is(displaySpec('dopri5:0.000001'), 'dopri5:1e-6');
  t.is(displaySpec('dopri5:rtol=0.0001,atol=2.5e-7'), 'dopri5:rtol=1e-4,atol=2.5e-7');
  t.is(displaySpec('rk4:steps=20'), 'rk4:steps=20');
  t.is(displaySpec('not a spec'), 'not a spec');
  t.is(displayNumber(0.5), '0.5');
  t.is(
    formatSolverSpec(parseSolverSpec('rk4:0.7320500000000003')),
    'rk4:0.7320500000000003',
    'canonical: exact (job ids and --json)',
  );
});

test('job ids of the example studies do not change (they hash the canonical spec strings)', (t) => {
  // Ids planned before display rounding, fold-checking adaptation and duplicate checks existed.
  t.deepEqual(
    planStudy('examples/quick-spheres.yaml').jobs.map((j) => j.id),
    [
      '1c76f4ab6930ff6a',
      'e01f74a847869676',
      '22054683b6e1431f',
      'e629358197cabc7a',
      'c747b3f120343095',
      '124e1521ba1c3157',
      'f2e1986ac9364756',
      '9682a9fb3b8357e6',
      'fdaea1dc2a4d658a',
      'e9321a8e6234f819',
      '9b4edb54d090e9ed',
      'c1ba0812b360075f',
      'b66d46450a8e5360',
      'f9b072c1f30b86b3',
      '30505ed8717293c0',
      'f95cbfd2766bedb5',
    ],
  );
  const folds = planStudy({ ...yamlOf('examples/quick-spheres.yaml'), adaptFolds: true });
  t.is(folds.jobs.filter((j) => j.adaptFolds).length, 4, 'adaptation jobs with fold checks are new jobs');
  t.deepEqual(
    folds.jobs.filter((j) => !j.adapt).map((j) => j.id),
    planStudy('examples/quick-spheres.yaml')
      .jobs.filter((j) => !j.adapt)
      .map((j) => j.id),
  );
});

function yamlOf(file: string): Record<string, unknown> {
  return parseYaml(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

test('solver specs: rtol=0 names the tolerance, a space after the colon is one spec', async (t) => {
  t.throws(() => parseSolverSpec('dopri5:rtol=0'), { message: /rtol must be > 0, got 0/ });
  t.deepEqual(parseSolverList('euler: 0.5, rk4: steps=3').map(formatSolverSpec), ['euler:0.5', 'rk4:steps=3']);
  const r = await runCli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2',
    '--solver',
    'dopri5:rtol=0',
    '--out',
    path.join(tmp, 'rtol0'),
  ]);
  t.not(r.code, 0);
  t.regex(r.stderr, /rtol must be > 0/);
  t.notRegex(r.stderr, /give a tolerance/);
});

test('study plan: a repeated grid point is an error naming both places; euler:0.5 and euler:steps=2 are one job, with a note', async (t) => {
  const dup = path.join(tmp, 'dup.yaml');
  fs.writeFileSync(
    dup,
    'datasets: [spheres:dupont2019:dim=2]\nfield: mlp:width=8\ngrid:\n  - {solver: euler, steps: [0.5, 0.25, 0.5]}\niterations: 10\n',
  );
  const r = await runCli(['study', 'plan', dup, '--no-calibrate']);
  t.is(r.code, 1);
  t.regex(r.stderr, /grid\[0\]\.steps\[2\]: repeats euler:0\.5 \(the grid point at grid\[0\]\.steps\[0\]\)/);
  const same = path.join(tmp, 'same.yaml');
  fs.writeFileSync(
    same,
    'datasets: [spheres:dupont2019:dim=2]\nfield: mlp:width=8\ngrid:\n  - {solver: euler, steps: [0.5, 0.25], stepCounts: [2]}\niterations: 10\n',
  );
  const s = await runCli(['study', 'plan', same, '--no-calibrate', '--json']);
  t.is(s.code, 0, s.stderr);
  t.deepEqual(
    JSON.parse(s.stdout).jobs.map((j: { trainSolver: string }) => j.trainSolver),
    ['euler:0.5', 'euler:0.25'],
  );
  t.regex(s.stderr, /note: grid: euler:steps=2 trains the same as euler:0\.5/);
});

test('--threads above the cores is capped with a note', async (t) => {
  const out = path.join(tmp, 'threads');
  const r = await runCli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2,n=128,testN=20',
    '--field',
    'mlp:width=4',
    '--solver',
    'euler:0.5',
    '--iterations',
    '5',
    '--threads',
    '1000',
    '--out',
    out,
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `--threads 1000 is more than this machine's ${os.availableParallelism()} cores; using ${os.availableParallelism()}`,
    ),
  );
});

test('train --help: --engine ort is not only for fixed-step solvers', async (t) => {
  const r = await runCli(['train', '--help']);
  t.is(r.code, 0);
  const engine = r.stdout.replace(/\s+/g, ' ');
  t.regex(
    engine,
    /ort \(onnxruntime: one compiled graph per step for fixed-step solvers, compiled steps driven by the integrate loop for adaptive ones\)/,
  );
  t.notRegex(engine, /ort \(one compiled onnxruntime graph per step; fixed-step solvers\)/);
});
