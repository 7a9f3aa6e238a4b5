/**
 * Study throughput benchmark (JSON on stdout):
 *
 *   1. jobs per minute with 1, 2, … N local workers (piscina threads) and the
 *      speedup over 1 worker, on real training jobs of --job-iterations iterations each (the
 *      placeholder executor spins the CPU like training would);
 *   2. per-job overhead of the NATS path vs the local path for tiny jobs
 *      (--tiny-jobs jobs of ~1 ms): one worker thread either way, an
 *      in-process `runWorker` against a throwaway nats-server (-js).
 *
 *   npx tsx scripts/bench-study.ts [--max-workers N] [--jobs J] [--job-iterations M] [--tiny-jobs K]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NatsTransport, runWorker } from '../src/cluster/index.js';
import { LocalTransport } from '../src/study/local.js';
import { readResults } from '../src/study/store.js';
import { runStudy } from '../src/study/run.js';
import { startScriptNats } from './lib/nats-server.js';

const { values } = parseArgs({
  options: {
    'max-workers': { type: 'string' },
    jobs: { type: 'string' },
    'job-iterations': { type: 'string' },
    'tiny-jobs': { type: 'string' },
  },
  strict: true,
});
const int = (v: string | undefined, d: number, name: string): number => {
  const n = v === undefined ? d : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
};
const maxWorkers = int(values['max-workers'], availableParallelism(), 'max-workers');
const jobIterations = int(values['job-iterations'], 3000, 'job-iterations');
const tinyJobs = int(values['tiny-jobs'], 100, 'tiny-jobs');

/** Real tiny jobs; a fresh block of seeds per run keeps ids new, so nothing is served from a cache. */
let nextSeed = (Date.now() % 1_000_000) * 1000;
function study(jobs: number, iterations: number, _tag: string) {
  const seeds = Array.from({ length: jobs }, () => nextSeed++);
  return {
    datasets: ['spheres:dupont2019:dim=2,n=256,testN=100'],
    field: 'mlp:width=8',
    grid: ['euler:0.5'],
    seeds,
    iterations,
    batchSize: 32,
    lr: 0.01,
    testSolvers: ['rk4:steps=2'],
  };
}

function span(dir: string): { wallFirstStartToLastEnd: number } {
  const rs = [...readResults(dir).final.values()];
  const start = Math.min(...rs.map((r) => Date.parse(r.timings.startedAt)));
  const end = Math.max(...rs.map((r) => Date.parse(r.timings.finishedAt)));
  return { wallFirstStartToLastEnd: end - start };
}

const scratch = mkdtempSync(join(tmpdir(), 'odeness-bench-'));
const tag = `${process.pid}-${Date.now()}`; // fresh job ids each run: nothing cached in a bucket

// 1. Local scaling.
const scaling: Record<string, unknown>[] = [];
let base = 0;
for (let w = 1; w <= maxWorkers; w++) {
  const jobs = int(values.jobs, 4 * maxWorkers, 'jobs');
  const out = join(scratch, `local-${w}`);
  const t0 = performance.now();
  const r = await runStudy(study(jobs, jobIterations, `${tag}-scale-${w}`), {
    out,
    transport: new LocalTransport({ threads: w }),
  });
  const ms = performance.now() - t0;
  if (r.counts.done !== jobs) throw new Error(`local run with ${w} workers: ${JSON.stringify(r.counts)}`);
  const jpm = (jobs / ms) * 60_000;
  if (w === 1) base = jpm;
  scaling.push({
    workers: w,
    jobs,
    jobIterations,
    wallMs: Math.round(ms),
    jobsPerMinute: Number(jpm.toFixed(1)),
    speedupVs1: Number((jpm / base).toFixed(2)),
    efficiency: Number((jpm / base / w).toFixed(2)),
    ...span(out),
  });
}

// 2. NATS vs local per-job overhead, tiny jobs, one thread each.
let overhead: Record<string, unknown>;
{
  const localOut = join(scratch, 'tiny-local');
  const t0 = performance.now();
  await runStudy(study(tinyJobs, 1, `${tag}-tiny-local`), {
    out: localOut,
    transport: new LocalTransport({ threads: 1 }),
  });
  const localMs = performance.now() - t0;
  const localSpan = span(localOut).wallFirstStartToLastEnd;

  // A throw-away JetStream server (scripts/lib/nats-server.ts).
  const server = await startScriptNats().catch((e: Error) => e);
  if (server instanceof Error) {
    overhead = { skipped: `nats-server not available (${server.message})` };
  } else {
    const url = server.url;
    const ac = new AbortController();
    let readyResolve!: () => void;
    const workerReady = new Promise<void>((r) => (readyResolve = r));
    const worker = runWorker({ url, concurrency: 1, signal: ac.signal, log: () => undefined, onReady: readyResolve });
    await workerReady;
    const natsOut = join(scratch, 'tiny-nats');
    const t1 = performance.now();
    const r = await runStudy(study(tinyJobs, 1, `${tag}-tiny-nats`), {
      out: natsOut,
      transport: await NatsTransport.connect({ url }),
    });
    const natsMs = performance.now() - t1;
    ac.abort();
    await worker;
    await server.stop();
    if (r.counts.done !== tinyJobs) throw new Error(`nats run: ${JSON.stringify(r.counts)}`);
    const natsSpan = span(natsOut).wallFirstStartToLastEnd;
    overhead = {
      tinyJobs,
      local: {
        wallMs: Math.round(localMs),
        msPerJob: Number((localMs / tinyJobs).toFixed(2)),
        steadyMsPerJob: Number((localSpan / tinyJobs).toFixed(2)),
      },
      nats: {
        wallMs: Math.round(natsMs),
        msPerJob: Number((natsMs / tinyJobs).toFixed(2)),
        steadyMsPerJob: Number((natsSpan / tinyJobs).toFixed(2)),
      },
      natsExtraMsPerJob: Number(((natsMs - localMs) / tinyJobs).toFixed(2)),
      natsExtraSteadyMsPerJob: Number(((natsSpan - localSpan) / tinyJobs).toFixed(2)),
      note: 'one worker thread on each path; the NATS worker runs in this process against a local nats-server; wall includes pool start-up, steady = first job start to last job end',
    };
  }
}

rmSync(scratch, { recursive: true, force: true });
process.stdout.write(
  JSON.stringify(
    {
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      executor: `real tiny jobs: 2-D spheres (256 points), mlp:width=8, euler:0.5, ${jobIterations} iterations (scaling) / 1 iteration (overhead), one rk4 test solve`,
      localScaling: scaling,
      natsOverhead: overhead,
    },
    null,
    2,
  ) + '\n',
);
