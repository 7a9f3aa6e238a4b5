import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readResults } from '../src/study/store.js';
import { join } from 'node:path';
import type { JobResult, StudyEvent } from '../src/study/types.js';
import { cli, cliResult, MISSING_DATASET, tempDir, TINY_DATASET, tinyStudy, writeStudy } from './helpers/procs.js';

// Real tiny jobs (train → bundle → onnxruntime re-evaluation) through the real CLI.
// Serial: each test runs two job threads, which is all this 2-core machine has.

/** Every result line so far (the store's one reader; a torn last line is skipped). */
const lines = (dir: string): JobResult[] => readResults(dir).all;

function events(out: string): StudyEvent[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as StudyEvent];
      } catch {
        return []; // a line still being written
      }
    });
}

async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ids of jobs that have started (per the --events lines) but have no result line yet. */
function inFlight(out: string, dir: string): string[] {
  const finished = new Set(lines(dir).map((r) => r.id));
  return events(out).flatMap((e) => (e.type === 'start' && !finished.has(e.id) ? [e.id] : []));
}

const tmpDirs = (out: string) => readdirSync(join(out, 'models')).filter((n) => n.startsWith('.tmp-'));

test.serial(
  'local run: real metrics and bundles; failures are recorded and do not block; --retry-failed reruns only them; status and report agree',
  async (t) => {
    const dir = tempDir();
    const file = writeStudy(
      dir,
      's.yaml',
      tinyStudy({
        datasets: [TINY_DATASET, MISSING_DATASET],
        grid: '[{solver: euler, steps: [0.5]}]',
        seeds: 2,
        iterations: 300,
      }),
    );
    const out = join(dir, 'out');
    const r = await cliResult(['study', 'run', file, '--out', out, '--workers', '2', '--events']);
    t.is(r.code, 1, r.err);
    t.regex(r.err, /2 jobs failed; see: odeness study status/);
    const ev = events(r.out);
    t.like(ev[0], { type: 'plan', total: 4, toRun: 4, alreadyDone: 0 });
    t.like(ev.at(-1), { type: 'end', counts: { total: 4, done: 2, failed: 2, running: 0, pending: 0 } });
    const res = lines(out);
    t.is(res.length, 4);
    const failed = res.filter((x) => x.status === 'failed');
    const done = res.filter((x) => x.status === 'done');
    t.is(failed.length, 2);
    for (const x of failed) {
      t.is(x.job.dataset, MISSING_DATASET);
      t.is(x.error, '/nonexistent/fail.json: file not found', "the loader's own user-facing message");
      t.is(x.metrics, undefined);
    }
    t.deepEqual(done.map((x) => x.job.seed).sort(), [0, 1]);
    for (const x of done) {
      t.is(x.job.dataset, TINY_DATASET);
      const m = x.metrics!;
      t.is(m.trainSolver, 'euler:0.5');
      t.is(m.iterations, 300);
      t.is(m.evals.length, 1);
      t.like(m.evals[0], { spec: 'rk4:0.1', nfe: 40 });
      t.deepEqual(
        m.nfe,
        { forward: 300 * 2, backward: 300 * 2, checks: 0, total: 300 * 4 },
        'euler:0.5 = 2 steps, forward and backward',
      );
      // The recorded accuracies are those of the stored bundle: re-evaluating it reproduces them exactly.
      const ev = await cliResult([
        'evaluate',
        '--bundle',
        join(out, 'models', x.id),
        '--solvers',
        'euler:0.5,rk4:0.1',
        '--json',
      ]);
      t.is(ev.code, 0, ev.err);
      const rows = (JSON.parse(ev.out) as { results: { spec: string; accuracy: number }[] }).results;
      t.is(rows.find((r) => r.spec === 'euler:0.5')!.accuracy, m.trainAccuracy);
      t.is(rows.find((r) => r.spec === 'rk4:0.1')!.accuracy, m.evals[0]!.accuracy);
      for (const f of ['manifest.json', 'field.onnx', 'head.onnx', join('model', 'model.json')]) {
        t.true(existsSync(join(out, 'models', x.id, f)), `models/${x.id}/${f}`);
      }
    }
    t.deepEqual(
      readdirSync(join(out, 'models')).sort(),
      done.map((x) => x.id).sort(),
      'bundles of done jobs only, no temp dirs',
    );

    const st = await cliResult(['study', 'status', out, '--json']);
    t.is(st.code, 0, st.err);
    const s = JSON.parse(st.out) as { failures: { error: string }[] };
    t.like(s, { total: 4, done: 2, failed: 2, running: 0, pending: 0 });
    for (const f of s.failures) t.regex(f.error, /fail\.json: file not found/);

    const again = await cliResult(['study', 'run', file, '--out', out, '--events']);
    t.like(events(again.out)[0], { type: 'plan', toRun: 0, alreadyDone: 2, alreadyFailed: 2 });
    t.is(lines(out).length, 4, 'nothing reran');

    const retry = await cliResult(['study', 'run', file, '--out', out, '--retry-failed', '--events']);
    t.like(events(retry.out)[0], { type: 'plan', toRun: 2, alreadyDone: 2, alreadyFailed: 0 });
    const after = lines(out);
    t.is(after.length, 6);
    t.deepEqual(
      after.slice(4).map((x) => [x.status, x.attempt]),
      [
        ['failed', 2],
        ['failed', 2],
      ],
    );

    const rep = await cliResult(['study', 'report', out]);
    t.is(rep.code, 0, rep.err);
    t.regex(rep.out, /wrote .*report\.html/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const x of done) t.true(html.includes(x.id), `the report lists ${x.id}`);
  },
);

