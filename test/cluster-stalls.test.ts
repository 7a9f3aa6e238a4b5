// No stall without a reason: every state in which a coordinator waits either ends by itself or is reported,
// each within a deadline, against a real nats-server.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AckPolicy } from '@nats-io/jetstream';
import { Packr } from 'msgpackr';
import { decodeResultMessage, encode } from '../src/cluster/codec.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import {
  CONSUMER,
  JOB_SUBJECT_PREFIX,
  openCluster,
  STREAM,
  type ClusterHandles,
} from '../src/cluster/nats-resources.js';
import { PROTOCOL_VERSION } from '../src/cluster/protocol.js';
import { decodeRefusal, encodeRefusal, REFUSAL_SUBJECT_PREFIX, type RefusalNotice } from '../src/cluster/refusals.js';
import { planStudy } from '../src/study/plan.js';
import { jsonEvents, resultLines, until, withCluster, worker } from './helpers/cluster.js';
import { cli, cliResult, startNats, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

const pack = (m: unknown) => new Packr({ useRecords: false, moreTypes: true }).pack(m);

async function withHandles<T>(url: string, f: (h: ClusterHandles) => Promise<T>): Promise<T> {
  const nc = await connectNats({ url });
  try {
    return await f(await openCluster(nc, url));
  } finally {
    await nc.close();
  }
}

test.serial(
  'study clean, then the same study at once (inside the duplicate window) runs to the end; so does a clean while its coordinator waits',
  async (t) => {
    t.timeout(150_000);
    const nats = await startNats();
    const dir = tempDir();
    const procs = [];
    try {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 50 }));
      // No worker yet: the coordinator queues and waits; study clean removes its queued jobs under it.
      const first = cli(['study', 'run', file, '--out', join(dir, 'out1'), '--nats', nats.url, '--events']);
      procs.push(first);
      await first.waitFor(/queued on nats/, 60_000);
      const clean = await cliResult(['study', 'clean', file, '--nats', nats.url, '--json']);
      t.is(clean.code, 0, clean.err);
      t.like(JSON.parse(clean.out), { jobs: 2, queued: 2 });
      const w = worker(nats.url);
      procs.push(w);
      await w.waitFor(/pulling from/);
      const t0 = Date.now();
      t.is(await first.exited, 0, first.err());
      t.regex(first.out(), /no longer queued and has no result .*queuing it again/);
      t.true(Date.now() - t0 < 40_000, `the waiting coordinator requeued and finished in ${Date.now() - t0} ms`);
      t.deepEqual(
        resultLines(join(dir, 'out1')).map((r) => r.status),
        ['done', 'done'],
      );

      // Clean, then the same study again at once: its job messages are not dropped as duplicates.
      t.is((await cliResult(['study', 'clean', file, '--nats', nats.url])).code, 0);
      const t1 = Date.now();
      const again = cli(['study', 'run', file, '--out', join(dir, 'out2'), '--nats', nats.url, '--events']);
      procs.push(again);
      t.is(await again.exited, 0, again.err());
      t.true(Date.now() - t1 < 40_000, `rerun after clean took ${Date.now() - t1} ms`);
      t.deepEqual(
        resultLines(join(dir, 'out2')).map((r) => r.status),
        ['done', 'done'],
      );
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      await nats.stop();
    }
  },
);

test.serial(
  'a coordinator with another job key: reported as refused by every worker within a deadline, nothing recorded; restarted at once with the right key it finishes',
  async (t) => {
    t.timeout(150_000);
    const keys = tempDir('odeness-key-');
    writeFileSync(join(keys, 'key'), 'a shared secret of the cluster\n');
    writeFileSync(join(keys, 'other'), 'another secret, not the cluster one\n');
    await withCluster(
      t,
      { workers: { args: ['--job-key-file', join(keys, 'key')] } },
      async ({ dir, a, b, coordinator }) => {
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 50 }));
        const out = join(dir, 'out');
        const t0 = Date.now();
        const wrong = coordinator(file, out, ['--job-key-file', join(keys, 'other')]);
        t.is(await wrong.exited, 1, wrong.err());
        t.true(Date.now() - t0 < 60_000, `reported after ${Date.now() - t0} ms`);
        t.regex(
          wrong.err(),
          /2 job\(s\) were refused by every worker that saw them, and nothing was recorded for them: 2 job\(s\): the job message has a wrong signature \(another --job-key-file\?\) \(workers? nats\//,
        );
        t.regex(wrong.out(), /refuses jobs of this study \(signature\)/);
        t.deepEqual(resultLines(out), [], 'no result recorded for a refused job');
        t.regex(
          a.err() + b.err(),
          /leaving job [0-9a-f]{16} \(delivery \d+\) for another worker: the job message has a wrong signature/,
        );

        const right = coordinator(file, out, ['--job-key-file', join(keys, 'key')]);
        t.is(await right.exited, 0, right.err());
        t.deepEqual(
          resultLines(out).map((r) => r.status),
          ['done', 'done'],
        );
        t.like(jsonEvents(right.out()).at(-1), { type: 'end', counts: { total: 2, done: 2 } });
      },
    );
  },
);

