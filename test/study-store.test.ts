import test from 'ava';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planStudy } from '../src/study/plan.js';
import { parseResults, readResults, ResultStore, RESULTS_FILE } from '../src/study/store.js';
import { studyStatus } from '../src/study/status.js';
import type { JobResult } from '../src/study/types.js';
import { tempDir, TINY_DATASET } from './helpers/procs.js';
import { sampleMetrics } from './helpers/metrics.js';

const plan = planStudy({ datasets: TINY_DATASET, field: 'mlp:width=8', grid: ['euler:0.5'], seeds: 3, iterations: 10 });

function result(i: number, status: 'done' | 'failed', attempt = 1): JobResult {
  const job = plan.jobs[i]!;
  const now = new Date().toISOString();
  return {
    id: job.id,
    job,
    status,
    attempt,
    worker: 'test',
    ...(status === 'done' ? { metrics: sampleMetrics(i / 10) } : { error: 'boom' }),
    timings: { startedAt: now, finishedAt: now, ms: 1 },
  };
}

test('commit moves the bundle into place, appends one line; duplicates are ignored', async (t) => {
  const dir = tempDir();
  const store = await ResultStore.open(dir);
  await store.writePlan(plan);
  const tmp = await store.tempBundleDir(plan.jobs[0]!.id);
  writeFileSync(join(tmp, 'model.onnx'), 'x');
  t.true(await store.commit(result(0, 'done'), tmp));
  t.false(existsSync(tmp));
  t.is(readFileSync(join(dir, 'models', plan.jobs[0]!.id, 'model.onnx'), 'utf8'), 'x');
  const tmp2 = await store.tempBundleDir(plan.jobs[0]!.id);
  t.false(await store.commit(result(0, 'done'), tmp2), 'a second done result for the same id is a duplicate');
  t.false(existsSync(tmp2));
  t.true(await store.commit(result(1, 'failed')));
  t.true(await store.commit(result(1, 'done', 2)), 'a retry that succeeds replaces the failure');
  t.false(await store.commit(result(1, 'failed', 3)), 'a failure never replaces a done result');
  await store.close();
  const read = readResults(dir);
  t.is(read.lines, 3);
  t.is(read.final.get(plan.jobs[1]!.id)!.status, 'done');
  const s = studyStatus(dir);
  t.like(s, { total: 3, done: 2, failed: 0, running: 0, pending: 1 });
  t.is(s.activeRun, undefined);
});

test('a result line that cannot be written (ENOSPC) leaves no orphan bundle and no line; the job can be committed again', async (t) => {
  const dir = tempDir();
  const store = await ResultStore.open(dir);
  await store.writePlan(plan);
  const id = plan.jobs[0]!.id;
  // The disk fills between the bundle's rename and the line's append.
  const fh = (store as unknown as { fh: { write: (b: Buffer) => Promise<{ bytesWritten: number }> } }).fh;
  const write = fh.write.bind(fh);
  fh.write = async () => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  const tmp = await store.tempBundleDir(id);
  writeFileSync(join(tmp, 'model.onnx'), 'x');
  await t.throwsAsync(store.commit(result(0, 'done'), tmp), { message: /ENOSPC/ });
  t.false(existsSync(join(dir, 'models', id)), 'no bundle without its line');
  fh.write = write;
  const again = await store.tempBundleDir(id);
  writeFileSync(join(again, 'model.onnx'), 'y');
  t.true(await store.commit(result(0, 'done'), again), 'the unrecorded result is not taken for a duplicate');
  t.is(readFileSync(join(dir, 'models', id, 'model.onnx'), 'utf8'), 'y');
  await store.close();
  t.is(readResults(dir).lines, 1);
});

test('a torn last line is ignored by readers and cut by the next writer', async (t) => {
  const dir = tempDir();
  let store = await ResultStore.open(dir);
  await store.writePlan(plan);
  await store.commit(result(0, 'done'));
  await store.close();
  appendFileSync(join(dir, RESULTS_FILE), JSON.stringify(result(1, 'done')).slice(0, 40)); // killed mid-write
  t.is(readResults(dir).final.size, 1);
  t.is(readResults(dir).invalid, 1);
  store = await ResultStore.open(dir);
  await store.commit(result(2, 'done'));
  await store.close();
  const text = readFileSync(join(dir, RESULTS_FILE), 'utf8');
  t.is(text.split('\n').filter(Boolean).length, 2);
  t.is(parseResults(text).invalid, 0);
});

test('a live run holds the directory; a stale lock (dead pid) is taken over; temp bundles are cleaned', async (t) => {
  const dir = tempDir();
  const a = await ResultStore.open(dir);
  await a.writePlan(plan);
  await t.throwsAsync(ResultStore.open(dir), { message: /is in use by another study run \(pid \d+/ });
  t.truthy(studyStatus(dir).activeRun);
  await a.close();
  writeFileSync(
    join(dir, '.lock'),
    JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), startedAt: 'x' }),
  );
  mkdirSync(join(dir, 'models', '.tmp-abc-1-ff'), { recursive: true });
  const b = await ResultStore.open(dir);
  t.false(existsSync(join(dir, 'models', '.tmp-abc-1-ff')));
  await b.close();
});

test('status of a directory that is not a study names the problem', (t) => {
  t.throws(() => studyStatus(join(tempDir(), 'nope')), { message: /not a study output directory .*does not exist/ });
});
