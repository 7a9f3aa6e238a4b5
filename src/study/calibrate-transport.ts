/**
 * What a transport adds to each job, measured: tiny real jobs run through a
 * transport (runStudy into a throwaway directory); what the workers spend
 * beyond the jobs' own work is the transport's per-job overhead (dispatch,
 * the result store, bundle moves, a job process's start or reuse).
 * The local pool is measured by `study plan` itself (cached with the rest of
 * the calibration); NATS needs a cluster, so scripts/calibrate-transport.ts
 * measures it against a throwaway nats-server and writes the same cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCachedTransport, transportKey, writeCachedTransport, type TransportCost } from './calibration-cache.js';
import { readResults } from './store.js';
import { runStudy } from './run.js';
import type { Transport } from './transport.js';
import type { JobResult } from './types.js';

export type TransportName = 'pool' | 'nats';

/**
 * Per-job overhead and start-up when this machine has not measured them: measured on the 2-core development
 * machine (pool: 2 threads; NATS: 2 `odeness worker` processes, loopback nats-server) on tiny jobs.
 * NATS is never measured by `study plan` (it needs a cluster): scripts/calibrate-transport.ts measures it.
 */
export const DEFAULT_TRANSPORT_COST: Readonly<Record<TransportName, TransportCost>> = {
  pool: { msPerJob: 20, startupMs: 1500, measuredAt: 'default' },
  nats: { msPerJob: 180, startupMs: 3000, measuredAt: 'default' },
};

/** A study of `jobs` tiny real jobs (2 iterations of a width-8 MLP on 2-D spheres, one test solver). */
export function tinyStudy(jobs: number, firstSeed = 0) {
  return {
    name: 'transport-calibration',
    datasets: ['spheres:dupont2019:dim=2,n=256,testN=100'],
    field: 'mlp:width=8',
    grid: ['euler:0.5'],
    seeds: Array.from({ length: jobs }, (_, k) => firstSeed + k),
    iterations: 2,
    batchSize: 32,
    lr: 0.01,
    testSolvers: ['rk4:steps=2'],
  };
}

/** CPU time of this process (its pool threads included) over the wall time of `workers` cores, at most 1. */
function processShare(workers: number): () => number {
  const cpu = process.cpuUsage();
  const t = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return Math.min(1, Math.max(0.01, (used.user + used.system) / 1000 / ((performance.now() - t) * workers)));
  };
}

/**
 * The share of a core each of `workers` busy processes gets from the machine's load (for workers in other
 * processes, whose CPU time this process cannot see): cores over the mean load, at most 1.
 */
export function loadShare(): () => number {
  const before = loadavg()[0]!;
  return () => Math.min(1, availableParallelism() / Math.max(1e-9, (before + loadavg()[0]!) / 2));
}

/**
 * A worker's first job loads what the later ones find loaded (the backend, onnxruntime, the evaluation and audit
 * code): its extra time, the mean over workers, is part of the start, not of every job.
 */
function warmup(results: readonly JobResult[]): number {
  const byWorker = new Map<string, number[]>();
  for (const r of [...results].sort((a, b) => Date.parse(a.timings.startedAt) - Date.parse(b.timings.startedAt)))
    byWorker.set(r.worker, [...(byWorker.get(r.worker) ?? []), r.timings.ms]);
  const extra = [...byWorker.values()].map((ms) => {
    const later = ms.slice(1).sort((a, b) => a - b);
    return later.length === 0 ? 0 : Math.max(0, ms[0]! - later[Math.floor((later.length - 1) / 2)]!);
  });
  return extra.reduce((a, b) => a + b, 0) / Math.max(1, extra.length);
}

/**
 * Per-job overhead and start-up of a transport with `workers` workers, from a tiny study of `jobs` jobs on a fresh
 * transport: each result's own timings (measured around executeJob where it ran) are the jobs' work; what the
 * workers spent beyond it between the first start and the last finish is the transport's per-job overhead, and
 * the time before the first start and after the last finish its start-up (and wind-down).
 */
export async function measureTransport(
  transport: Transport,
  workers: number,
  jobs = 24,
  share: () => () => number = () => processShare(workers),
): Promise<TransportCost> {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-transport-'));
  try {
    const f = share();
    // Fresh seeds: a cluster's buckets may hold results of earlier calibrations.
    const t0 = Date.now();
    const r = await runStudy(tinyStudy(jobs, t0 % 1e9), { out: join(dir, 'study'), transport });
    const t1 = Date.now();
    if (r.counts.done !== jobs) throw new Error(`transport calibration: ${JSON.stringify(r.counts)}`);
    const results = [...readResults(join(dir, 'study')).final.values()];
    const first = Math.min(...results.map((x) => Date.parse(x.timings.startedAt)));
    const last = Math.max(...results.map((x) => Date.parse(x.timings.finishedAt)));
    const work = results.reduce((s, x) => s + x.timings.ms, 0);
    // As the group costs (calibrate.ts): scaled to an idle machine by the CPU the measurement got.
    const k = f();
    return {
      msPerJob: k * Math.max(0, ((last - first) * workers - work) / jobs),
      startupMs: k * (Math.max(0, first - t0 + (t1 - last)) + warmup(results)),
      cpuShare: k,
      measuredAt: new Date().toISOString(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The transport's cost on this machine: cached, else measured now by `measure` (and cached), else the default
 * above (`source` says which).
 */
export async function transportCost(
  name: TransportName,
  options: { recalibrate?: boolean; measure?: () => Promise<TransportCost> } = {},
): Promise<TransportCost & { source: 'cached' | 'measured' | 'default' }> {
  const key = transportKey(name);
  const cached = options.recalibrate && options.measure ? undefined : readCachedTransport(key);
  if (cached) return { ...cached, source: 'cached' };
  if (!options.measure) return { ...DEFAULT_TRANSPORT_COST[name], source: 'default' };
  const measured = await options.measure();
  writeCachedTransport(key, measured);
  return { ...measured, source: 'measured' };
}
