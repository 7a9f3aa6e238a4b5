import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  jsonEvents as events,
  ranBy,
  reevaluate,
  resultLines as lines,
  until,
  withCluster,
} from './helpers/cluster.js';
import { tempDir, TINY_DATASET, tinyStudy, writeStudy } from './helpers/procs.js';

// Real tiny jobs (train → bundle → onnxruntime re-evaluation) through the real CLI.
// Each test gets its own nats-server and two workers; tests run one at a time (two workers already fill 2 cores).

test.serial('cluster: SIGKILL a worker mid-job → the job is redelivered, one result per job', async (t) => {
  t.timeout(90_000);
  await withCluster(t, {}, async ({ dir, a, b, coordinator }) => {
    // 6 jobs of about 1 s each (unloaded).
    const file = writeStudy(
      dir,
      's.yaml',
      tinyStudy({ grid: '[{solver: euler, steps: [0.5, 0.25, 0.125]}]', seeds: 2, iterations: 2000 }),
    );
    const out = join(dir, 'out');
    const coord = coordinator(file, out, ['--ack-wait', '2']);
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
      // The downloaded bundle reproduces the result's accuracies exactly: metrics and bundle come from one run.
      const m = x.metrics as { trainAccuracy: number; evals: { solver: string; param: number; accuracy: number }[] };
      t.deepEqual(
        m.evals.map((e) => [e.solver, e.param]),
        [['rk4', 0.1]],
      );
      t.deepEqual(await reevaluate(out, x), [m.trainAccuracy, ...m.evals.map((e) => e.accuracy)]);
      t.true(m.trainAccuracy > 0.6, `a trained model beats chance (accuracy ${m.trainAccuracy})`);
    }
    t.like(events(coord.out()).at(-1), { type: 'end', counts: { total: 6, done: 6, failed: 0, pending: 0 } });
  });
});

test.serial(
  'cluster: SIGTERM a worker mid-job → it hands the job back at once and exits cleanly; another worker finishes it',
  async (t) => {
    t.timeout(90_000);
    await withCluster(t, {}, async ({ dir, a, b, coordinator }) => {
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 3000 }));
      const out = join(dir, 'out');
      // The default 30 s ack wait: only the nak brings the job back in time.
      const coord = coordinator(file, out);
      const m = await coord.waitFor(new RegExp(`"type":"start","id":"([0-9a-f]{16})","worker":"nats/[^/]+/${a.pid}/`));
      const t0 = Date.now();
      a.kill('SIGTERM');
      t.is(await a.exited, 0, a.err());
      // Its job process is killed, the delivery nak'ed: no waiting for the job to reach a safe point.
      t.true(Date.now() - t0 < 10_000, `the worker stopped ${Date.now() - t0} ms after SIGTERM`);
      t.regex(a.err(), /worker stopped .*: 0 jobs run .*, 1 returned to the queue/);
      t.is(await coord.exited, 0, coord.err());
      const all = lines(out);
      t.is(all.length, 2);
      t.true(all.every((x) => x.status === 'done'));
      t.regex(
        all.find((x) => x.id === m[1])!.worker,
        new RegExp(`/${b.pid}/`),
        'the returned job was run by the other worker',
      );
    });
  },
);

test.serial('cluster: restarting nats-server mid-study (same store) → the study completes', async (t) => {
  t.timeout(90_000);
  await withCluster(t, {}, async ({ dir, nats, coordinator }) => {
    // 6 jobs of about 1–1.5 s each (unloaded): the 0.8 s outage falls mid-job.
    const file = writeStudy(
      dir,
      's.yaml',
      tinyStudy({ grid: '[{solver: midpoint, stepCounts: [1, 2, 3]}]', seeds: 2, iterations: 4000 }),
    );
    const out = join(dir, 'out');
    const coord = coordinator(file, out, ['--ack-wait', '2']);
    await until(() => lines(out).length >= 1);
    await nats.restart(800);
    t.is(await coord.exited, 0, coord.err());
    t.regex(coord.out(), /lost the connection to NATS/);
    const all = lines(out);
    t.is(all.length, 6);
    t.is(new Set(all.map((x) => x.id)).size, 6);
    t.true(all.every((x) => x.status === 'done'));
  });
});

test.serial('cluster: a restarted coordinator resumes from the result bucket; failures are recorded', async (t) => {
  t.timeout(90_000);
  const data = tempDir();
  const missing = `json:${data}/missing.json`;
  await withCluster(t, { workers: { args: ['--data-root', data] } }, async ({ dir, a, b, coordinator }) => {
    const file = writeStudy(
      dir,
      's.yaml',
      tinyStudy({ datasets: [TINY_DATASET, missing], grid: '[{solver: rk4, steps: [0.5, 0.25]}]', iterations: 2000 }),
    );
    const out = join(dir, 'out');
    const first = coordinator(file, out, ['--ack-wait', '2']);
    await until(() => lines(out).length >= 1);
    first.kill('SIGKILL');
    await first.exited;
    const before = lines(out).length;
    // Workers keep going without a coordinator; their results wait in the bucket.
    await until(() => ranBy(a).length + ranBy(b).length >= 4);
    const second = coordinator(file, out, ['--ack-wait', '2']);
    t.is(await second.exited, 1, 'exit 1: some jobs failed');
    t.like(events(second.out())[0], { type: 'plan', total: 4, toRun: 4 - before });
    const all = lines(out);
    t.is(all.length, 4);
    t.is(new Set(all.map((x) => x.id)).size, 4);
    t.is(all.filter((x) => x.status === 'failed').length, 2);
    for (const x of all.filter((x) => x.status === 'failed')) {
      t.is(x.job.dataset, missing);
      t.is(x.error, `${data}/missing.json: file not found`);
    }
    for (const x of all.filter((x) => x.status === 'done')) t.true(existsSync(join(out, 'models', x.id, 'field.onnx')));
    const ran = [...ranBy(a), ...ranBy(b)];
    t.is(ran.length, 4, 'no job ran twice');
    t.is(new Set(ran).size, 4);
  });
});

test.serial(
  'cluster: jobs longer than the ack wait stay alive (in-progress acks); a job no worker survives is recorded as failed',
  async (t) => {
    t.timeout(90_000);
    await withCluster(t, {}, async ({ dir, a, b, coordinator }) => {
      // Two jobs of about 2.5 s each (unloaded): several times the 1 s ack wait.
      const long = writeStudy(dir, 'long.yaml', tinyStudy({ grid: '[rk4:0.25]', seeds: 2, iterations: 5000 }));
      const r = coordinator(long, join(dir, 'long'), ['--ack-wait', '1']);
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
      const c = coordinator(doomed, join(dir, 'doomed'), ['--ack-wait', '1', '--max-deliver', '1']);
      const m = await c.waitFor(/"type":"start","id":"[0-9a-f]{16}","worker":"nats\/[^/]+\/(\d+)\//);
      const holder = Number(m[1]) === a.pid ? a : b;
      const other = holder === a ? b : a;
      holder.kill('SIGKILL');
      t.is(await c.exited, 1, c.err());
      await other.waitFor(/given up after too many deliveries; recorded as failed/);
      const [res] = lines(join(dir, 'doomed'));
      t.is(res!.status, 'failed');
      t.regex(res!.error!, /delivered 1 times without a result .* --retry-failed/);
    });
  },
);
