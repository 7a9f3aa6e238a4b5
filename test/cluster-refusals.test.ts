// Refusals against a real nats-server: a delivery a worker refuses is no run (it does not use up the
// coordinator's --max-deliver), and a worker with an idle slot is alive for the coordinator, so jobs the
// others refuse wait for it, and are reported once it is gone.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readKeyFile } from '../src/cluster/job-checks.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import {
  ALIVE_SUBJECT,
  decodeAlive,
  RefusedDeliveries,
  REFUSAL_MAX_DELIVERIES,
  type RefusalNotice,
} from '../src/cluster/refusals.js';
import { aliveAuthentic, sealAlive } from '../src/cluster/result-auth.js';
import { resultLines, withCluster } from './helpers/cluster.js';
import { tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

function keyFiles(): { key: string; other: string } {
  const keys = tempDir('odeness-key-');
  writeFileSync(join(keys, 'key'), 'a shared secret of the cluster\n');
  writeFileSync(join(keys, 'other'), 'another secret, not the cluster one\n');
  return { key: join(keys, 'key'), other: join(keys, 'other') };
}

test('refused deliveries are counted per message (job id and stream sequence), at most REFUSAL_MAX_DELIVERIES', (t) => {
  const r = new RefusedDeliveries();
  const notice = (seq?: number): RefusalNotice => ({
    id: '0123456789abcdef',
    worker: 'nats/h/1',
    v: 2,
    kind: 'memory',
    reason: 'too big',
    ...(seq !== undefined ? { seq } : {}),
  });
  r.heard(notice(7));
  r.heard(notice(7));
  r.heard(notice(8));
  r.heard(notice()); // an older worker's notice names no message: not counted
  t.is(r.of('0123456789abcdef', 7), 2);
  t.is(r.of('0123456789abcdef', 8), 1);
  t.is(r.of('0123456789abcdef', 9), 0);
  for (let i = 0; i < REFUSAL_MAX_DELIVERIES + 50; i++) r.heard(notice(9));
  t.is(r.of('0123456789abcdef', 9), REFUSAL_MAX_DELIVERIES, 'forged notices lift a limit by a bounded amount');
});

test.serial(
  "a wrong-key worker's refusals do not use up --max-deliver 1: the right-key worker runs every job",
  async (t) => {
    t.timeout(150_000);
    const { key, other } = keyFiles();
    await withCluster(
      t,
      { workers: [{ args: ['--job-key-file', other] }, { args: ['--job-key-file', key] }] },
      async ({ dir, a, b, coordinator }) => {
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 4, iterations: 50 }));
        const out = join(dir, 'out');
        const t0 = Date.now();
        const c = coordinator(file, out, ['--job-key-file', key, '--max-deliver', '1']);
        t.is(await c.exited, 0, c.err());
        t.true(Date.now() - t0 < 60_000, `finished after ${Date.now() - t0} ms`);
        const results = resultLines(out);
        t.deepEqual(
          results.map((r) => r.status),
          ['done', 'done', 'done', 'done'],
          JSON.stringify(results.map((r) => r.error)),
        );
        for (const r of results) t.regex(r.worker, new RegExp(`^nats/[^/]+/${b.pid}/`));
        t.regex(
          a.err(),
          /leaving job [0-9a-f]{16} \(delivery 1\) for another worker: the job message has a wrong signature/,
        );
        t.regex(b.err(), /done in \d+ ms \(delivery [2-9]/, 'b ran a job that a had refused');
        t.notRegex(b.err(), /given up after too many deliveries/);
        t.notRegex(c.out() + c.err(), /deliveries ran out/);
      },
    );
  },
);

test.serial(
  'an idle worker says it is alive (sealed); a coordinator waits for it with jobs the others refuse and reports them once it is gone',
  async (t) => {
    t.timeout(150_000);
    const { key, other } = keyFiles();
    const secret = readKeyFile('key', key);
    const otherSecret = readKeyFile('other', other);
    // Both workers hold another key: they refuse every job. A third worker, played by a raw client, is idle and
    // says so (sealed with the cluster's key) until it goes; forged (unsealed) notices go on all the time.
    await withCluster(t, { workers: { args: ['--job-key-file', other] } }, async ({ dir, nats, coordinator }) => {
      const nc = await connectNats({ url: nats.url });
      const heard: string[] = [];
      const sub = nc.subscribe(ALIVE_SUBJECT, {
        callback: (err, m) => {
          const n = err ? undefined : decodeAlive(m.data);
          if (n) heard.push(`${n.worker} ${aliveAuthentic(otherSecret, n) ? 'sealed' : 'unsealed'}`);
        },
      });
      let idleGone = false;
      const timer = setInterval(() => {
        if (!idleGone)
          nc.publish(ALIVE_SUBJECT, JSON.stringify(sealAlive(secret, { worker: 'nats/idle/1', at: Date.now() })));
        nc.publish(ALIVE_SUBJECT, JSON.stringify({ worker: 'nats/forged/1', at: Date.now() }));
      }, 1_000);
      try {
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 50 }));
        const c = coordinator(file, join(dir, 'out'), ['--job-key-file', key]);
        await c.waitFor(/refuses jobs of this study \(signature\)/, 60_000);
        // Past the refusal grace (15 s) the coordinator still waits: a worker that may take the jobs is alive.
        const exitedEarly = await Promise.race([c.exited.then(() => true), sleep(20_000).then(() => false)]);
        t.false(exitedEarly, c.err());
        idleGone = true;
        const t0 = Date.now();
        t.is(await c.exited, 1, c.err());
        t.true(Date.now() - t0 < 30_000, `reported ${Date.now() - t0} ms after the idle worker went`);
        t.regex(c.err(), /2 job\(s\) were refused by every worker that saw them/);
        // The real workers, idle between refusals, said so themselves, sealed with their own key.
        t.true(
          heard.some((h) => /^nats\/[^/]+\/\d+ sealed$/.test(h)),
          heard.slice(0, 5).join('; '),
        );
      } finally {
        clearInterval(timer);
        sub.unsubscribe();
        await nc.close();
      }
    });
  },
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
