import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobResult, StudyEvent } from '../src/study/types.js';
import { cli, MISSING_DATASET, startNats, tempDir, TINY_DATASET, tinyStudy, writeStudy, type Proc } from './helpers/procs.js';

// Real tiny jobs (train → bundle → onnxruntime re-evaluation) through the real CLI.
// Each test gets its own nats-server; tests run one at a time (two workers already fill 2 cores).
function lines(dir: string): JobResult[] {
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
    try {
      return [JSON.parse(l) as JobResult];
    } catch {
      return []; // a line still being written
    }
  });
}

function events(out: string): StudyEvent[] {
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as StudyEvent);
}

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function worker(url: string): Proc {
  return cli(['worker', '--nats', url, '--concurrency', '1']);
}

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

/** Ids each worker ran to a result, from its log lines ("<id> done in N ms"). */
function ranBy(p: Proc): string[] {
  return [...p.err().matchAll(/ ([0-9a-f]{16}) (?:done|failed) in /g)].map((m) => m[1]!);
}

test.serial('cluster: SIGKILL a worker mid-job → the job is redelivered, one result per job', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  // 6 jobs of about 1 s each (unloaded).
  const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[{solver: euler, steps: [0.5, 0.25, 0.125]}]', seeds: 2, iterations: 2000 }));
  const out = join(dir, 'out');
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    const coord = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--ack-wait', '2', '--json']);
    // Kill worker a as soon as it starts a job: mid-job.
    const m = await coord.waitFor(new RegExp(`"type":"start","id":"([0-9a-f]{16})","worker":"nats/[^/]+/${a.pid}/`));
    const killedJob = m[1]!;
    a.kill('SIGKILL');
    t.is(await coord.exited, 0, coord.err());
    const all = lines(out);
    t.is(all.length, 6);
    t.is(new Set(all.map((x) => x.id)).size, 6, 'exactly one result per job');
    t.true(all.every((x) => x.status === 'done'));
    const redone = all.find((x) => x.id === killedJob)!;
    t.regex(redone.worker, new RegExp(`/${b.pid}/`), 'the killed job was finished by the surviving worker');
    t.deepEqual(readdirSync(join(out, 'models')).sort(), all.map((x) => x.id).sort());
    for (const x of all) {
      for (const f of ['manifest.json', 'field.onnx', join('model', 'model.json')]) {
        t.true(existsSync(join(out, 'models', x.id, f)), `models/${x.id}/${f} downloaded from the object store`);
      }
      const m = x.metrics as { trainAccuracy: number; evals: unknown[] };
      t.true(m.trainAccuracy >= 0 && m.trainAccuracy <= 1);
      t.is(m.evals.length, 1);
    }
    t.like(events(coord.out()).at(-1), { type: 'end', counts: { total: 6, done: 6, failed: 0, pending: 0 } });
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});

test.serial('cluster: SIGTERM a worker mid-job → it hands the job back at once and exits cleanly; another worker finishes it', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 3000 }));
  const out = join(dir, 'out');
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    // The default 30 s ack wait: only the nak brings the job back in time.
    const coord = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--json']);
    const m = await coord.waitFor(new RegExp(`"type":"start","id":"([0-9a-f]{16})","worker":"nats/[^/]+/${a.pid}/`));
    a.kill('SIGTERM');
    t.is(await a.exited, 0, a.err());
    t.regex(a.err(), /worker stopped .*: 0 job\(s\) run .*, 1 returned to the queue/);
    t.is(await coord.exited, 0, coord.err());
    const all = lines(out);
    t.is(all.length, 2);
    t.true(all.every((x) => x.status === 'done'));
    t.regex(all.find((x) => x.id === m[1])!.worker, new RegExp(`/${b.pid}/`), 'the returned job was run by the other worker');
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});

