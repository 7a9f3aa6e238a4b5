import test from 'ava';
import { join } from 'node:path';
import { planStudy } from '../src/study/plan.js';
import { resultLines, withCluster } from './helpers/cluster.js';
import { tempDir, TINY_DATASET, writeStudy } from './helpers/procs.js';

// Memory-aware admission on a real nats-server with two real workers of different --memory budgets.
// Jobs stay tiny to run (a few iterations); their estimates differ by the field's width (parameters).

const MiB = 2 ** 20;

/** Small jobs (mlp:width=8) and, when asked, big ones (mlp:width=2048: ~4 M parameters). */
function mixedStudy(
  dir: string,
  big: boolean,
  seeds = 3,
): { file: string; small: number; large: number; bigIds: string[] } {
  const text = [
    `datasets: [${JSON.stringify(TINY_DATASET)}]`,
    `field: [mlp:width=8${big ? ', mlp:width=2048' : ''}]`,
    'grid: [{solver: euler, steps: [0.5]}]',
    `seeds: ${seeds}`,
    'iterations: 5',
    'batchSize: 32',
    'lr: 0.01',
    'testSolvers: [rk4:0.25]',
    '',
  ].join('\n');
  const file = writeStudy(dir, big ? 'mixed.yaml' : 'small.yaml', text);
  const jobs = planStudy(file).jobs;
  const size = (w: number) => Math.max(...jobs.filter((j) => j.field.includes(`width=${w},`)).map((j) => j.memory!));
  return {
    file,
    small: size(8),
    large: big ? size(2048) : 0,
    bigIds: jobs.filter((j) => j.field.includes('width=2048,')).map((j) => j.id),
  };
}

/** Budgets from a plan's estimates (decided before the workers start). */
function budgets(): { small: number; large: number } {
  const { small, large } = mixedStudy(tempDir(), true);
  return { small, large };
}

const mb = (bytes: number) => `${Math.floor(bytes / MiB)}m`;

// With --max-deliver 5 (the default), while the big worker runs one big job the small one refuses the others
// many times: refused deliveries are no runs (workers hear the refusals and do not count them), and a big worker
// that is idle says it is alive, so the coordinator waits for it. Every big job runs there, none is exhausted.
test.serial('a job too big for one worker is left for the bigger one, not failed, within a deadline', async (t) => {
  t.timeout(180_000);
  const est = budgets();
  t.true(est.large > 1.3 * est.small, `estimates ${est.small} and ${est.large} must differ`);
  // a: room for small jobs only; b: room for one big job at a time (one slot), so a is offered the others.
  const aBudget = (est.small + est.large) / 2;
  const bBudget = 1.2 * est.large;
  await withCluster(
    t,
    {
      workers: [{ args: ['--memory', mb(aBudget)] }, { args: ['--memory', mb(bBudget)] }],
    },
    async ({ dir, a, b, coordinator }) => {
      const study = mixedStudy(dir, true);
      const t0 = Date.now();
      const c = coordinator(study.file, join(dir, 'out'), ['--max-deliver', '5']);
      t.is(await c.exited, 0, c.err());
      t.true(Date.now() - t0 < 90_000, `finished after ${Date.now() - t0} ms`);
      const results = resultLines(join(dir, 'out'));
      t.is(results.length, 6);
      t.true(
        results.every((r) => r.status === 'done'),
        JSON.stringify(results.map((r) => r.error)),
      );
      for (const r of results.filter((r) => study.bigIds.includes(r.id)))
        t.regex(r.worker, new RegExp(`^nats/[^/]+/${b.pid}/`), `big job ${r.id} ran on ${r.worker}`);
      t.regex(a.err(), /leaving job [0-9a-f]{16} \(delivery \d+\) for another worker: memory: needs \d+\.\d GiB/);
      t.notRegex(b.err(), /leaving job|given up after too many deliveries/);
      t.notRegex(c.out() + c.err(), /deliveries ran out/);
    },
  );
});

test.serial('a job too big for every worker is reported with what it needs, within a deadline', async (t) => {
  t.timeout(180_000);
  const est = budgets();
  const budget = (est.small + est.large) / 2;
  await withCluster(t, { workers: { args: ['--memory', mb(budget)] } }, async ({ dir, coordinator }) => {
    const study = mixedStudy(dir, true, 2);
    const t0 = Date.now();
    const c = coordinator(study.file, join(dir, 'out'));
    t.is(await c.exited, 1, c.err());
    t.true(Date.now() - t0 < 90_000, `reported after ${Date.now() - t0} ms`);
    const gib = (n: number) => (n / 2 ** 30).toFixed(1);
    t.regex(
      c.err(),
      new RegExp(
        `2 job\\(s\\) were refused by every worker that saw them.*2 job\\(s\\): memory: needs ${gib(est.large)} GiB, ` +
          `largest worker offers ${gib(Math.floor(budget / MiB) * MiB)} GiB`,
      ),
    );
    // The small jobs ran; nothing was recorded for the big ones (a rerun with a bigger worker runs them).
    const results = resultLines(join(dir, 'out'));
    t.deepEqual(
      results.map((r) => r.status),
      ['done', 'done'],
    );
    t.false(results.some((r) => study.bigIds.includes(r.id)));
  });
});
