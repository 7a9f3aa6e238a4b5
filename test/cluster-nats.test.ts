import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobResult, StudyEvent } from '../src/study/types.js';
import { cli, startNats, tempDir, writeStudy, type Proc } from './helpers/procs.js';

// Each test gets its own nats-server; tests run one at a time (they spin CPU).
function lines(dir: string): JobResult[] {
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JobResult);
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
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a]\nfield: mlp:width=8\ngrid: [{solver: euler, steps: [0.5, 0.25, 0.125]}]\nseeds: 2\niterations: 1000\n');
  const out = join(dir, 'out');
  const a = worker(nats.url);
  const b = worker(nats.url);
  try {
    await Promise.all([a.waitFor(/pulling from/), b.waitFor(/pulling from/)]);
    const coord = cli(['study', 'run', file, '--out', out, '--nats', nats.url, '--ack-wait', '2', '--json']);
    // Kill worker a as soon as it starts a job (jobs take ~1 s).
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
    for (const x of all) t.true(existsSync(join(out, 'models', x.id, 'manifest.json')), 'bundle downloaded from the object store');
    t.like(events(coord.out()).at(-1), { type: 'end', counts: { total: 6, done: 6, failed: 0, pending: 0 } });
  } finally {
    await stopAll([a, b]);
    await nats.stop();
  }
});

test.serial('cluster: restarting nats-server mid-study (same store) → the study completes', async (t) => {
  t.timeout(90_000);
  const nats = await startNats();
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a]\nfield: mlp:width=8\ngrid: [{solver: midpoint, stepCounts: [1, 2, 3]}]\nseeds: 2\niterations: 700\n');
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
  const file = writeStudy(dir, 's.yaml', 'datasets: [spheres:a, fail:b]\nfield: mlp:width=8\ngrid: [{solver: rk4, steps: [0.5, 0.25]}]\niterations: 600\n');
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
    for (const x of all.filter((x) => x.status === 'failed')) t.regex(x.error!, /asks to fail/);
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
    const long = writeStudy(dir, 'long.yaml', 'datasets: [spheres:a]\nfield: mlp:width=8\ngrid: [euler:0.5]\nseeds: 2\niterations: 2500\n');
    const r = cli(['study', 'run', long, '--out', join(dir, 'long'), '--nats', nats.url, '--ack-wait', '1', '--json']);
    t.is(await r.exited, 0, r.err());
    const ran = [...ranBy(a), ...ranBy(b)];
    t.is(ran.length, 2, 'each 2.5 s job ran once despite a 1 s ack wait');
    t.is(lines(join(dir, 'long')).length, 2);

    // One delivery allowed; the worker holding it dies → JetStream gives up (the advisory comes
    // when the other worker pulls) → a worker records it as failed → the coordinator reports it.
    const doomed = writeStudy(dir, 'doomed.yaml', 'datasets: [spheres:z]\nfield: mlp:width=8\ngrid: [euler:0.5]\niterations: 3000\n');
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