test.serial(
  'local run: SIGKILL mid-job, rerun → one result per job, finished jobs not rerun, temp bundles cleaned',
  async (t) => {
    const dir = tempDir();
    // 8 jobs of about 1 s each (unloaded) on 2 threads.
    const file = writeStudy(
      dir,
      's.yaml',
      tinyStudy({
        grid: '[{solver: euler, steps: [0.5, 0.25]}, {solver: midpoint, steps: [0.5, 0.25]}]',
        seeds: 2,
        iterations: 2000,
      }),
    );
    const out = join(dir, 'out');
    const first = cli(['study', 'run', file, '--out', out, '--workers', '2', '--events']);
    // Two results in, and a job running that has none: kill mid-job.
    await until(() => lines(out).length >= 2 && inFlight(first.out(), out).length > 0);
    first.kill('SIGKILL');
    t.is(await first.exited, 137);
    const before = readFileSync(join(out, 'results.jsonl'), 'utf8');
    const finished = lines(out);
    t.true(finished.length >= 2 && finished.length < 8, `${finished.length} results before the kill`);
    t.true(tmpDirs(out).length > 0, 'the killed job left its temp bundle directory behind');

    const st = await cliResult(['study', 'status', out, '--json']);
    const s = JSON.parse(st.out) as { done: number; pending: number; activeRun?: unknown };
    t.is(s.done, finished.length);
    t.is(s.activeRun, undefined, 'the killed run no longer holds the directory');

    const second = await cliResult(['study', 'run', file, '--out', out, '--workers', '2', '--events']);
    t.is(second.code, 0, second.err);
    t.like(events(second.out)[0], { type: 'plan', total: 8, toRun: 8 - finished.length, alreadyDone: finished.length });
    const all = lines(out);
    t.is(all.length, 8);
    t.is(new Set(all.map((x) => x.id)).size, 8, 'exactly one result per job');
    t.true(all.every((x) => x.status === 'done'));
    t.true(readFileSync(join(out, 'results.jsonl'), 'utf8').startsWith(before), 'earlier results untouched');
    const rerun = events(second.out)
      .filter((e): e is Extract<StudyEvent, { type: 'result' }> => e.type === 'result')
      .map((e) => e.result.id);
    for (const f of finished) t.false(rerun.includes(f.id), `finished job ${f.id} was not rerun`);
    t.deepEqual(
      readdirSync(join(out, 'models')).sort(),
      all.map((x) => x.id).sort(),
      'no temp dirs left, one bundle per job',
    );
    for (const x of all) t.true(existsSync(join(out, 'models', x.id, 'field.onnx')));
  },
);

test.serial('local run: Ctrl-C mid-job stops cleanly with exit 130 and the rerun resumes', async (t) => {
  const dir = tempDir();
  const file = writeStudy(
    dir,
    's.yaml',
    tinyStudy({ grid: '[{solver: euler, stepCounts: [1, 2, 3]}]', seeds: 2, iterations: 2000 }),
  );
  const out = join(dir, 'out');
  const p = cli(['study', 'run', file, '--out', out, '--workers', '1', '--events']);
  await until(() => lines(out).length >= 1 && inFlight(p.out(), out).length > 0);
  p.kill('SIGINT');
  t.is(await p.exited, 130);
  t.regex(p.err(), /stopping: recorded results are kept/);
  t.false(existsSync(join(out, '.lock')));
  t.false(existsSync(join(out, 'state.json')));
  t.deepEqual(tmpDirs(out), [], "the interrupted job's temp bundle is removed");
  const n = lines(out).length;
  t.true(n >= 1 && n < 6, `${n} results before Ctrl-C`);
  const r = await cliResult(['study', 'run', file, '--out', out, '--workers', '2']);
  t.is(r.code, 0, r.err);
  t.regex(r.out, new RegExp(`6 jobs, ${6 - n} to run \\(${n} already done, 0 already failed\\)`));
  t.regex(r.out, /study: 6\/6 done, 0 running, 0 failed, 0 pending/);
  t.is(lines(out).length, 6);
  t.is(new Set(lines(out).map((x) => x.id)).size, 6);
});
