// onnx: fields on NATS (issue 23): the field file's bytes travel through the object store by their SHA-256,
// never by path. A study with `field: onnx:…` gives the same results on the local pool and on a real
// nats-server with 2 workers; forged jobs naming missing, mismatched or oversized field objects end as failed
// results naming why, within seconds, and the worker keeps running.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareRuns, resultsById } from '../src/study/compare.js';
import { fieldObjectName, fetchFieldFile, pendingFieldFiles, uploadFieldFiles } from '../src/cluster/field-store.js';
import { connectNats } from '../src/cluster/nats-connect.js';
import { openCluster } from '../src/cluster/nats-resources.js';
import { PROTOCOL_VERSION, type JobMessage } from '../src/cluster/protocol.js';
import { planStudy } from '../src/study/plan.js';
import { withCluster } from './helpers/cluster.js';
import {
  cliResult,
  requirePrerequisite,
  ROOT,
  startNats,
  tempDir,
  writeStudy,
  transportEquivalenceRun,
} from './helpers/procs.js';
import { job, publishJob, publishObjectMeta, resultOf } from './helpers/wire.js';

const STUDY = 'examples/byof-spheres.yaml';
const EXAMPLE_CONFIG = readFileSync(join(ROOT, 'examples/nats/odeness.conf'), 'utf8');
const NATS_ENV = { ODENESS_COORDINATOR_PASSWORD: 'coordinator-Pa55-word', ODENESS_WORKER_PASSWORD: 'worker-Pa55-word' };
const FIXTURE = join(ROOT, 'test/fixtures/onnx/mlp-time.onnx');
const SMOKE = ['--iterations', '2', '--batch-size', '16', '--test-points', '20'];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const objectDigest = (hex: string) => `SHA-256=${Buffer.from(hex, 'hex').toString('base64url')}=`;
/** A job on 3-D spheres (mlp-time's state) naming a field file by hash. */
const onnxJob = (sha: string, name = 'f.onnx') =>
  job({ dataset: 'spheres:dupont2019:dim=3,n=128,testN=32', field: `onnx:${name},init=keep,sha256=${sha}` });

test.serial(
  'byof-spheres (smoke): an onnx: field study gives the same ids, statuses and metrics on the pool and on NATS',
  async (t) => {
    t.timeout(300_000);
    requirePrerequisite('nats-server');
    const dir = tempDir();
    // examples/byof-spheres.yaml cut to one grid job and one adaptation job, with both audits.
    const text = readFileSync(join(ROOT, STUDY), 'utf8')
      .replace(/grid:\n(  - .*\n)+/, 'grid: [{solver: euler, steps: [0.5]}]\n')
      .replace(/testSolvers: .*/, 'testSolvers: ["rk4:0.25"]');
    const study = writeStudy(dir, 'byof.yaml', text);
    const out = join(dir, 'runs');
    const s = await transportEquivalenceRun(t, study, out, SMOKE);
    const planned = planStudy(study, { iterations: 2, batchSize: 16, testPoints: 20 }).jobs;
    t.is(planned.length, 2);
    t.deepEqual(s.exit, { local: 0, nats: 0 });
    t.deepEqual(s.local, { done: planned.length, failed: 0 });
    t.deepEqual(s.nats, s.local);
    t.deepEqual(s.differences, []);
    const local = { label: 'the local pool', results: resultsById(join(out, 'local')) };
    const nats = resultsById(join(out, 'nats'));
    t.deepEqual([...nats.keys()].sort(), planned.map((j) => j.id).sort());
    // The job names the file by name and hash, not where it lies.
    const sha = sha256(readFileSync(join(ROOT, 'test/fixtures/onnx/conv1d-sphere.onnx')));
    for (const r of nats.values())
      t.is((r as unknown as { job: { field: string } }).job.field, `onnx:conv1d-sphere.onnx,init=keep,sha256=${sha}`);
    // The comparison sees a loss, an NFE count and an accuracy.
    const first = planned[0]!.id;
    const mutate = (f: (r: Record<string, any>) => void) => {
      const copy = new Map(nats);
      const r = structuredClone(copy.get(first)!) as Record<string, any>;
      f(r);
      copy.set(first, r as never);
      return compareRuns(local, { label: 'NATS', results: copy }).differences.join();
    };
    t.regex(
      mutate((r) => (r.metrics.trainNfe += 1)),
      /trainNfe/,
    );
    t.regex(
      mutate((r) => (r.metrics.evals[0].accuracy += 0.05)),
      /accuracy/,
    );
    t.regex(
      mutate((r) => (r.metrics.finalLoss = (r.metrics.finalLoss ?? 0) + 1)),
      /finalLoss/,
    );
    // Its report reads like any other: the field by its file name.
    const report = await cliResult(['study', 'report', join(out, 'nats')]);
    t.is(report.code, 0, report.err);
    const html = readFileSync(join(out, 'nats', 'report.html'), 'utf8');
    t.regex(html, /onnx:conv1d-sphere\.onnx,init=keep,sha256=/);
    t.notRegex(html, /test\/fixtures\/onnx/);
    // A model a worker trained evaluates here: its directory carries the field file (not the worker's cache path).
    const ev = await cliResult([
      'evaluate',
      '--model',
      join(out, 'nats', 'models', first, 'model'),
      '--solvers',
      'rk4:0.25',
    ]);
    t.is(ev.code, 0, ev.err);
  },
);

