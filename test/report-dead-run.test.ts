/**
 * Issue 24, finding 8: after `kill -9` of `study run`, the live report said
 * "running" and reloaded for ever. The lock the dead run left behind names a
 * process that is gone: `study status` says the run died and rewrites the
 * page (no reload, "The run died"); `study report` says so too.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bindStudy } from '../src/study/store.js';
import { writeStudyReport } from '../src/report/study.js';
import { runCli } from './helpers/cli.js';
import { syntheticStudy } from './helpers/synthetic-study.js';

test('a run killed with kill -9: study status and the report say it died, the page stops reloading', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-dead-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const s = syntheticStudy();
  fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(bindStudy(dir, undefined, s.plan)));
  // Half the jobs finished before the kill.
  const finished = s.results.filter((r) => s.plan.jobs.some((j) => j.id === r.id)).slice(0, 7);
  fs.writeFileSync(path.join(dir, 'results.jsonl'), finished.map((r) => JSON.stringify(r)).join('\n') + '\n');
  await writeStudyReport(dir, { live: { running: 2, pid: 4242, host: os.hostname() }, allowEmpty: true });
  const livePage = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  t.regex(livePage, /http-equiv="refresh"/);
  t.regex(livePage, /<b>Running<\/b>: 7 of 14 jobs finished, 2 running \(process 4242 on /);

  // The lock of a process that is gone, as kill -9 leaves it (a clean end removes it).
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(child.stdout);
  fs.writeFileSync(
    path.join(dir, '.lock'),
    JSON.stringify({ pid: deadPid, host: os.hostname(), startedAt: '2026-12-06T20:00:00.000Z' }),
  );

  const status = await runCli(['study', 'status', dir]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, new RegExp(`the run died: pid ${deadPid} on .* is gone`));
  const page = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  t.notRegex(page, /http-equiv="refresh"/, 'the page no longer reloads');
  t.notRegex(page, /<b>Running<\/b>/);
  t.regex(page, new RegExp(`<b>The run died</b>: process ${deadPid} on `));
  t.regex(page, /7 jobs never finished/);
  const json = JSON.parse((await runCli(['study', 'status', dir, '--json'])).stdout);
  t.is(json.deadRun.pid, deadPid);

  // A lock whose process lives is a run in progress, not a dead one.
  fs.writeFileSync(
    path.join(dir, '.lock'),
    JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: '2026-12-06T20:00:00.000Z' }),
  );
  const alive = JSON.parse((await runCli(['study', 'status', dir, '--json'])).stdout);
  t.is(alive.deadRun, undefined);
  t.is(alive.activeRun.pid, process.pid);
});
