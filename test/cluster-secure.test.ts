import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../src/cluster/codec.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import { CONSUMER, openCluster, STREAM } from '../src/cluster/nats-resources.js';
import { PROTOCOL_VERSION, type EventMessage } from '../src/cluster/protocol.js';
import { planStudy } from '../src/study/plan.js';
import { runStudy } from '../src/study/run.js';
import { NatsTransport } from '../src/cluster/nats-coordinator.js';
import { BIN } from './helpers/cli.js';
import { jsonEvents, resultLines, stopAll, withCluster, worker } from './helpers/cluster.js';
import { spawnProc, startNats, tempDir, tinyStudy, writeStudy, type Proc } from './helpers/procs.js';
import { forgedDone, job, pack, publishJob, publishObjectMeta, resultOf } from './helpers/wire.js';

// Issue 25, against a real nats-server on 127.0.0.1: what an attacker holding only the NATS
// credentials (or a worker's) can do to a shared cluster, through the wire and the real CLI.

const SECRET = 'TOP-SECRET-CONTENT';

/** Pids of the processes whose parent is `pid` (from /proc). */
function childPids(pid: number): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

/** A tiny, valid JSON dataset (2-d points, two classes). */
function tinyJson(): string {
  const x = Array.from({ length: 64 }, (_, i) => [Math.cos(i), Math.sin(i) * (i % 2 ? 2 : 0.5)]);
  return JSON.stringify({ x, y: x.map((_, i) => i % 2) });
}