test('a field file over 64 MiB is refused when the study is planned, in one line naming the file and its size', (t) => {
  const dir = tempDir();
  const big = join(dir, 'big.onnx');
  writeFileSync(big, '');
  truncateSync(big, 64 * 2 ** 20 + 1); // sparse: nothing is read, the size is looked at first
  const study = writeStudy(
    dir,
    's.yaml',
    readFileSync(join(ROOT, STUDY), 'utf8').replace(/field: .*/, `field: onnx:${big}`),
  );
  const e = t.throws(() => planStudy(study));
  t.regex(e!.message, /s\.yaml: field: .*big\.onnx: has 67108865 bytes, more than the limit of 67108864/);
  t.false(e!.message.includes('\n'));
});

test.serial('field store: a file goes up once; a worker fetches, verifies and caches it', async (t) => {
  t.timeout(60_000);
  requirePrerequisite('nats-server');
  const nats = await startNats();
  const nc = await connectNats({ url: nats.url });
  try {
    const h = await openCluster(nc, nats.url);
    const bytes = readFileSync(FIXTURE);
    const sha = sha256(bytes);
    // Three jobs naming one file (at two paths): it goes up once.
    const field = `onnx:f.onnx,init=keep,sha256=${sha}`;
    const pending = [1, 2, 3].map((seed) => ({
      job: { ...onnxJob(sha), seed },
      attempt: 1,
      fieldFile: seed === 3 ? join(ROOT, 'test/../test/fixtures/onnx/mlp-time.onnx') : FIXTURE,
    }));
    t.is(Object.keys(pendingFieldFiles(pending)).length, 1);
    const uploads: string[] = [];
    await uploadFieldFiles(h.os, pendingFieldFiles(pending), { onUpload: (f) => uploads.push(f) });
    t.is(uploads.length, 1);
    const cache = tempDir();
    const files = await fetchFieldFile(h, field, cache);
    t.deepEqual(files, { [sha]: join(cache, `${sha}.onnx`) });
    t.deepEqual(readFileSync(files[sha]!), bytes);
    t.deepEqual(await fetchFieldFile(h, 'mlp:width=8', cache), {});
    // A changed file is not uploaded under its old hash.
    await t.throwsAsync(uploadFieldFiles(h.os, { ['0'.repeat(64)]: FIXTURE }), {
      message: /mlp-time\.onnx: changed since the study was planned/,
    });
  } finally {
    await nc.close();
    await nats.stop();
  }
});

