/**
 * Training never loses finished work: the output directory is checked before
 * training, a signal saves an interrupted checkpoint that evaluate accepts,
 * and --resume continues it. Real processes, real signals.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { cli, cliResult, tempDir, timedCli } from './helpers/procs.js';

const tmp = tempDir('odeness-ckpt-');
const TINY = [
  '--dataset',
  'spheres:dupont2019:dim=2,n=256,testN=64',
  '--field',
  'mlp:width=8',
  '--solver',
  'rk4:0.25',
  '--batch-size',
  '32',
];

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

/**
 * A user error about the output path: exit 1, one line naming it. The dataset
 * file does not exist, so an error about the path proves the check came
 * before any data was read (let alone training).
 */
async function outError(t: import('ava').ExecutionContext, out: string, culprit: RegExp, extra: string[] = []) {
  const r = await cliResult([
    'train',
    '--dataset',
    `json:${path.join(tmp, 'no-such-data.json')}`,
    '--solver',
    'euler:0.5',
    '--iterations',
    '1',
    '--out',
    out,
    ...extra,
  ]);
  t.is(r.code, 1, r.err);
  t.regex(r.err, culprit);
  t.is(r.err.trim().split('\n').length, 1, `one line expected:\n${r.err}`);
  t.notRegex(r.err, /internal error|no-such-data|\n\s+at /);
  t.notRegex(r.out, /iter|saved/);
}

test('--out: a file, a path beneath a file, "" and a non-empty directory are refused before training', async (t) => {
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, 'x');
  await outError(t, file, /a-file: is a file, not a directory/);
  await outError(t, path.join(file, 'sub', 'model'), /a-file is a file, so no directory can be created beneath it/);
  await outError(t, '', /"": the output directory must be a path/);
  const full = path.join(tmp, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'notes.txt'), 'mine');
  await outError(t, full, /full: is not empty \(notes\.txt\); pass --force/);
  t.is(fs.readFileSync(path.join(full, 'notes.txt'), 'utf8'), 'mine');
});

test('--t1 0 and a reversed time span are refused before training', async (t) => {
  await outError(t, path.join(tmp, 't1'), /t1 must be larger than t0.*t1=0/, ['--t1', '0']);
  await outError(t, path.join(tmp, 't1'), /t1 must be larger than t0.*t1=-1/, ['--t1', '-1']);
});

test('an existing model is not overwritten without --force, and is with it', async (t) => {
  const out = path.join(tmp, 'existing');
  const first = await timedCli(['train', ...TINY, '--iterations', '2', '--out', out]);
  t.is(first.code, 0, first.err);
  const params = fs.readFileSync(path.join(out, 'params.bin'));
  const again = await timedCli(['train', ...TINY, '--iterations', '3', '--seed', '5', '--out', out]);
  t.is(again.code, 1);
  t.regex(again.err, /existing: holds a model; pass --force to overwrite it, or --resume/);
  t.deepEqual(fs.readFileSync(path.join(out, 'params.bin')), params, 'the model changed');
  const forced = await timedCli(['train', ...TINY, '--iterations', '3', '--seed', '5', '--out', out, '--force']);
  t.is(forced.code, 0, forced.err);
  t.is(readJson(path.join(out, 'model.json')).training.iterations, 3);
  t.notDeepEqual(fs.readFileSync(path.join(out, 'params.bin')), params);
});

test('SIGINT during train saves an interrupted checkpoint, exits 130; evaluate accepts it; --resume finishes it', async (t) => {
  const out = path.join(tmp, 'interrupted');
  const p = cli(['train', ...TINY, '--iterations', '100000', '--log-every', '1', '--out', out]);
  await p.waitFor(/iter\s+5\s/, 120_000);
  p.kill('SIGINT');
  t.is(await p.exited, 130, p.err());
  t.regex(p.err(), /SIGINT: stopping after the current iteration/);
  const said = /saved .* \(interrupted after (\d+) of 100000 iterations.*continue with: odeness train --resume/.exec(
    p.out(),
  );
  t.truthy(said, p.out());
  const model = readJson(path.join(out, 'model.json'));
  t.is(model.training.status, 'interrupted');
  t.is(model.training.targetIterations, 100000);
  t.true(model.training.iterations >= 5, `iterations ${model.training.iterations}`);
  t.is(model.training.iterations, Number(said![1]));
  const checkpoint = readJson(path.join(out, 'checkpoint.json'));
  t.is(checkpoint.iterations, model.training.iterations);

  const ev = await timedCli(['evaluate', '--model', out, '--solvers', 'rk4:0.25,euler:0.5', '--json']);
  t.is(ev.code, 0, ev.err);
  const rows = JSON.parse(ev.out).results;
  t.is(rows.length, 2);
  t.true(rows[0].accuracy > 0.5, `accuracy ${rows[0].accuracy} after ${model.training.iterations} iterations`);

  const target = model.training.iterations + 3;
  const resumed = await timedCli([
    'train',
    '--resume',
    out,
    '--iterations',
    String(target),
    '--log-every',
    '1',
    '--json',
  ]);
  t.is(resumed.code, 0, resumed.err);
  const summary = JSON.parse(resumed.out);
  t.is(summary.status, 'complete');
  t.true(summary.testAccuracy > 0.5);
  t.deepEqual(
    summary.log.map((e: { iteration: number }) => e.iteration),
    [target - 2, target - 1, target],
    'numbering continues after the checkpoint',
  );
  const after = readJson(path.join(out, 'model.json'));
  t.is(after.training.status, 'complete');
  t.is(after.training.iterations, target);
  t.is(after.training.targetIterations, undefined);

  const settings = await timedCli([
    'train',
    '--resume',
    out,
    '--solver',
    'euler:0.5',
    '--iterations',
    String(target + 1),
  ]);
  t.is(settings.code, 1);
  t.regex(settings.err, /--resume continues a run with its own settings; drop --solver/);
  const nothingLeft = await timedCli(['train', '--resume', out]);
  t.is(nothingLeft.code, 1);
  t.regex(nothingLeft.err, new RegExp(`already has ${target} iterations`));
});

test('a second signal ends training at once', async (t) => {
  const out = path.join(tmp, 'twice');
  // Slow synchronous tfjs steps: the first signal waits for the step, the second must not.
  const p = cli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2,n=256,testN=64',
    '--field',
    'mlp:width=128',
    '--solver',
    'rk4:steps=20',
    '--engine',
    'tfjs',
    '--batch-size',
    '256',
    '--iterations',
    '100000',
    '--log-every',
    '1',
    '--out',
    out,
  ]);
  await p.waitFor(/iter\s+1\s/, 240_000);
  p.kill('SIGINT');
  await p.waitFor(/SIGINT: stopping/, 60_000);
  const sent = Date.now();
  p.kill('SIGINT');
  const code = await p.exited;
  t.true(code === 130, `exit ${code}`);
  t.true(Date.now() - sent < 5000, `took ${Date.now() - sent} ms after the second signal`);
  t.notRegex(p.err(), /Napi|internal error/);
});