test.serial(
  'finding 1: file datasets are resolved under --data-root and opened without following; no file content reaches an error',
  async (t) => {
    t.timeout(120_000);
    const cwd = tempDir('odeness-cwd-');
    const root = join(cwd, 'data');
    mkdirSync(root);
    writeFileSync(join(cwd, 'leak.json'), `${SECRET} not json`);
    writeFileSync(join(cwd, 'good-outside.json'), tinyJson());
    writeFileSync(join(root, 'ok.json'), tinyJson());
    writeFileSync(join(root, 'bad.json'), `${SECRET} inside the root, not json`);
    execFileSync('mkfifo', [join(root, 'fifo.json')]);
    symlinkSync(join(cwd, 'good-outside.json'), join(root, 'link.json'));
    symlinkSync(cwd, join(root, 'sub'));
    const nats = await startNats();
    // The worker runs in `cwd`, where leak.json lies: a relative name must not be read from there.
    const w = spawnProc(process.execPath, [BIN, 'worker', '--nats', nats.url, '--workers', '1', '--data-root', root], {
      cwd,
    });
    const nc = await connectNats({ url: nats.url });
    try {
      await w.waitFor(/pulling from/);
      const h = await openCluster(nc, nats.url);
      const cases: [string, RegExp][] = [
        ['json:leak.json', /leak\.json: file not found|leak\.json.*not found/],
        ['json:../leak.json', /outside this worker's --data-root/],
        ['json:link.json', /outside this worker's --data-root|symbolic link/],
        ['json:sub/good-outside.json', /outside this worker's --data-root/],
        ['json:fifo.json', /not a regular file/],
        ['json:/dev/zero', /outside this worker's --data-root/],
        ['json:bad.json', /^bad\.json: not valid JSON( \(at character \d+\))?$/],
      ];
      const started = Date.now();
      for (const [dataset] of cases) {
        const j = job({ dataset });
        await publishJob(h, { v: PROTOCOL_VERSION, job: j, attempt: 1, maxDeliver: 5 }, j.id);
      }
      const ok = job({ dataset: 'json:ok.json' });
      await publishJob(h, { v: PROTOCOL_VERSION, job: ok, attempt: 1, maxDeliver: 5 }, ok.id);
      for (const [dataset, error] of cases) {
        const r = (await resultOf(h, job({ dataset }).id)).result;
        t.is(r.status, 'failed', dataset);
        t.regex(r.error ?? '', error, dataset);
        t.false((r.error ?? '').includes(SECRET), `no file content in the error of ${dataset}`);
      }
      t.true(Date.now() - started < 60_000, 'the FIFO hangs nothing');
      const done = (await resultOf(h, ok.id, 60_000)).result;
      t.is(done.status, 'done', `a relative name is read under the data root: ${done.error ?? ''}`);
      t.is(done.job.dataset, 'json:ok.json');
    } finally {
      await nc.close();
      await stopAll([w]);
      await nats.stop();
    }
  },
);

test.serial(
  'findings 2 and 10: with signed jobs, an unsealed done result is refused and the job runs for real; spoofed and replayed progress events are ignored',
  async (t) => {
    t.timeout(150_000);
    const keys = tempDir('odeness-key-');
    writeFileSync(join(keys, 'key'), 'a shared secret of the cluster\n');
    const keyArgs = ['--job-key-file', join(keys, 'key')];
    await withCluster(t, { workers: { args: keyArgs } }, async ({ nats, dir, coordinator }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 100 }));
      const [j1, j2] = planStudy(file).jobs;
      const nc = await connectNats({ url: nats.url });
      try {
        const h = await openCluster(nc, nats.url);
        // Someone holding only the NATS credentials: a done result (accuracy 1.0) with a bundle holding one README.
        await h.os.putBlob(
          { name: `${j1!.id}.${'a'.repeat(16)}` },
          encode({ v: PROTOCOL_VERSION, files: [{ path: 'README', data: new TextEncoder().encode('pwned') }] }),
        );
        await h.kv.create(j1!.id, encode(forgedDone(j1!, 'a'.repeat(16))));
        const out = join(dir, 'out');
        const c = coordinator(file, out, keyArgs);
        await c.waitFor(/queued on nats/);
        // Spoofed events for both jobs, unsealed and with a made-up seal, while the coordinator waits.
        const spoof = (ev: Partial<EventMessage>) =>
          nc.publish(
            `odeness.events.${ev.id}`,
            pack({ v: PROTOCOL_VERSION, kind: 'start', worker: 'EVIL-WORKER', at: Date.now(), ...ev }),
          );
        for (let i = 0; i < 20; i++) {
          spoof({ id: j2!.id });
          spoof({ id: j1!.id, mac: 'ab'.repeat(32) });
          await new Promise((r) => setTimeout(r, 20));
        }
        t.is(await c.exited, 0, c.err());
        t.regex(
          c.out(),
          new RegExp(`ignoring a result under ${j1!.id} from mallory: it is not sealed with the cluster's job key`),
        );
        const results = resultLines(out);
        t.deepEqual(
          results.map((r) => r.status),
          ['done', 'done'],
        );
        for (const r of results) {
          t.not(r.worker, 'mallory');
          t.true(r.timings.ms > 1, 'a real run');
        }
        const starts = jsonEvents(c.out()).filter((e) => e.type === 'start') as { worker: string }[];
        t.true(starts.length >= 2, 'genuine start events arrive');
        t.false(
          starts.some((e) => e.worker === 'EVIL-WORKER'),
          'no spoofed event counts',
        );
        // The stored results are sealed, with the bundle's size and digest.
        const stored = await resultOf(h, j1!.id);
        t.regex(stored.mac ?? '', /^[0-9a-f]{64}$/);
        t.regex(stored.bundleDigest ?? '', /^[0-9a-f]{64}$/);
      } finally {
        await nc.close();
      }
    });
  },
);

test.serial(
  'finding 9: forged object metadata (oversized, 5 GB in 40 960 chunks, links, missing chunks, a wrong digest) fails each job within seconds, naming why; no bucket is created',
  async (t) => {
    t.timeout(150_000);
    // No workers run jobs here: every result is forged, on an unsigned cluster (the metadata path).
    const nats = await startNats();
    const nc = await connectNats({ url: nats.url });
    const dir = tempDir();
    let c: Proc | undefined;
    try {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 6, iterations: 50 }));
      const jobs = planStudy(file).jobs;
      const h = await openCluster(nc, nats.url, {
        retention: { ttlMs: 86_400_000, resultsMaxBytes: 2 ** 30, bundlesMaxBytes: 2 ** 30 },
        ackWaitMs: 30_000,
      });
      const run = (i: number) => String(i).repeat(16);
      const names = jobs.map((j, i) => `${j.id}.${run(i)}`);
      // 0: a real 2 MiB object, above the coordinator's 1 MiB cap.
      await h.os.putBlob({ name: names[0]! }, new Uint8Array(2 * 2 ** 20));
      // 1: announces 5 GB in 40 960 chunks, none stored.
      await publishObjectMeta(h, names[1]!, {
        nuid: 'NONE1',
        size: 5e9,
        chunks: 40_960,
        digest: `SHA-256=${'A'.repeat(43)}=`,
      });
      // 2: a link to a bucket of the attacker's naming; 3: a link to itself.
      await publishObjectMeta(h, names[2]!, {
        nuid: 'L1',
        size: 0,
        chunks: 0,
        digest: '',
        options: { link: { bucket: 'attacker-made-bucket', name: 'x' } },
      });
      await publishObjectMeta(h, names[3]!, {
        nuid: 'L2',
        size: 0,
        chunks: 0,
        digest: '',
        options: { link: { bucket: 'odeness-bundles', name: names[3] } },
      });
      // 4: announces 1000 bytes in one chunk, none stored.
      await publishObjectMeta(h, names[4]!, {
        nuid: 'NONE2',
        size: 1000,
        chunks: 1,
        digest: `SHA-256=${'A'.repeat(43)}=`,
      });
      // 5: a real object whose digest was rewritten.
      const real = await h.os.putBlob(
        { name: names[5]! },
        encode({ v: PROTOCOL_VERSION, files: [{ path: 'x', data: new Uint8Array(10) }] }),
      );
      await publishObjectMeta(h, names[5]!, {
        nuid: real.nuid,
        size: real.size,
        chunks: real.chunks,
        digest: `SHA-256=${Buffer.alloc(32, 7).toString('base64url')}`,
      });
      for (const [i, j] of jobs.entries()) await h.kv.create(j.id, encode(forgedDone(j, run(i))));
      const started = Date.now();
      c = spawnProc(process.execPath, [
        BIN,
        'study',
        'run',
        file,
        '--out',
        join(dir, 'out'),
        '--nats',
        nats.url,
        '--events',
        '--max-bundle-mb',
        '1',
      ]);
      t.is(await c.exited, 1, c.err());
      t.true(Date.now() - started < 60_000, `the coordinator ends within seconds (${Date.now() - started} ms)`);
      const errors = new Map(resultLines(join(dir, 'out')).map((r) => [r.id, r.error ?? '']));
      t.is(errors.size, 6);
      t.regex(
        errors.get(jobs[0]!.id)!,
        /has 2097152 bytes \(2\.0 MiB\), more than this coordinator's cap of 1\.0 MiB \(--max-bundle-mb\)/,
      );
      t.regex(errors.get(jobs[1]!.id)!, /has 5000000000 bytes .* more than this coordinator's cap/);
      t.regex(errors.get(jobs[2]!.id)!, /is a link to attacker-made-bucket\/x \(links are refused, never followed\)/);
      t.regex(errors.get(jobs[3]!.id)!, /is a link to odeness-bundles\//);
      t.regex(errors.get(jobs[4]!.id)!, /none of its 1000 bytes are stored \(chunks missing\)/);
      t.regex(errors.get(jobs[5]!.id)!, /SHA-256 digest mismatch/);
      await t.throwsAsync(
        h.jsm.streams.info('OBJ_attacker-made-bucket'),
        undefined,
        'the linked bucket was not created',
      );
    } finally {
      c?.kill('SIGKILL');
      await nc.close();
      await nats.stop();
    }
  },
);

