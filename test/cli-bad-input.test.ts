/**
 * Bad input through the real CLI: each is a one-line error with the culprit
 * named, exit 1 (2 for usage), never "internal error", and no hang (every run
 * has a timeout far above what a refusal needs).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, runCli } from './helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-bad-'));
const model = path.join(tmp, 'model');
const spheres = ['--dataset', 'spheres:dupont2019:dim=2,n=64,testN=32', '--batch-size', '32'];
/** Refusals happen before any training: far below this. */
const QUICK = { timeoutMs: 60_000 };

async function userError(t: import('ava').ExecutionContext, args: string[], culprit: RegExp, code = 1) {
  const r = await runCli(args, QUICK);
  t.is(r.code, code, `exit code for ${args.join(' ')}:\n${r.stderr}`);
  t.regex(r.stderr, /^odeness: error: /, 'the one prefix');
  t.regex(r.stderr, culprit);
  t.false(/internal error/.test(r.stderr), r.stderr);
  t.false(/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('(run with --help'));
  t.is(lines.length, 1, `expected a one-line error (a usage error may add the --help hint), got:\n${r.stderr}`);
  t.is(r.stdout, '', 'nothing on stdout');
}

function jsonFile(name: string, content: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, content);
  return f;
}

test.before(async () => {
  const r = await runCli(['train', ...spheres, '--solver', 'euler:0.5', '--iterations', '2', '--out', model]);
  if (r.code !== 0) throw new Error(`training the test model failed:\n${r.stderr}`);
});

test('solver specs beyond the step ceiling or below the tolerance floor are refused when parsed', async (t) => {
  await userError(
    t,
    ['evaluate', '--model', model, '--solvers', 'rk4:steps=1e9'],
    /solver spec "rk4:steps=1e9": steps exceeds the limit of 100000 steps/,
  );
  await userError(
    t,
    ['train', ...spheres, '--solver', 'euler:1e-9', '--out', path.join(tmp, 'x1')],
    /solver spec "euler:1e-9": step size 1e-9 means 1000000000 steps over \[0, 1\], which exceeds the limit of 100000 steps/,
  );
  await userError(
    t,
    ['train', ...spheres, '--solver', 'dopri5:1e-300', '--out', path.join(tmp, 'x2')],
    /rtol 1e-300 is below the tolerance floor 1e-10/,
  );
  await userError(
    t,
    ['train', ...spheres, '--solver', 'dopri5:1e-12', '--out', path.join(tmp, 'x3')],
    /rtol 1e-12 is below the tolerance floor 1e-10/,
  );
  t.false(fs.existsSync(path.join(tmp, 'x1')), 'nothing written');
});

test('solver lists name the unknown solver; an empty list is an error, not the paper set', async (t) => {
  await userError(
    t,
    ['evaluate', '--model', model, '--solvers', 'euler:0.5,foo:1'],
    /solver spec "foo:1": unknown solver "foo"/,
  );
  await userError(t, ['evaluate', '--model', model, '--solvers', ''], /empty solver list/);
});

test('sizes are checked before anything is allocated', async (t) => {
  await userError(
    t,
    ['train', '--dataset', 'spheres:ott2021:dim=1e9', '--solver', 'euler:0.5', '--out', path.join(tmp, 'x4')],
    /dataset spec "spheres:ott2021:dim=1e9": dim=1e9 exceeds the limit of 1000000/,
  );
  await userError(
    t,
    [
      'train',
      '--dataset',
      'spheres:ott2021:dim=100000,n=100000',
      '--solver',
      'euler:0.5',
      '--out',
      path.join(tmp, 'x5'),
    ],
    /100000 samples × 100000 values = .* exceed the limit/,
  );
  await userError(
    t,
    ['train', ...spheres, '--field', 'mlp:width=1000000', '--solver', 'euler:0.5', '--out', path.join(tmp, 'x8')],
    /field spec "mlp:width=1000000": width must be between 1 and 16384/,
  );
  // Options within their own bounds can still multiply past the model size limit.
  await userError(
    t,
    ['train', ...spheres, '--field', 'mlp:width=16384', '--solver', 'euler:0.5', '--out', path.join(tmp, 'x9')],
    /field "mlp:width=16384" on input \[2\] has 268533768 parameters, more than the limit of 67108864/,
  );
});