test.serial('cluster: restarting nats-server mid-study (same store) → the study completes', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  // 6 jobs of about 1–1.5 s each (unloaded): the 0.8 s outage falls mid-job.
  const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[{solver: midpoint, stepCounts: [1, 2, 3]}]', seeds: 2, iterations: 4000 }));
  const out = join(dir, 'out');
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    const coord = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--ack-wait', '2', '--json']);
    await until(() => lines(out).length >= 1);
    await nats.restart(800);
    t.is(await coord.exited, 0, coord.err());
    t.regex(coord.out(), /lost the connection to NATS/);
    const all = lines(out);
    t.is(all.length, 6);
    t.is(new Set(all.map((x) => x.id)).size, 6);
    t.true(all.every((x) => x.status === 'done'));
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});

test.serial('cluster: a restarted coordinator resumes from the result bucket; failures are recorded', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', tinyStudy({ datasets: [TINY_DATASET, MISSING_DATASET], grid: '[{solver: rk4, steps: [0.5, 0.25]}]', iterations: 2000 }));
  const out = join(dir, 'out');
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    const first = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--ack-wait', '2', '--json']);
    await until(() => lines(out).length >= 1);
    first.kill('SIGKILL');
    await first.exited;
    const before = lines(out).length;
    // Workers keep going without a coordinator; their results wait in the bucket.
    await until(() => ranBy(a).length + ranBy(b).length >= 4);
    const second = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--ack-wait', '2', '--json']);
    t.is(await second.exited, 1, 'exit 1: some jobs failed');
    t.like(events(second.out())[0], { type: 'plan', total: 4, toRun: 4 - before });
    const all = lines(out);
    t.is(all.length, 4);
    t.is(new Set(all.map((x) => x.id)).size, 4);
    t.is(all.filter((x) => x.status === 'failed').length, 2);
    for (const x of all.filter((x) => x.status === 'failed')) {
      t.is(x.job.dataset, MISSING_DATASET);
      t.is(x.error, '/nonexistent/fail.json: file not found');
    }
    for (const x of all.filter((x) => x.status === 'done')) t.true(existsSync(join(out, 'models', x.id, 'field.onnx')));
    const ran = [...ranBy(a), ...ranBy(b)];
    t.is(ran.length, 4, 'no job ran twice');
    t.is(new Set(ran).size, 4);
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});

test.serial('cluster: jobs longer than the ack wait stay alive (in-progress acks); a job no worker survives is recorded as failed', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    // Two jobs of about 2.5 s each (unloaded): several times the 1 s ack wait.
    const long = writeStudy(dir, 'long.yaml', tinyStudy({ grid: '[rk4:0.25]', seeds: 2, iterations: 5000 }));
    const r = cli(['study', 'run', long, '--out', join(dir, 'long'), '--nats', nats.url, '--ack-wait', '1', '--json']);
    t.is(await r.exited, 0, r.err());
    const ran = [...ranBy(a), ...ranBy(b)];
    t.is(ran.length, 2, 'each job ran once despite a 1 s ack wait');
    t.is(new Set(ran).size, 2);
    const longResults = lines(join(dir, 'long'));
    t.is(longResults.length, 2);
    for (const x of longResults) {
      t.is(x.status, 'done');
      t.true(x.timings.ms > 1500, `the job ran ${x.timings.ms} ms, longer than the ack wait`);
    }

    // One delivery allowed; the worker holding it dies → JetStream gives up (the advisory comes
    // when the other worker pulls) → a worker records it as failed → the coordinator reports it.
    const doomed = writeStudy(dir, 'doomed.yaml', tinyStudy({ grid: '[rk4:0.25]', seeds: [7], iterations: 5000 }));
    const c = cli(['study', 'run', doomed, '--out', join(dir, 'doomed'), '--nats', nats.url, '--ack-wait', '1', '--max-deliver', '1', '--json']);
    const m = await c.waitFor(/"type":"start","id":"[0-9a-f]{16}","worker":"nats\/[^/]+\/(\d+)\//);
    const holder = Number(m[1]) === a.pid ? a : b;
    const other = holder === a ? b : a;
    holder.kill('SIGKILL');
    t.is(await c.exited, 1, c.err());
    await other.waitFor(/given up after too many deliveries; recorded as failed/);
    const [res] = lines(join(dir, 'doomed'));
    t.is(res!.status, 'failed');
    t.regex(res!.error!, /delivered 1 times without a result .* --retry-failed/);
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});