test.serial(
  "finding 9: max deliver comes from the coordinator's configuration, not from the job message; a job over the per-job cost bound is refused before training",
  async (t) => {
    t.timeout(90_000);
    const nats = await startNats();
    const nc = await connectNats({ url: nats.url });
    let w: Proc | undefined;
    try {
      // The coordinator's configuration: 2 deliveries.
      const h = await openCluster(nc, nats.url, {
        retention: { ttlMs: 86_400_000, resultsMaxBytes: 2 ** 30, bundlesMaxBytes: 2 ** 30 },
        ackWaitMs: 30_000,
        maxDeliver: 2,
      });
      const j = job({ seed: 77 });
      await publishJob(h, { v: PROTOCOL_VERSION, job: j, attempt: 1, maxDeliver: 1000 }, j.id);
      // Two deliveries handed back (as two workers that died would), before any worker runs it.
      const consumer = await h.js.consumers.get(STREAM, CONSUMER);
      for (let i = 0; i < 2; i++) {
        const m = await consumer.next({ expires: 2000 });
        t.truthy(m);
        m!.nak();
        await new Promise((r) => setTimeout(r, 200));
      }
      w = worker(nats.url);
      const r = (await resultOf(h, j.id)).result;
      t.is(r.status, 'failed');
      t.regex(r.error ?? '', /^delivered 2 times without a result/, "the message's maxDeliver of 1000 is ignored");
      // The per-job cost bound: every size within its own bound, their product far beyond.
      const huge = job({
        dataset: 'spheres:dupont2019:dim=2000,n=100000',
        field: 'mlp:width=4096,depth=16',
        trainSolver: 'rk4:steps=10000',
        batchSize: 4096,
        iterations: 100_000,
      });
      await publishJob(h, { v: PROTOCOL_VERSION, job: huge, attempt: 1, maxDeliver: 5 }, huge.id);
      const refused = (await resultOf(h, huge.id)).result;
      t.is(refused.status, 'failed');
      t.regex(
        refused.error ?? '',
        /^the job needs about [\d.]+ GiB \(data and training tape\), more than the 256\.0 GiB a worker allows per job$/,
      );
      t.true(refused.timings.ms < 1000, 'refused before training');
    } finally {
      if (w) await stopAll([w]);
      await nc.close();
      await nats.stop();
    }
  },
);

