import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cgroupMemoryLimit, defaultMemoryBudget, MemoryAdmission } from '../src/study/admission.js';
import { estimateJobMemory, jobMemory } from '../src/study/job-memory.js';
import { jobId, planStudy } from '../src/study/plan.js';
import { parseJob } from '../src/study/records.js';
import { sameJob } from '../src/cluster/nats-results.js';
import type { StudyEvent } from '../src/study/types.js';
import { cliResult, ROOT, tempDir, TINY_DATASET, writeStudy } from './helpers/procs.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

test('admission: first come, first served; jobs fit side by side; a job over the budget runs alone', async (t) => {
  const a = new MemoryAdmission(10 * GiB);
  const g1 = await a.acquire(4 * GiB);
  const g2 = await a.acquire(4 * GiB);
  t.is(a.inUse, 8 * GiB);
  let big = false;
  let small = false;
  // 4 GiB does not fit beside 8; a later 1 GiB job must not overtake it.
  const pBig = a.acquire(4 * GiB).then((g) => ((big = true), g));
  const pSmall = a.acquire(1 * GiB).then((g) => ((small = true), g));
  await new Promise((r) => setImmediate(r));
  t.false(big);
  t.false(small);
  g1.release();
  g1.release(); // idempotent
  const g3 = await pBig;
  const g4 = await pSmall;
  t.true(big && small);
  t.is(a.inUse, 9 * GiB);
  t.is(a.running, 3);
  // Bigger than the whole budget: waits until nothing runs, then holds all of it, alone.
  let hugeIn = false;
  const pHuge = a.acquire(50 * GiB).then((g) => ((hugeIn = true), g));
  g2.release();
  g3.release();
  await new Promise((r) => setImmediate(r));
  t.false(hugeIn, 'one job still runs');
  g4.release();
  const huge = await pHuge;
  t.true(huge.alone);
  t.is(a.inUse, 10 * GiB);
  t.false(a.fitsNow(1));
  huge.release();
  t.is(a.inUse, 0);
  t.false(a.fits(11 * GiB));
});

test('admission: an aborted waiter leaves the queue and unblocks the jobs behind it', async (t) => {
  const a = new MemoryAdmission(4 * GiB);
  const g = await a.acquire(3 * GiB);
  const stop = new AbortController();
  const blocked = a.acquire(4 * GiB, stop.signal);
  let small = false;
  const pSmall = a.acquire(1 * GiB).then((x) => ((small = true), x));
  await new Promise((r) => setImmediate(r));
  t.false(small, 'queued behind the 4 GiB job');
  stop.abort();
  await t.throwsAsync(blocked, { name: 'AbortError' });
  (await pSmall).release();
  t.true(small);
  g.release();
});

test('default budget: 80 % of the machine, or of the cgroup limit when lower; "max" is no limit', (t) => {
  t.is(defaultMemoryBudget(10 * GiB, undefined), 8 * GiB);
  t.is(defaultMemoryBudget(10 * GiB, 5 * GiB), 4 * GiB);
  t.is(defaultMemoryBudget(10 * GiB, 50 * GiB), 8 * GiB);
  t.is(
    cgroupMemoryLimit(() => 'max\n'),
    undefined,
  );
  t.is(
    cgroupMemoryLimit(() => '2147483648\n'),
    2 * GiB,
  );
  t.is(
    cgroupMemoryLimit(() => '9223372036854771712\n'),
    undefined,
    "cgroup v1's unlimited",
  );
});

