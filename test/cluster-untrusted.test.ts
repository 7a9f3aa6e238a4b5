import test from 'ava';
import { execFileSync } from 'node:child_process';
import { symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { decodeResultMessage, encode } from '../src/cluster/codec.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import { JOB_SUBJECT_PREFIX, openCluster, type ClusterHandles } from '../src/cluster/nats-resources.js';
import { PROTOCOL_VERSION, type JobMessage, type ResultMessage } from '../src/cluster/protocol.js';
import { jobId, planStudy } from '../src/study/plan.js';
import type { Job } from '../src/study/types.js';
import { jsonEvents, resultLines, withCluster } from './helpers/cluster.js';
import { tempDir, TINY_DATASET, tinyStudy, writeStudy } from './helpers/procs.js';

// Job messages published straight onto the work queue, as anyone allowed to publish there could.

const BASE: Omit<Job, 'id'> = {
  dataset: TINY_DATASET,
  field: 'mlp:width=8',
  trainSolver: 'euler:0.5',
  adapt: false,
  seed: 1,
  iterations: 50,
  batchSize: 32,
  lr: 0.01,
  testSolvers: ['rk4:0.1'],
  audit: { crossing: false, fan: false },
  engine: 'auto',
};

function job(over: Partial<Omit<Job, 'id'>>): Job {
  const j = { ...BASE, ...over };
  return { id: jobId(j), ...j };
}

async function publish(h: ClusterHandles, msg: Record<string, unknown>, id: string, msgID?: string): Promise<void> {
  await h.js.publish(
    `${JOB_SUBJECT_PREFIX}${id}`,
    new Packr({ useRecords: false, moreTypes: true }).pack(msg),
    msgID ? { msgID } : {},
  );
}

async function resultOf(h: ClusterHandles, id: string, ms = 20_000): Promise<ResultMessage> {
  const end = Date.now() + ms;
  for (;;) {
    const e = await h.kv.get(id);
    if (e && e.operation === 'PUT') return decodeResultMessage(e.value);
    if (Date.now() > end) throw new Error(`no result for ${id} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.serial(
  'forged job messages: files outside --data-root, FIFOs, symlinks, oversized files, unbounded sizes → failed results without file contents; a forged id is dropped',
  async (t) => {
    t.timeout(90_000);
    const data = tempDir('odeness-data-');
    execFileSync('mkfifo', [join(data, 'fifo.json')]);
    symlinkSync('/etc/shadow', join(data, 'shadow.json'));
    writeFileSync(join(data, 'big.json'), '');
    truncateSync(join(data, 'big.json'), 3 * 2 ** 20); // sparse: 3 MB, more than --max-dataset-mb 2
    await withCluster(
      t,
      { workers: { args: ['--data-root', data, '--max-dataset-mb', '2'] } },
      async ({ nats, a, b }) => {
        const nc = await connectNats({ url: nats.url });
        try {
          const h = await openCluster(nc, nats.url);
          const cases: [Job, RegExp][] = [
            [job({ dataset: 'json:/etc/shadow' }), /^dataset path \/etc\/shadow is outside this worker's --data-root$/],
            [job({ dataset: 'json:/dev/zero' }), /^dataset path \/dev\/zero is outside this worker's --data-root$/],
            [job({ dataset: `json:${data}/fifo.json` }), /^dataset path .*fifo\.json is not a regular file$/],
            [
              job({ dataset: `json:${data}/shadow.json` }),
              /^dataset path .*shadow\.json is outside this worker's --data-root$/,
            ],
            [
              job({ dataset: `json:${data}/big.json` }),
              /^dataset file .*big\.json has 3145728 bytes, more than the 2097152 this worker accepts/,
            ],
            [job({ testSolvers: ['euler:1e-12'] }), /^solver spec "euler:1e-12": .*exceeds the limit of 100000 steps/],
            [job({ field: 'mlp:width=1000000' }), /width/],
            [job({ dataset: 'spheres:dupont2019:dim=2,n=100000000' }), /n=100000000 exceeds the limit of 10000000/],
          ];
          for (const [j] of cases)
            await publish(h, { v: PROTOCOL_VERSION, job: j, attempt: 1, maxDeliver: 5 } satisfies JobMessage, j.id);
          // A job whose id is not its content hash: could pose as another job; dropped without a result.
          const impostor = { ...job({ seed: 99 }), id: job({ seed: 100 }).id };
          await publish(h, { v: PROTOCOL_VERSION, job: impostor, attempt: 1, maxDeliver: 5 }, impostor.id);
          // Out of the job format's bounds (src/formats/job.ts): not even a job; dropped, nothing allocated.
          const huge = job({ iterations: 1e12 });
          await publish(h, { v: PROTOCOL_VERSION, job: huge, attempt: 1, maxDeliver: 5 }, huge.id);
          for (const [j, error] of cases) {
            const r = (await resultOf(h, j.id)).result;
            t.is(r.status, 'failed', j.dataset);
            t.regex(r.error!, error);
            t.false(r.error!.includes('root:'), 'no file content in the error');
            t.is(r.timings.ms < 1000, true, 'refused before running');
          }
          await Promise.race([
            a.waitFor(/is not the content hash of the job/),
            b.waitFor(/is not the content hash of the job/),
          ]);
          await Promise.race([
            a.waitFor(/dropping a job message .*job\.iterations/),
            b.waitFor(/dropping a job message .*job\.iterations/),
          ]);
          t.is(await h.kv.get(impostor.id), null, 'no result stored under an impostor id');
          t.is(await h.kv.get(huge.id), null);
          t.is(a.child.exitCode, null, 'worker a still runs');
          t.is(b.child.exitCode, null, 'worker b still runs');
        } finally {
          await nc.close();
        }
      },
    );
  },
);

test.serial(
  "a queued message of another protocol version (same msg id) is left by the workers, never failed, and replaced by the coordinator's own",
  async (t) => {
    t.timeout(90_000);
    await withCluster(t, {}, async ({ nats, dir, a, b, coordinator }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 100 }));
      const [planned] = planStudy(file).jobs;
      const nc = await connectNats({ url: nats.url });
      try {
        const h = await openCluster(nc, nats.url);
        // An older coordinator's message for the same job, under the message id older coordinators used.
        await publish(h, { v: PROTOCOL_VERSION - 1, job: planned, attempt: 1 }, planned!.id, `${planned!.id}.1`);
        await Promise.race([
          a.waitFor(/leaving job .* for another worker: job message has protocol version/),
          b.waitFor(/leaving job .* for another worker: job message has protocol version/),
        ]);
        t.is(await h.kv.get(planned!.id), null, 'no failed result: a worker of that version may still run it');
      } finally {
        await nc.close();
      }
      const out = join(dir, 'out');
      const c = coordinator(file, out);
      t.is(await c.exited, 0, c.err());
      t.deepEqual(
        resultLines(out).map((r) => r.status),
        ['done'],
      );
      t.like(jsonEvents(c.out()).at(-1), { type: 'end', counts: { total: 1, done: 1, pending: 0 } });
    });
  },
);

test.serial(
  "signed jobs: workers with --job-key-file run the coordinator's signed jobs and drop unsigned or wrongly signed ones",
  async (t) => {
    t.timeout(90_000);
    const keys = tempDir('odeness-key-');
    writeFileSync(join(keys, 'key'), 'a shared secret of the cluster\n');
    writeFileSync(join(keys, 'other'), 'another secret, not the cluster one\n');
    writeFileSync(join(keys, 'short'), 'short\n');
    await withCluster(
      t,
      { workers: { args: ['--job-key-file', join(keys, 'key')] } },
      async ({ nats, dir, a, b, coordinator }) => {
        const nc = await connectNats({ url: nats.url });
        try {
          const h = await openCluster(nc, nats.url);
          const unsigned = job({ seed: 5 });
          await publish(h, { v: PROTOCOL_VERSION, job: unsigned, attempt: 1, maxDeliver: 5 }, unsigned.id);
          const forged = job({ seed: 6 });
          await publish(
            h,
            { v: PROTOCOL_VERSION, job: forged, attempt: 1, maxDeliver: 5, sig: 'ab'.repeat(32) },
            forged.id,
          );
          const logs = () => a.err() + b.err();
          await Promise.race([a.waitFor(/is not signed/), b.waitFor(/is not signed/)]);
          await Promise.race([a.waitFor(/wrong signature/), b.waitFor(/wrong signature/)]);
          t.regex(
            logs(),
            new RegExp(
              `leaving job ${unsigned.id} \\(delivery \\d+\\) for another worker: the job message is not signed, and this worker requires signed jobs`,
            ),
          );
          t.is(await h.kv.get(unsigned.id), null);
          t.is(await h.kv.get(forged.id), null);
        } finally {
          await nc.close();
        }
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 100 }));
        const ok = coordinator(file, join(dir, 'out'), ['--job-key-file', join(keys, 'key')]);
        t.is(await ok.exited, 0, ok.err());
        t.deepEqual(
          resultLines(join(dir, 'out')).map((r) => r.status),
          ['done', 'done'],
        );
        const short = coordinator(file, join(dir, 'out2'), ['--job-key-file', join(keys, 'short')]);
        t.is(await short.exited, 1);
        t.regex(short.err(), /--job-key-file .*short: the key must be at least 16 characters/);
      },
    );
  },
);

test('encode → decode keeps a job message whole (the codec the forged messages above bypass)', (t) => {
  const j = job({});
  const back = new Packr({ useRecords: false, moreTypes: true }).unpack(
    encode({ v: PROTOCOL_VERSION, job: j, attempt: 2, maxDeliver: 3 }),
  );
  t.deepEqual(back, { v: PROTOCOL_VERSION, job: j, attempt: 2, maxDeliver: 3 });
});
