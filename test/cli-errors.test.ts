import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { runCli } from './helpers/cli.js';

const NATIVE_BINDINGS = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
const resolvable = (pkg: string) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-cli-'));
const base = ['train', '--iterations', '2', '--out', path.join(tmp, 'm')];

/** A user error: exit code ≠ 0, one line on stderr naming the culprit, no stack trace. */
async function userError(t: import('ava').ExecutionContext, args: string[], culprit: RegExp) {
  const r = await runCli(args);
  t.not(r.code, 0, `expected failure for ${args.join(' ')}`);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('(run with'));
  t.regex(r.stderr, culprit);
  t.false(/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
  t.true(lines.length <= 2, `expected a one-line error, got:\n${r.stderr}`);
}

test('unknown dataset is named', (t) =>
  userError(t, [...base, '--dataset', 'circles:dim=2', '--solver', 'euler:0.5'], /circles/));
test('unknown field is named', (t) =>
  userError(
    t,
    [...base, '--dataset', 'spheres:dupont2019:dim=2', '--field', 'resnet', '--solver', 'euler:0.5'],
    /field.*resnet/,
  ));
test('unknown solver is named', (t) =>
  userError(t, [...base, '--dataset', 'spheres:dupont2019:dim=2', '--solver', 'rk45:0.1'], /rk45/));
test('non-positive step is rejected', (t) =>
  userError(t, [...base, '--dataset', 'spheres:dupont2019:dim=2', '--solver', 'euler:-0.5'], /euler:-0\.5/));
test('dimension <= 0 is rejected', (t) =>
  userError(t, [...base, '--dataset', 'spheres:dupont2019:dim=0', '--solver', 'euler:0.5'], /dim/));
test('batch larger than the dataset is rejected', (t) =>
  userError(
    t,
    [...base, '--dataset', 'spheres:dupont2019:dim=2', '--solver', 'euler:0.5', '--batch-size', '5000'],
    /batch size 5000/,
  ));
test('missing model directory is named', (t) =>
  userError(t, ['evaluate', '--model', path.join(tmp, 'nope'), '--solvers', 'rk4:0.1'], /nope/));
test('unknown flags are errors, not ignored', (t) =>
  userError(
    t,
    [...base, '--dataset', 'spheres:dupont2019:dim=2', '--solver', 'euler:0.5', '--stepsize', '0.1'],
    /unknown option '--stepsize'/,
  ));
test('missing required --solver is an error', (t) =>
  userError(t, ['train', '--dataset', 'spheres:dupont2019:dim=2', '--out', tmp], /--solver/));

test('--verbose shows the stack trace', async (t) => {
  const r = await runCli(['--verbose', ...base, '--dataset', 'circles:dim=2', '--solver', 'euler:0.5']);
  t.not(r.code, 0);
  t.regex(r.stderr, /\n\s+at /);
});

test('info prints backend, threads and versions', async (t) => {
  const r = await runCli(['info', '--json']);
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  // auto picks a native binding when one loads, else wasm — never the slow cpu fallback.
  // Which one depends on what is installed here, so the check follows the installation.
  const natives = NATIVE_BINDINGS.filter(resolvable);
  if (info.backend === 'tensorflow') {
    t.true(
      natives.includes(info.backendSource),
      `tensorflow backend from ${info.backendSource}, installed: ${natives.join(', ') || 'none'}`,
    );
  } else {
    t.is(info.backend, 'wasm', `auto fell back past wasm: ${JSON.stringify(info)}`);
    t.is(info.backendSource, '@tensorflow/tfjs-backend-wasm');
    t.is(info.threads, 1, 'one wasm thread');
  }
  t.regex(info.tfjs, /^4\./);
  t.regex(info.onnxruntime, /^1\./);
  t.is(info.node, process.versions.node);
});

test('--backend wasm selects wasm wherever the package is installed, native binding or not', async (t) => {
  const r = await runCli(['info', '--json', '--backend', 'wasm']);
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  t.is(info.backend, 'wasm');
  t.is(info.backendSource, '@tensorflow/tfjs-backend-wasm');
  t.is(info.threads, 1);
});

test('--backend / ODENESS_BACKEND select the cpu backend', async (t) => {
  const a = await runCli(['info', '--json', '--backend', 'cpu']);
  t.is(JSON.parse(a.stdout).backend, 'cpu');
  const b = await runCli(['info', '--json'], { env: { ODENESS_BACKEND: 'cpu' } });
  t.is(JSON.parse(b.stdout).backend, 'cpu');
  await userError(t, ['info', '--backend', 'gpu'], /gpu/);
});

test('--epochs and --iterations together are rejected; bad --betas name the flag', async (t) => {
  await userError(
    t,
    [
      'train',
      '--out',
      path.join(tmp, 'm'),
      '--dataset',
      'spheres:dupont2019:dim=2',
      '--solver',
      'euler:0.5',
      '--epochs',
      '2',
      '--iterations',
      '5',
    ],
    /iterations or epochs, not both/,
  );
  await userError(
    t,
    [
      'train',
      '--out',
      path.join(tmp, 'm'),
      '--dataset',
      'spheres:dupont2019:dim=2',
      '--solver',
      'euler:0.5',
      '--betas',
      '0.9',
    ],
    /--betas/,
  );
});

test('--epochs trains full passes over the training set', async (t) => {
  const r = await runCli([
    'train',
    '--out',
    path.join(tmp, 'ep'),
    '--dataset',
    'spheres:dupont2019:dim=2,n=300',
    '--solver',
    'euler:0.5',
    '--epochs',
    '2',
    '--batch-size',
    '100',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout.trim().split('\n').at(-1)!).iterations, 6);
});