test('jobs carry their memory estimate; ids do not depend on it; older jobs without it are accepted and estimated', (t) => {
  const plan = planStudy(join(ROOT, 'examples/paper-spheres.yaml'));
  const j900 = plan.jobs.find((j) => j.dataset.includes('dim=900') && j.trainSolver === 'euler:steps=128')!;
  const j2 = plan.jobs.find((j) => j.dataset.includes('dim=2') && j.trainSolver === 'euler:steps=1')!;
  t.is(j900.memory, estimateJobMemory(j900).total);
  t.true(j900.memory! > 4 * j2.memory!, `${j900.memory} vs ${j2.memory}`);
  // The id is the content hash of the config alone: with or without the estimate.
  const { memory: _m, ...older } = j900;
  t.is(jobId(older), j900.id);
  t.is(parseJob(older).id, j900.id);
  t.true(sameJob(older, j900));
  t.is(jobMemory(older), j900.memory!);
  // A job cannot claim to be smaller than this machine's estimate; a larger claim is kept.
  t.is(jobMemory({ ...j900, memory: 1 }), j900.memory!);
  t.is(jobMemory({ ...j900, memory: j900.memory! * 2 }), j900.memory! * 2);
  // Bounded by the job format (a worker checks it before anything else).
  t.throws(() => parseJob({ ...j900, memory: 2 ** 50 }), { message: /memory.*at most/ });
  t.throws(() => parseJob({ ...j900, memory: -1 }), { message: /memory/ });
});

test('the estimate tracks a real job: peak RSS of a small job within ±35 % of its estimate', async (t) => {
  // A fresh process (peak RSS is a process's high-water mark) runs one real job through runJobToResult.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'dist/scripts/job-memory.js'),
      join(ROOT, 'examples/quick-spheres.yaml'),
      '--solver',
      'rk4:0.1',
      '--iterations',
      '5',
      '--json',
    ],
    { cwd: ROOT },
  );
  const row = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: string; estimateMiB: number; peakMiB: number };
  t.is(row.status, 'done');
  const ratio = row.estimateMiB / row.peakMiB;
  t.log(`estimate ${row.estimateMiB} MiB, measured peak ${row.peakMiB} MiB (ratio ${ratio.toFixed(2)})`);
  t.true(ratio > 0.65 && ratio < 1.35, `ratio ${ratio.toFixed(2)}`);
});

/** Most jobs running at once, from a run's start and result events. */
function maxConcurrent(events: StudyEvent[]): number {
  const running = new Set<string>();
  let most = 0;
  for (const e of events) {
    if (e.type === 'start') running.add(e.id);
    else if (e.type === 'result') running.delete(e.result.id);
    most = Math.max(most, running.size);
  }
  return most;
}

function parseEvents(out: string): StudyEvent[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as StudyEvent);
}

test.serial(
  'pool: jobs run side by side only while their estimates fit --memory; a job over it runs alone',
  async (t) => {
    const dir = tempDir();
    // Small jobs (mlp:width=8) and big ones (mlp:width=2048: ~4 M parameters), all quick to run.
    const file = writeStudy(
      dir,
      's.yaml',
      [
        `datasets: [${JSON.stringify(TINY_DATASET)}]`,
        'field: [mlp:width=8, mlp:width=2048]',
        'grid: [{solver: euler, steps: [0.5]}]',
        'seeds: 2',
        'iterations: 20',
        'batchSize: 32',
        'lr: 0.01',
        'testSolvers: [rk4:0.25]',
        '',
      ].join('\n'),
    );
    const jobs = planStudy(file).jobs;
    const size = (w: number) => Math.max(...jobs.filter((j) => j.field.includes(`width=${w},`)).map((j) => j.memory!));
    const budget = 1.5 * size(8);
    t.true(size(2048) > budget, `${size(2048)} must be over ${budget}`);
    const r = await cliResult([
      'study',
      'run',
      file,
      '--out',
      join(dir, 'out'),
      '--workers',
      '2',
      '--memory',
      `${Math.floor(budget / MiB)}m`,
      '--events',
      '--no-report',
    ]);
    t.is(r.code, 0, r.err);
    const events = parseEvents(r.out);
    // Two threads, room for one small job: never two at once; the jobs over the budget still run, alone, and say so.
    t.is(events.filter((e) => e.type === 'result' && e.result.status === 'done').length, 4);
    t.is(maxConcurrent(events), 1);
    const plan = events.find((e) => e.type === 'plan');
    t.regex(plan?.type === 'plan' ? plan.transport : '', /memory \d+ MiB/);
    const alone = events.filter(
      (e) => e.type === 'log' && /more than the whole memory budget.*it runs alone/.test(e.message),
    );
    t.is(alone.length, 2, JSON.stringify(events.filter((e) => e.type === 'log')));
  },
);