test.serial(
  'finding 11: job processes get no NATS credentials (environment or arguments), and run with telemetry off',
  async (t) => {
    t.timeout(90_000);
    const token = 'tok-3f9a1c7e5b2d4a6c';
    const nats = await startNats({ config: `authorization { token: "${token}" }\n` });
    const j = job({ seed: 78 });
    const w = worker(nats.url, [], {
      NATS_TOKEN: token,
      NATS_PASSWORD_HINT_SECRET: 'x',
      ODENESS_TEST_STALL_JOB: `${j.id}:4000`,
    });
    const nc = await connectNats({ url: nats.url, token });
    try {
      await w.waitFor(/pulling from/);
      const h = await openCluster(nc, nats.url);
      await publishJob(h, { v: PROTOCOL_VERSION, job: j, attempt: 1, maxDeliver: 5 }, j.id);
      // The job process: a child of the worker, stalled for 4 s on this job.
      let children: string[] = [];
      const end = Date.now() + 20_000;
      while (children.length === 0 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 100));
        children = childPids(w.pid);
      }
      t.true(children.length > 0, 'a job process runs');
      for (const pid of children) {
        const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        t.false(
          env.some((e) => e.includes(token)),
          'the token is not in its environment',
        );
        t.false(
          env.some((e) => e.startsWith('NATS_')),
          'no NATS_* variable',
        );
        t.false(args.includes(token), 'nor in its arguments');
        t.true(env.includes('ORT_DISABLE_TELEMETRY=1'));
      }
      t.is((await resultOf(h, j.id)).result.status, 'done');
    } finally {
      await nc.close();
      await stopAll([w]);
      await nats.stop();
    }
  },
);

