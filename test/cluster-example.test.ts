import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectNats } from '../src/cluster/nats-connect.js';
import { JOB_SUBJECT_PREFIX, openCluster } from '../src/cluster/nats-resources.js';
import { resultLines, withCluster } from './helpers/cluster.js';
import { ROOT, tinyStudy, writeStudy } from './helpers/procs.js';

// examples/nats/odeness.conf as shipped: a study runs through it, and each user can do only its part.

const natsEnv = { ODENESS_COORDINATOR_PASSWORD: 'coordinator-Pa55-word', ODENESS_WORKER_PASSWORD: 'worker-Pa55-word' };
const config = readFileSync(join(ROOT, 'examples/nats/odeness.conf'), 'utf8');

test.serial(
  'the least-privilege example account: a study completes; a worker cannot publish jobs, nobody can publish advisories',
  async (t) => {
    t.timeout(120_000);
    const workers = { args: ['--user', 'worker'], env: { NATS_PASSWORD: natsEnv.ODENESS_WORKER_PASSWORD } };
    await withCluster(
      t,
      {
        natsConfig: config,
        natsEnv,
        workers,
        waitFor: /pulling from|waiting for a coordinator/,
        coordinatorArgs: ['--user', 'coordinator'],
      },
      async ({ nats, dir, a, b, coordinator }) => {
        const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 100 }));
        const out = join(dir, 'out');
        const c = coordinator(file, out, [], { NATS_PASSWORD: natsEnv.ODENESS_COORDINATOR_PASSWORD });
        t.is(await c.exited, 0, c.out() + c.err());
        t.deepEqual(
          resultLines(out).map((r) => r.status),
          ['done', 'done'],
        );
        t.regex(a.err() + b.err(), /done in \d+ ms/);

        const worker = await connectNats({ url: nats.url, user: 'worker', password: natsEnv.ODENESS_WORKER_PASSWORD });
        try {
          const h = await openCluster(worker, nats.url);
          await t.throwsAsync(
            h.js.publish(`${JOB_SUBJECT_PREFIX}0123456789abcdef`, new Uint8Array([1]), { timeout: 2000 }),
            undefined,
            'a worker may not publish jobs',
          );
          await t.throwsAsync(
            h.jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }),
            { message: /permission|authorization|timeout/i },
            'nor create streams',
          );
        } finally {
          await worker.close();
        }
        const coord = await connectNats({
          url: nats.url,
          user: 'coordinator',
          password: natsEnv.ODENESS_COORDINATOR_PASSWORD,
        });
        try {
          const errors: string[] = [];
          void (async () => {
            for await (const s of coord.status())
              if (s.type === 'error') errors.push(String((s as { error?: unknown }).error ?? ''));
          })();
          coord.publish('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ODENESS_JOBS.odeness-workers', '{}');
          await coord.flush();
          await new Promise((r) => setTimeout(r, 300));
          t.regex(errors.join('\n'), /permission/i, 'advisories cannot be forged by the coordinator user either');
        } finally {
          await coord.close();
        }
      },
    );
  },
);