test('JSON data: huge labels, one class, missing classes, float32 overflow', async (t) => {
  const train = (f: string) => [
    'train',
    '--dataset',
    `json:${f}`,
    '--solver',
    'euler:0.5',
    '--iterations',
    '1',
    '--out',
    path.join(tmp, 'x6'),
  ];
  const huge = jsonFile('huge.json', '{"x": [[0], [1], [2], [3]], "y": [0, 1, 0, 2147483647]}');
  await userError(
    t,
    train(huge),
    /huge\.json: y\[3\] is 2147483647, expected a non-negative integer label \(a class index below 10000\)/,
  );
  const one = jsonFile('one.json', '{"x": [[0], [1], [2], [3], [4]], "y": [0, 0, 0, 0, 0]}');
  await userError(t, train(one), /one\.json: only class 0 is present; training needs at least 2 classes/);
  const gap = jsonFile('gap.json', '{"x": [[0], [1], [2], [3], [4]], "y": [0, 3, 0, 3, 5]}');
  await userError(t, train(gap), /gap\.json: labels must be 0…5 with every class present; missing classes 1…2, 4/);
  const big = jsonFile('big.json', '{"x": [[0], [1e39], [2], [3], [4]], "y": [0, 1, 0, 1, 0]}');
  await userError(t, train(big), /big\.json: x\[1\]\[0\] is 1e\+39, expected a finite number within the float32 range/);
});

test("evaluation data whose labels exceed the model's classes is an error", async (t) => {
  const f = jsonFile('eval.json', '{"x": [[0, 0], [1, 1]], "y": [0, 2]}');
  await userError(
    t,
    ['evaluate', '--model', model, '--solvers', 'rk4:0.1', '--dataset', `json:${f}:split=none`],
    /eval\.json:split=none: y\[1\] is 2, but the model has 2 classes \(labels 0…1\)/,
  );
  await userError(
    t,
    ['audit', 'fan', '--model', model, '--solver', 'rk4:0.1', '--dataset', `json:${f}:split=none`],
    /eval\.json:split=none: y\[1\] is 2, but the model has 2 classes/,
  );
});

test('file-system mistakes name the path, not "internal error"', async (t) => {
  const file = jsonFile('plain.txt', 'x');
  // --out under a file and --out that is a file: checked before training starts (train/checkpoint.ts prepareOutDir).
  for (const [out, re] of [
    [
      path.join(file, 'sub'),
      /^odeness: error: .*plain\.txt\/sub: .*plain\.txt is a file, so no directory can be created beneath it$/,
    ],
    [file, /^odeness: error: .*plain\.txt: is a file, not a directory$/],
  ] as const) {
    const r = await runCli(['train', ...spheres, '--solver', 'euler:0.5', '--iterations', '1', '--out', out], QUICK);
    t.is(r.code, 1, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('odeness:'));
    t.is(errors.length, 1, r.stderr);
    t.regex(errors[0]!, re);
    t.false(/internal error|\n\s+at /.test(r.stderr), r.stderr);
    t.false(/iter\s+\d/.test(r.stderr), `no training before the --out check:\n${r.stderr}`);
  }
});

test('usage errors share the prefix and exit 2', async (t) => {
  await userError(
    t,
    ['train', ...spheres, '--solver', 'euler:0.5', '--out', path.join(tmp, 'x7'), '--stepsize', '0.1'],
    /unknown option '--stepsize'/,
    2,
  );
  await userError(t, ['evaluate', '--model'], /argument missing/, 2);
});

test('a closed stdout ends quietly (odeness … | head -1)', (t) => {
  const r = spawnSync(
    'bash',
    [
      '-c',
      `node ${JSON.stringify(BIN)} study plan examples/quick-spheres.yaml --json | head -c 1 >/dev/null; exit \${PIPESTATUS[0]}`,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  t.is(r.stderr, '', 'no EPIPE stack trace');
  t.is(r.status, 0);
});
