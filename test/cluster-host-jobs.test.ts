// `odeness worker --host-jobs N`: at most N jobs at once across the workers of this user on this machine
// (src/cluster/host-slots.ts), unit by unit and on a real nats-server.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostSlots } from '../src/cluster/host-slots.js';
import { resultLines, withCluster } from './helpers/cluster.js';
import { tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> =>
  Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

test('slots: N holders at most; a waiter gets the slot another gives back', async (t) => {
  const dir = tempDir('odeness-slots-');
  const slots = new HostSlots(dir, 2);
  const stop = new AbortController();
  const a = await slots.acquire(stop.signal);
  const b = await slots.acquire(stop.signal);
  t.truthy(a && b);
  const third = slots.acquire(stop.signal);
  t.is(await within(third, 600), 'pending', 'a third holder waits while two hold slots');
  await a!();
  const c = await within(third, 2_000);
  t.is(typeof c, 'function', 'the waiter took the slot given back');
  await b!();
  await (c as () => Promise<void>)();
});

test("slots: a dead owner's slot is taken over; a slot being written is not; a waiter stops on abort", async (t) => {
  const dir = tempDir('odeness-slots-');
  const deadPid = spawnSync('true').pid!;
  writeFileSync(join(dir, 'slot-0'), String(deadPid));
  const stop = new AbortController();
  const one = new HostSlots(dir, 1);
  const taken = await within(one.acquire(stop.signal), 1_000);
  t.is(typeof taken, 'function', "a SIGKILLed worker's slot is no slot held");
  await (taken as () => Promise<void>)();

  writeFileSync(join(dir, 'slot-0'), ''); // created, its pid not yet written
  const waiting = one.acquire(stop.signal);
  t.is(await within(waiting, 600), 'pending', 'a just-created slot file counts as held');
  stop.abort();
  t.is(await within(waiting, 1_000), undefined, 'an aborted wait gives no slot');
});

test.serial(
  'two workers of 2 slots each with --host-jobs 1 never run two jobs at once, and run them all',
  async (t) => {
    t.timeout(120_000);
    // Their own TMPDIR: the slots of this machine are shared by every worker of this user, tests in parallel too.
    const env = { TMPDIR: tempDir('odeness-hostjobs-') };
    const args = ['--workers', '2', '--host-jobs', '1'];
    await withCluster(t, { workers: { args, env } }, async ({ dir, a, b, coordinator }) => {
      t.regex(a.err() + b.err(), /at most 1 job\(s\) at once on this machine/);
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.25, euler:0.5, rk4:0.5]', iterations: 150 }));
      const out = join(dir, 'out');
      const c = coordinator(file, out);
      t.is(await c.exited, 0, c.err());
      const spans = resultLines(out)
        .map((r) => [Date.parse(r.timings.startedAt), Date.parse(r.timings.finishedAt)] as const)
        .sort((x, y) => x[0] - y[0]);
      t.is(spans.length, 3);
      for (let i = 1; i < spans.length; i++)
        t.true(
          spans[i]![0] >= spans[i - 1]![1],
          `job ${i} started before job ${i - 1} finished: ${JSON.stringify(spans)}`,
        );
    });
  },
);