test.serial(
  'forged onnx: jobs (least-privilege example account, objects forged as the worker user): a digest not in ' +
    'the store, bytes that do not match it, an oversized object, a path → failed results naming why, within ' +
    'seconds; the worker keeps running',
  async (t) => {
    t.timeout(120_000);
    const workers = { args: ['--user', 'worker'], env: { NATS_PASSWORD: NATS_ENV.ODENESS_WORKER_PASSWORD } };
    const cluster = { natsConfig: EXAMPLE_CONFIG, natsEnv: NATS_ENV, workers, waitFor: /pulling from|waiting for/ };
    await withCluster(t, cluster, async ({ nats, a, b }) => {
      const nc = await connectNats({
        url: nats.url,
        user: 'coordinator',
        password: NATS_ENV.ODENESS_COORDINATOR_PASSWORD,
      });
      const wc = await connectNats({ url: nats.url, user: 'worker', password: NATS_ENV.ODENESS_WORKER_PASSWORD });
      try {
        // The coordinator publishes jobs and uploads the genuine file; a worker-level attacker writes objects.
        const h = await openCluster(nc, nats.url);
        const w = await openCluster(wc, nats.url);
        const real = readFileSync(FIXTURE);
        const realSha = sha256(real);
        await uploadFieldFiles(h.os, { [realSha]: FIXTURE });
        const other = randomBytes(1000);
        // Honest metadata, other bytes: field.<wrong> holds bytes whose digest is not the name's.
        const wrongSha = sha256(randomBytes(32));
        await w.os.putBlob({ name: fieldObjectName(wrongSha) }, other);
        // Forged metadata announcing the job's digest over another object's chunks.
        const forgedSha = sha256(randomBytes(32));
        const decoy = await w.os.putBlob({ name: 'decoy' }, other);
        await publishObjectMeta(w, fieldObjectName(forgedSha), {
          nuid: decoy.nuid,
          size: decoy.size,
          chunks: decoy.chunks,
          digest: objectDigest(forgedSha),
        });
        // Announcing 65 MiB (none stored): refused before anything is read.
        const bigSha = sha256(randomBytes(32));
        await publishObjectMeta(w, fieldObjectName(bigSha), {
          nuid: 'BIG1',
          size: 65 * 2 ** 20,
          chunks: 520,
          digest: objectDigest(bigSha),
        });
        const missingSha = sha256(randomBytes(32));
        const cases: [ReturnType<typeof job>, RegExp][] = [
          [onnxJob(missingSha), new RegExp(`^field file field\\.${missingSha} is missing from the object store`)],
          [onnxJob(wrongSha), /SHA-256 digest mismatch \(the object store announces [0-9a-f]{64}, the job names/],
          [onnxJob(forgedSha), /SHA-256 digest mismatch \(stored [0-9a-f]{64}, announced/],
          [onnxJob(bigSha), /has 68157440 bytes \(65\.0 MiB\), more than the field file limit of 64\.0 MiB/],
          [onnxJob(realSha, '..'), /a job names its file by name and sha256, not by a path/],
        ];
        const start = Date.now();
        for (const [j] of cases)
          await publishJob(h, { v: PROTOCOL_VERSION, job: j, attempt: 1, maxDeliver: 5 } satisfies JobMessage, j.id);
        for (const [j, why] of cases) {
          const r = (await resultOf(h, j.id, 30_000)).result;
          t.is(r.status, 'failed', j.field);
          t.regex(r.error ?? '', why);
        }
        t.true(Date.now() - start < 20_000, `${Date.now() - start} ms`);
        t.log(`5 refusals recorded in ${Date.now() - start} ms`);
        // Both workers still run, and a genuine onnx: job runs on the bytes from the store.
        const good = onnxJob(realSha, 'mlp-time.onnx');
        await publishJob(h, { v: PROTOCOL_VERSION, job: good, attempt: 1, maxDeliver: 5 }, good.id);
        const r = (await resultOf(h, good.id, 60_000)).result;
        t.is(r.status, 'done', r.error);
        t.log(`the genuine onnx: job done ${Date.now() - start} ms after the forged ones were published`);
        t.is(r.job.field, good.field);
        t.is(a.child.exitCode, null);
        t.is(b.child.exitCode, null);
      } finally {
        await wc.close();
        await nc.close();
      }
    });
  },
);
