import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobResult, StudyEvent } from '../src/study/types.js';
import { cli, cliResult, tempDir, writeStudy } from './helpers/procs.js';

function lines(dir: string): JobResult[] {
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
    try {
      return [JSON.parse(l) as JobResult];
    } catch {
      return [];
    }
  });
}

function events(out: string): StudyEvent[] {
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as StudyEvent);
}

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('local run: failures are recorded and do not block; --retry-failed reruns only them; status agrees', async (t) => {
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a, fail:b]\nfield: mlp:width=8\ngrid: [{solver: euler, steps: [0.5]}]\nseeds: 2\niterations: 300\n');
  const out = join(dir, 'out');
  const r = await cliResult(['study', 'run', file, '--out', out, '--workers', '2', '--json']);
  t.is(r.code, 1, r.err);
  t.regex(r.err, /2 job\(s\) failed; see: odeness study status/);
  const ev = events(r.out);
  t.like(ev[0], { type: 'plan', total: 4, toRun: 4, alreadyDone: 0 });
  t.like(ev.at(-1), { type: 'end', counts: { total: 4, done: 2, failed: 2, running: 0, pending: 0 } });
  const res = lines(out);
  t.is(res.length, 4);
  for (const x of res.filter((x) => x.status === 'failed')) t.regex(x.error!, /asks to fail/);
  t.deepEqual(readdirSync(join(out, 'models')).sort(), res.filter((x) => x.status === 'done').map((x) => x.id).sort());
  for (const x of res.filter((x) => x.status === 'done')) t.true(existsSync(join(out, 'models', x.id, 'manifest.json')));

  const st = await cliResult(['study', 'status', out, '--json']);
  t.is(st.code, 0, st.err);
  t.like(JSON.parse(st.out), { total: 4, done: 2, failed: 2, running: 0, pending: 0 });

  const again = await cliResult(['study', 'run', file, '--out', out, '--json']);
  t.like(events(again.out)[0], { type: 'plan', toRun: 0, alreadyDone: 2, alreadyFailed: 2 });
  t.is(lines(out).length, 4, 'nothing reran');

  const retry = await cliResult(['study', 'run', file, '--out', out, '--retry-failed', '--json']);
  t.like(events(retry.out)[0], { type: 'plan', toRun: 2, alreadyDone: 2, alreadyFailed: 0 });
  const after = lines(out);
  t.is(after.length, 6);
  t.deepEqual(after.slice(4).map((x) => [x.status, x.attempt]), [['failed', 2], ['failed', 2]]);
});

test('local run: SIGKILL mid-study, rerun → one result per job, finished jobs not rerun', async (t) => {
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a]\nfield: mlp:width=8\ngrid: [{solver: rk4, stepCounts: [2, 4, 8, 16]}]\nseeds: 2\niterations: 500\n');
  const out = join(dir, 'out');
  const first = cli(['study', 'run', file, '--out', out, '--workers', '2', '--json']);
  await until(() => lines(out).length >= 2);
  first.kill('SIGKILL');
  t.is(await first.exited, 137);
  const before = readFileSync(join(out, 'results.jsonl'), 'utf8');
  const finished = lines(out);
  t.true(finished.length >= 2 && finished.length < 8, `${finished.length} results before the kill`);

  const st = await cliResult(['study', 'status', out, '--json']);
  const s = JSON.parse(st.out) as { done: number; pending: number; activeRun?: unknown };
  t.is(s.done, finished.length);
  t.is(s.activeRun, undefined, 'the killed run no longer holds the directory');

  const second = await cliResult(['study', 'run', file, '--out', out, '--workers', '2', '--json']);
  t.is(second.code, 0, second.err);
  t.like(events(second.out)[0], { type: 'plan', total: 8, toRun: 8 - finished.length, alreadyDone: finished.length });
  const all = lines(out);
  t.is(all.length, 8);
  t.is(new Set(all.map((x) => x.id)).size, 8, 'exactly one result per job');
  t.true(readFileSync(join(out, 'results.jsonl'), 'utf8').startsWith(before), 'earlier results untouched');
  const rerun = events(second.out).filter((e): e is Extract<StudyEvent, { type: 'result' }> => e.type === 'result').map((e) => e.result.id);
  for (const f of finished) t.false(rerun.includes(f.id), `finished job ${f.id} was not rerun`);
  t.deepEqual(readdirSync(join(out, 'models')).sort(), all.map((x) => x.id).sort(), 'no temp dirs left, one bundle per job');
});

test('local run: Ctrl-C stops cleanly with exit 130 and the rerun resumes', async (t) => {
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a]\nfield: mlp:width=8\ngrid: [{solver: euler, stepCounts: [1, 2, 3]}]\nseeds: 2\niterations: 400\n');
  const out = join(dir, 'out');
  const p = cli(['study', 'run', file, '--out', out, '--workers', '1']);
  await until(() => lines(out).length >= 1);
  p.kill('SIGINT');
  t.is(await p.exited, 130);
  t.regex(p.err(), /stopping: recorded results are kept/);
  t.false(existsSync(join(out, '.lock')));
  const n = lines(out).length;
  const r = await cliResult(['study', 'run', file, '--out', out, '--workers', '2']);
  t.is(r.code, 0, r.err);
  t.regex(r.out, new RegExp(`6 job\\(s\\), ${6 - n} to run \\(${n} already done, 0 already failed\\)`));
  t.regex(r.out, /study: 6\/6 done, 0 running, 0 failed, 0 pending/);
  t.is(lines(out).length, 6);
});
