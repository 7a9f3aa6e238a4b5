import test from 'ava';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fetchBundle } from '../src/cluster/bundle-fetch.js';
import { encode } from '../src/cluster/codec.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import {
  openCluster,
  RESULTS_BUCKET,
  BUNDLES_BUCKET,
  STREAM,
  CONSUMER,
  DEFAULT_RETENTION,
} from '../src/cluster/nats-resources.js';
import { freePort, ROOT, spawnProc, tempDir, type Proc } from './helpers/procs.js';
import { cliResult } from './helpers/procs.js';
import { forgedDone, job } from './helpers/wire.js';
import { PROTOCOL_VERSION } from '../src/cluster/protocol.js';

// Finding 3: examples/nats/odeness.conf, started with examples/nats/start-server.sh on 127.0.0.1. Every
// action the worker user must not take is tried as that user against the real server, and denied.

const SCRIPT = join(ROOT, 'examples/nats/start-server.sh');
const passwords = {
  ODENESS_COORDINATOR_PASSWORD: 'coordinator-Pa55-word',
  ODENESS_WORKER_PASSWORD: 'worker-Pa55-word',
};

async function startServer(): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = spawnProc(SCRIPT, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', tempDir('odeness-nats-')], {
    env: passwords,
  });
  await proc.waitFor(/Server is ready/, 15_000);
  return { url: `nats://127.0.0.1:${port}`, proc };
}

test('finding 3: start-server.sh refuses an empty, short or shared password; odeness refuses an empty one', async (t) => {
  for (const env of [
    { ...passwords, ODENESS_COORDINATOR_PASSWORD: '' },
    { ...passwords, ODENESS_WORKER_PASSWORD: 'short' },
    { ...passwords, ODENESS_WORKER_PASSWORD: passwords.ODENESS_COORDINATOR_PASSWORD },
  ]) {
    const p = spawnProc(SCRIPT, ['-p', '1'], { env });
    t.is(await p.exited, 2);
    t.regex(
      p.err(),
      /^start-server\.sh: (ODENESS_\w+_PASSWORD is empty or shorter than 12 characters|the coordinator and worker passwords must differ)/,
    );
  }
  const r = await cliResult(['worker', '--nats', 'nats://127.0.0.1:1', '--user', 'worker', '--password', '']);
  t.is(r.code, 1);
  t.regex(r.err, /the NATS password is empty: an empty secret is refused/);
});

test.serial(
  'finding 3: as the worker user, overwriting, deleting or purging results and deleting or purging bundles are all denied',
  async (t) => {
    t.timeout(90_000);
    const { url, proc } = await startServer();
    const coord = await connectNats({ url, user: 'coordinator', password: passwords.ODENESS_COORDINATOR_PASSWORD });
    const worker = await connectNats({ url, user: 'worker', password: passwords.ODENESS_WORKER_PASSWORD });
    try {
      // The coordinator creates the cluster (the result bucket create only); a genuine done result and its bundle.
      const c = await openCluster(coord, url, { ackWaitMs: 30_000, retention: DEFAULT_RETENTION, maxDeliver: 5 });
      const j = job({ seed: 301 });
      const archive = encode({
        v: PROTOCOL_VERSION,
        files: [{ path: 'model.onnx', data: new Uint8Array(1000).fill(7) }],
      });
      const info = await c.os.putBlob({ name: `${j.id}.${'b'.repeat(16)}` }, archive);
      const sealed = {
        nuid: info.nuid,
        bytes: archive.length,
        digest: createHash('sha256').update(archive).digest('hex'),
      };
      const genuine = encode(forgedDone(j, 'b'.repeat(16), { worker: 'genuine' }));
      await c.kv.create(j.id, genuine);

      const w = await openCluster(worker, url);
      const denied = async (what: string, f: () => Promise<unknown>) => {
        const e = await t.throwsAsync(
          f(),
          { message: /^Permissions Violation for Publish|^maximum messages per subject exceeded$/ },
          what,
        );
        t.log(`${what}: ${e?.message}`);
      };
      const rev = (await w.kv.get(j.id))!.revision;
      await denied('overwrite a done result (put)', () => w.kv.put(j.id, encode(forgedDone(j, 'c'.repeat(16)))));
      await denied('overwrite a done result (update at its revision)', () =>
        w.kv.update(j.id, encode(forgedDone(j, 'c'.repeat(16))), rev),
      );
      await denied('delete a result', () => w.kv.delete(j.id));
      await denied('purge a result (marker)', () => w.kv.purge(j.id));
      await denied('purge the result bucket', () => w.jsm.streams.purge(`KV_${RESULTS_BUCKET}`));
      await denied('delete a result message', () => w.jsm.streams.deleteMessage(`KV_${RESULTS_BUCKET}`, 1));
      await denied('purge the bundle store', () => w.jsm.streams.purge(`OBJ_${BUNDLES_BUCKET}`));
      await denied('delete a bundle message', () => w.jsm.streams.deleteMessage(`OBJ_${BUNDLES_BUCKET}`, 1));
      await denied('delete a bundle (object store)', () => w.os.delete(`${j.id}.${'b'.repeat(16)}`));
      await denied('delete the result bucket', () => w.jsm.streams.delete(`KV_${RESULTS_BUCKET}`));
      await denied('delete the bundle store', () => w.jsm.streams.delete(`OBJ_${BUNDLES_BUCKET}`));
      await denied('delete the work queue consumer', () => w.jsm.consumers.delete(STREAM, CONSUMER));
      await denied('change the stream', async () =>
        w.jsm.streams.update(`KV_${RESULTS_BUCKET}`, {
          ...(await w.jsm.streams.info(`KV_${RESULTS_BUCKET}`)).config,
          discard_new_per_subject: false,
        } as never),
      );

      // What the coordinator reads afterwards: the genuine result, and the bundle's sealed bytes, intact.
      t.deepEqual(Buffer.from((await c.kv.get(j.id))!.value), Buffer.from(genuine));
      const bytes = await fetchBundle(c, { name: `${j.id}.${'b'.repeat(16)}`, sealed }, { maxBytes: 2 ** 20 });
      t.deepEqual(Buffer.from(bytes), Buffer.from(archive));
      // What a worker may still do: create a result that does not exist yet (never replace one).
      const fresh = job({ seed: 302 });
      await t.notThrowsAsync(w.kv.create(fresh.id, encode(forgedDone(fresh, 'd'.repeat(16)))));
    } finally {
      await worker.close();
      await coord.close();
      proc.kill('SIGTERM');
      await proc.exited;
    }
  },
);
