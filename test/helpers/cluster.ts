/**
 * The cluster tests' shared setup: a throwaway nats-server, two real
 * `odeness worker` processes (one slot each) pulling from it, and the
 * readers the tests check results with.
 */
import type { ExecutionContext } from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadDataset } from '../../src/data/spec.js';
import { evaluateBundle } from '../../src/onnx/evaluate.js';
import { parseSolverSpec } from '../../src/solvers/spec.js';
import { validateResult } from '../../src/study/records.js';
import type { JobResult, StudyEvent } from '../../src/study/types.js';
import { cli, ROOT, startNats, tempDir, type NatsServer, type Proc } from './procs.js';

export interface Cluster {
  nats: NatsServer;
  /** A fresh temporary directory for study files and outputs. */
  dir: string;
  a: Proc;
  b: Proc;
  /** `odeness study run FILE --out OUT --nats URL --events …` against this cluster. */
  coordinator(file: string, out: string, extra?: string[], env?: NodeJS.ProcessEnv): Proc;
}

export interface ClusterOptions {
  /** Extra `odeness worker` arguments and environment for both workers, or per worker ([a, b]). */
  workers?: WorkerSetup | [WorkerSetup, WorkerSetup];
  natsConfig?: string;
  /** Environment of nats-server (variables its config refers to). */
  natsEnv?: NodeJS.ProcessEnv;
  /** What the workers print once ready (default: `pulling from`). */
  waitFor?: RegExp;
  /** Extra arguments of every coordinator (e.g. credentials). */
  coordinatorArgs?: string[];
}

export interface WorkerSetup {
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Environment for `odeness worker` whose job processes get test faults
 * (test/helpers/job-hooks.mjs: ODENESS_TEST_ABORT_JOB, ODENESS_TEST_STALL_JOB).
 */
export function jobHooksEnv(faults: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const hooks = pathToFileURL(join(ROOT, 'test/helpers/job-hooks.mjs')).href;
  return { ...faults, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hooks}`.trim() };
}

export function worker(url: string, args: string[] = [], env?: NodeJS.ProcessEnv): Proc {
  return cli(['worker', '--nats', url, '--workers', '1', ...args], env);
}

export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

/** Run `body` against nats + two workers; everything is stopped afterwards, pass or fail. */
export async function withCluster(
  t: ExecutionContext,
  opts: ClusterOptions,
  body: (c: Cluster) => Promise<void>,
): Promise<void> {
  const nats = await startNats({
    ...(opts.natsConfig !== undefined ? { config: opts.natsConfig } : {}),
    ...(opts.natsEnv ? { env: opts.natsEnv } : {}),
  });
  const dir = tempDir();
  const procs: Proc[] = [];
  const setup = (i: number): WorkerSetup => (Array.isArray(opts.workers) ? opts.workers[i]! : (opts.workers ?? {}));
  try {
    const [a, b] = [0, 1].map((i) => worker(nats.url, setup(i).args, setup(i).env)) as [Proc, Proc];
    procs.push(a, b);
    await Promise.all([a.waitFor(opts.waitFor ?? /pulling from/), b.waitFor(opts.waitFor ?? /pulling from/)]);
    await body({
      nats,
      dir,
      a,
      b,
      coordinator: (file, out, extra = [], env) => {
        const p = cli(
          [
            'study',
            'run',
            file,
            '--out',
            out,
            '--nats',
            nats.url,
            '--events',
            ...(opts.coordinatorArgs ?? []),
            ...extra,
          ],
          env,
        );
        procs.push(p);
        return p;
      },
    });
  } catch (e) {
    for (const p of procs) t.log(`--- pid ${p.pid} stderr ---\n${p.err().slice(-3000)}`);
    throw e;
  } finally {
    await stopAll(procs);
    await nats.stop();
  }
}

/** Every line of DIR/results.jsonl, in order (duplicates kept; a line still being written is skipped). */
export function resultLines(dir: string): JobResult[] {
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [validateResult(JSON.parse(l))];
      } catch {
        return [];
      }
    });
}

/** The JSON events a `study run --events` printed. */
export function jsonEvents(out: string): StudyEvent[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as StudyEvent);
}

/** Poll `cond` every 25 ms; throws after `ms`. */
export async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ids a worker ran to a result, from its log lines ("<id> done in N ms"). */
export function ranBy(p: Proc): string[] {
  return [...p.err().matchAll(/ ([0-9a-f]{16}) (?:done|failed) in /g)].map((m) => m[1]!);
}

/**
 * Re-evaluate a downloaded bundle on the job's own test split and return its
 * accuracies under the train solver and each test solver: a done result's
 * metrics must equal these exactly when metrics and bundle come from the same run.
 */
export async function reevaluate(out: string, r: JobResult): Promise<number[]> {
  const ds = await loadDataset(r.job.dataset, r.job.seed);
  const m = r.metrics as { trainSolver: string };
  const rows = await evaluateBundle(
    join(out, 'models', r.id),
    ds.test,
    [m.trainSolver, ...r.job.testSolvers].map((s) => parseSolverSpec(s)),
  );
  return rows.map((row) => row.accuracy);
}
