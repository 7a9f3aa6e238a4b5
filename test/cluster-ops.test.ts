// Operating a cluster: a frozen job process gives its slot back once its job is finished elsewhere, job
// temp dirs of dead workers go before the next job, and a bundle that cannot be written here (a full disk)
// is not recorded as the job's failure — the rerun records it done. Real nats-server, real workers.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NatsTransport } from '../src/cluster/nats-coordinator.js';
import { jobTmpRoot } from '../src/cluster/nats-job-run.js';
import { planStudy } from '../src/study/plan.js';
import type { JobSink } from '../src/study/transport.js';
import type { JobResult } from '../src/study/types.js';
import { resultLines, until, withCluster, worker } from './helpers/cluster.js';
import { cli, startNats, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

const children = (pid: number): number[] => {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test.serial(
  'a frozen job process (SIGSTOP) is stopped and its slot freed once its job is done elsewhere; job dirs of dead workers go before the next job',
  async (t) => {
    t.timeout(120_000);
    const deadPid = spawnSync('true').pid!;
    // Their own TMPDIR: every worker of this user on the machine (other test files' too) removes dead workers' dirs.
    const tmp = tempDir('odeness-tmpdir-');
    const stale = join(jobTmpRoot(tmp), `odeness-job-${deadPid}-stale1`);
    const workers = { args: ['--stall-timeout', '1'], env: { TMPDIR: tmp } };
    await withCluster(t, { workers }, async ({ dir, a, b, coordinator }) => {
      mkdirSync(stale, { recursive: true });
      writeFileSync(join(stale, 'leftover'), 'x');
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 4000 }));
      const out = join(dir, 'out');
      const c = coordinator(file, out, ['--ack-wait', '2']);
      const m = await c.waitFor(/"type":"start","id":"[0-9a-f]{16}","worker":"nats\/[^/]+\/(\d+)\//);
      const [frozenWorker, other] = Number(m[1]) === a.pid ? [a, b] : [b, a];
      await until(() => children(frozenWorker.pid).length > 0, 10_000);
      const frozen = children(frozenWorker.pid);
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      t.is(await c.exited, 0, c.err());
      t.regex(resultLines(out)[0]!.worker, new RegExp(`/${other.pid}/`), 'finished by the other worker');
      const t0 = Date.now();
      await frozenWorker.waitFor(/finished by another run: its job process is stopped, the slot freed/, 20_000);
      t.true(Date.now() - t0 < 20_000);
      await until(() => frozen.every((pid) => !alive(pid)), 10_000);
      t.false(existsSync(stale), "the dead worker's job dir was removed before a job ran");
      t.regex(
        a.err() + b.err(),
        new RegExp(`removed .*odeness-job-${deadPid}-stale1, left by a worker that no longer runs`),
      );
    });
  },
);

test.serial(
  'a bundle that cannot be written here is no job failure: the run ends with the reason, nothing recorded; with space again the same run records done',
  async (t) => {
    t.timeout(120_000);
    await withCluster(t, {}, async ({ nats, dir }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 100 }));
      const jobs = planStudy(file).jobs.map((job) => ({ job, attempt: 1 }));
      const notADir = join(tempDir(), 'file');
      writeFileSync(notADir, '');
      const sink = (bundleDir: () => string, recorded: JobResult[]): JobSink => ({
        tempBundleDir: async () => bundleDir(),
        discard: async () => undefined,
        started: () => undefined,
        progress: () => undefined,
        finished: async (r) => void recorded.push(r),
        log: () => undefined,
      });
      const failedRun: JobResult[] = [];
      const tr = await NatsTransport.connect({ url: nats.url });
      try {
        // A path whose parent is a file: every write fails locally (like ENOSPC), not in the message.
        await t.throwsAsync(
          tr.run(
            jobs,
            sink(() => join(notADir, 'bundle'), failedRun),
            new AbortController().signal,
          ),
          {
            message:
              /^cannot write the bundle of job [0-9a-f]{16} into the output directory \(ENOTDIR.*\); the result stays in the result bucket: rerun the same command once this is fixed$/,
          },
        );
      } finally {
        await tr.close();
      }
      t.deepEqual(
        failedRun.filter((r) => r.status === 'failed'),
        [],
        'no failed result recorded for a local write error',
      );
      const recorded: JobResult[] = [];
      const tr2 = await NatsTransport.connect({ url: nats.url });
      try {
        await tr2.run(
          jobs.filter((p) => !failedRun.some((r) => r.id === p.job.id)),
          sink(() => tempDir('odeness-bundle-'), recorded),
          new AbortController().signal,
        );
      } finally {
        await tr2.close();
      }
      t.deepEqual([...failedRun, ...recorded].map((r) => r.status).sort(), ['done', 'done']);
      t.is(execFileSync('ls', [notADir]).toString().trim(), notADir);
    });
  },
);

// JetStream reserves a bucket's whole size limit when it is made, against max_file_store (by default 75 % of
// the disk free when nats-server started): the 20 GiB bundles bucket does not fit a server on a small disk.
test.serial(
  'a server with less room than the default buckets: the bundles bucket is made as large as fits, with a warning, and the study runs',
  async (t) => {
    t.timeout(120_000);
    // 2 GB: the 1 GiB results bucket fits, then 20 GiB halved until it fits the rest (640 MiB).
    await withCluster(t, { natsConfig: 'jetstream { max_file_store: 2GB }' }, async ({ dir, a, b, coordinator }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 4 }));
      const out = join(dir, 'out');
      const c = coordinator(file, out);
      t.is(await c.exited, 0, c.err());
      t.deepEqual(
        resultLines(out).map((r) => r.status),
        ['done', 'done'],
      );
      const notice =
        /cannot reserve 20 GiB for the bundles bucket odeness-bundles \(its JetStream storage, max_file_store.*\): its limit is 640 MiB/;
      t.regex(a.err() + b.err(), notice, 'the worker that made the bucket says so');
      t.regex(c.out() + c.err(), notice, 'the coordinator, which asks for 20 GiB, says what it got');
    });
  },
);

test.serial(
  'a server with no room for even the smallest buckets: worker and coordinator say so within seconds',
  async (t) => {
    t.timeout(60_000);
    const nats = await startNats({ config: 'jetstream { max_file_store: 32MB }' });
    try {
      const dir = tempDir();
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 4 }));
      const full = /has no room left in its JetStream storage \(creating the buckets: .*insufficient storage resources/;
      const t0 = Date.now();
      const w = worker(nats.url);
      t.is(await w.exited, 1, w.err());
      t.regex(w.err(), full);
      t.notRegex(w.err(), /internal error/);
      const c = cli(['study', 'run', file, '--out', join(dir, 'out'), '--nats', nats.url]);
      t.is(await c.exited, 1, c.err());
      t.regex(c.err(), full);
      t.true(Date.now() - t0 < 30_000, `${Date.now() - t0} ms`);
    } finally {
      await nats.stop();
    }
  },
);