test.serial(
  'another protocol version: signed workers leave an unsigned old-version message (no stored failure), a forged huge attempt is ignored, the job runs; a worker of another version is named and its refusals reported',
  async (t) => {
    t.timeout(150_000);
    const keys = tempDir('odeness-key-');
    writeFileSync(join(keys, 'key'), 'a shared secret of the cluster\n');
    await withCluster(
      t,
      { workers: { args: ['--job-key-file', join(keys, 'key')] } },
      async ({ nats, dir, a, b, coordinator }) => {
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 50 }));
        const [job] = planStudy(file).jobs;
        const notices: RefusalNotice[] = [];
        await withHandles(nats.url, async (h) => {
          const sub = h.nc.subscribe(`${REFUSAL_SUBJECT_PREFIX}*`, {
            callback: (_e, m) => void notices.push(decodeRefusal(m.data)!),
          });
          // An unsigned message of another protocol version for a genuine job id, with an out-of-bounds attempt.
          await h.js.publish(
            `${JOB_SUBJECT_PREFIX}${job!.id}`,
            pack({ v: PROTOCOL_VERSION + 1, job, attempt: Number.MAX_SAFE_INTEGER, maxDeliver: 5 }),
          );
          await Promise.race([
            a.waitFor(/leaving job .* protocol version/),
            b.waitFor(/leaving job .* protocol version/),
          ]);
          await h.nc.flush();
          t.is(await h.kv.get(job!.id), null, 'no failed result stored for an unsigned message');
          // The worker logs before its notice is out: wait for the notice, not only the log line.
          await until(() => notices.length > 0, 10_000);
          t.like(notices[0], { id: job!.id, v: PROTOCOL_VERSION, kind: 'version' });
          sub.unsubscribe();
          // A forged failed result with an attempt no retry can exceed: not readable as a result, so ignored.
          const forged = {
            v: PROTOCOL_VERSION,
            result: {
              id: job!.id,
              job,
              status: 'failed',
              attempt: Number.MAX_SAFE_INTEGER,
              worker: 'x',
              error: 'forged',
              timings: { startedAt: 'a', finishedAt: 'b', ms: 0 },
            },
          };
          await h.kv.put(job!.id, encode(forged as never));
        });
        const out = join(dir, 'out');
        const c = coordinator(file, out, ['--job-key-file', join(keys, 'key')]);
        t.is(await c.exited, 0, c.err());
        t.deepEqual(
          resultLines(out).map((r) => [r.status, r.attempt]),
          [['done', 1]],
        );
        t.regex(c.out(), /replaced a queued message that was not this coordinator's/);
        await withHandles(nats.url, async (h) =>
          t.is(decodeResultMessage((await h.kv.get(job!.id))!.value).result.status, 'done'),
        );
      },
    );

    // A worker of protocol version 99 (played by a raw client) alone: named at once, its refusals reported, no wait for ever.
    const nats = await startNats();
    const dir = tempDir();
    try {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.25]', iterations: 50 }));
      const t0 = Date.now();
      const c = cli(['study', 'run', file, '--out', join(dir, 'out'), '--nats', nats.url, '--events']);
      await c.waitFor(/queued on nats/, 60_000);
      await withHandles(nats.url, async (h) => {
        const info = await h.jsm.consumers.info(STREAM, CONSUMER);
        t.is(info.config.ack_policy, AckPolicy.Explicit);
        const consumer = await h.js.consumers.get(STREAM, CONSUMER);
        const stop = Date.now() + 60_000;
        while (c.child.exitCode === null && Date.now() < stop) {
          const m = await consumer.next({ expires: 1000 });
          if (!m) continue;
          const id = m.subject.slice(JOB_SUBJECT_PREFIX.length);
          h.nc.publish(
            `${REFUSAL_SUBJECT_PREFIX}${id}`,
            encodeRefusal({
              id,
              worker: 'nats/future/1',
              v: 99,
              kind: 'version',
              reason: `job message has protocol version ${PROTOCOL_VERSION}; this odeness speaks version 99`,
            }),
          );
          m.nak(500);
        }
      });
      t.is(await c.exited, 1, c.err());
      t.true(Date.now() - t0 < 70_000, `reported after ${Date.now() - t0} ms`);
      t.regex(
        c.out(),
        new RegExp(`worker nats/future/1 speaks protocol version 99, this coordinator ${PROTOCOL_VERSION}`),
      );
      t.regex(
        c.err(),
        new RegExp(
          '1 job\\(s\\) were refused by every worker .*protocol version 99 ' +
            `\\(this coordinator speaks ${PROTOCOL_VERSION}\\) \\(worker nats/future/1\\)`,
        ),
      );
    } finally {
      await nats.stop();
    }
  },
);