test.serial(
  "finding 5: escape sequences in a result's error and worker are printed escaped by study run and study status (text); --json keeps them exact",
  async (t) => {
    t.timeout(90_000);
    const nats = await startNats();
    const nc = await connectNats({ url: nats.url });
    const dir = tempDir();
    try {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 50 }));
      const [j] = planStudy(file).jobs;
      const h = await openCluster(nc, nats.url, {
        retention: { ttlMs: 86_400_000, resultsMaxBytes: 2 ** 30, bundlesMaxBytes: 2 ** 30 },
        ackWaitMs: 30_000,
      });
      const error = 'boom\x1b[2J\x1b]0;pwned\x07\nstudy: 99 jobs: 99 done\r\x9b31m';
      const evil = '\x1b[31mEVIL\x1b[0m';
      const now = new Date().toISOString();
      await h.kv.create(
        j!.id,
        encode({
          v: PROTOCOL_VERSION,
          result: {
            id: j!.id,
            job: j!,
            status: 'failed',
            attempt: 1,
            worker: evil,
            error,
            timings: { startedAt: now, finishedAt: now, ms: 1 },
          },
        }),
      );
      const out = join(dir, 'out');
      const run = spawnProc(process.execPath, [BIN, 'study', 'run', file, '--out', out, '--nats', nats.url]);
      t.is(await run.exited, 1, run.err());
      const status = spawnProc(process.execPath, [BIN, 'study', 'status', out]);
      t.is(await status.exited, 0);
      for (const [what, text] of [
        ['study run', run.out() + run.err()],
        ['study status', status.out()],
      ] as const) {
        t.false(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text), `${what}: no raw control character`);
        t.false(/^study: 99/m.test(text), `${what}: no fake "study:" line`);
        t.regex(text, /boom\\x1b\[2J\\x1b\]0;pwned\\x07\\x0astudy: 99 jobs: 99 done\\x0d\\x9b31m/, what);
      }
      t.regex(run.out() + run.err(), /\\x1b\[31mEVIL\\x1b\[0m/);
      const json = spawnProc(process.execPath, [BIN, 'study', 'status', out, '--json']);
      t.is(await json.exited, 0);
      const doc = JSON.parse(json.out()) as { failures: { error: string }[] };
      t.is(doc.failures[0]!.error, error, '--json keeps the exact value');
    } finally {
      await nc.close();
      await nats.stop();
    }
  },
);

test.serial(
  'finding 12: a full JetStream store is reported naming the storage, the coordinator stops waiting, and nothing is lost',
  async (t) => {
    t.timeout(180_000);
    // The server's own storage too small for the buckets' limits: the coordinator says so at once (real CLI).
    const small = await startNats({ config: 'jetstream { max_file_store: 40MB }\n' });
    const dir0 = tempDir();
    try {
      const file0 = writeStudy(dir0, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 50 }));
      const c0 = spawnProc(process.execPath, [
        BIN,
        'study',
        'run',
        file0,
        '--out',
        join(dir0, 'out'),
        '--nats',
        small.url,
      ]);
      t.is(await c0.exited, 1);
      t.regex(
        c0.err(),
        /has no room left in its JetStream storage \(creating the buckets: insufficient storage resources available\).*nothing is lost.*max_file_store/,
      );
    } finally {
      await small.stop();
    }
    // A bundle bucket that fills up mid-study (a coordinator keeping 3 MiB of bundles, nearly all taken); the
    // workers upload every bundle (--inline-bundle-kb 0: tiny ones would ride inside their results).
    const upload = { args: ['--inline-bundle-kb', '0'] };
    await withCluster(t, { workers: upload }, async ({ nats, dir, coordinator }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 50 }));
      const out = join(dir, 'out');
      const transport = await NatsTransport.connect({ url: nats.url, retention: { bundlesMaxBytes: 3 * 2 ** 20 } });
      const nc = await connectNats({ url: nats.url });
      try {
        const h = await openCluster(nc, nats.url);
        // Filled to the last few bytes: pieces of 32 KiB, then 1 KiB, then 16 bytes, each until the bucket refuses one.
        let n = 0;
        for (const size of [32 * 1024, 1024, 16]) {
          while (
            await h.os.putBlob({ name: `junk-${n++}` }, new Uint8Array(size)).then(
              () => true,
              () => false,
            )
          );
        }
        const started = Date.now();
        const err = await t.throwsAsync(runStudy(file, { out, transport }));
        t.regex(
          err?.message ?? '',
          /^the NATS server at nats:\/\/127\.0\.0\.1:\d+ has no room left in its JetStream storage \(worker nats\/.*: .*maximum bytes exceeded; .*bundles bucket odeness-bundles holds [\d.]+ MiB of 3\.0 MiB\): nothing is lost/,
        );
        t.true(Date.now() - started < 90_000, `it stopped waiting (${Date.now() - started} ms)`);
        t.deepEqual(
          resultLines(out).filter((r) => r.status === 'failed'),
          [],
          'no job recorded as failed',
        );
      } finally {
        await nc.close();
      }
      // Room again (this coordinator keeps the default 20 GiB): the same jobs finish, none lost.
      const again = coordinator(file, out);
      t.is(await again.exited, 0, again.err());
      t.deepEqual(
        resultLines(out).map((r) => r.status),
        ['done', 'done'],
      );
    });
  },
);
