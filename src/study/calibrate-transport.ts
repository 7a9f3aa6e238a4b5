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
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCachedTransport, transportKey, writeCachedTransport, type TransportCost } from './calibration-cache.js';
import { median } from './calibrate.js';
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
  pool: { msPerJob: 12, startupMs: 3000, measuredAt: 'default' },
  nats: { msPerJob: 23, startupMs: 1300, measuredAt: 'default' },
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

/** Busy milliseconds of every core of the machine since boot. */
function machineBusyMs(): number {
  return cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
}

/**
 * The share of the machine other processes left to this one's workers (its pool threads), from the CPU time they
 * took while it measured: 1 on an idle machine. Not the CPU time the workers got: the pool's own waits (its dispatch
 * leaves a third of 2 cores idle on tiny jobs) are its cost, and scaled away as if they were others' load they made
 * its overhead 8.7 ms a job for the 13 a 2 000-job study spends. Not the load average either: a minute late, it
 * still counted a finished run's processes and halved the start-up measured after it.
 */
export function machineShare(): () => number {
  const busy = machineBusyMs();
  const own = process.cpuUsage();
  const t = performance.now();
  return () => {
    const used = process.cpuUsage(own);
    const others = machineBusyMs() - busy - (used.user + used.system) / 1000;
    return Math.min(1, Math.max(0.05, 1 - Math.max(0, others) / (availableParallelism() * (performance.now() - t))));
  };
}

/**
 * The share of a core each busy worker gets from the machine's load, for workers in other processes (NATS), whose
 * CPU time this process cannot tell from others': cores over the mean load, at most 1. The load average lags a
 * minute: measure on a machine idle for a minute.
 */
export function loadShare(): () => number {
  const before = loadavg()[0]!;
  return () => Math.min(1, availableParallelism() / Math.max(1e-9, (before + loadavg()[0]!) / 2));
}

/**
 * Each worker's first job loads what the later ones find loaded (the backend, onnxruntime, the evaluation and audit
 * code): the mean over workers of its extra time, part of the start and not of every job; and the mean time of the
 * later jobs.
 */
function firstAndLater(results: readonly JobResult[]): { warmupMs: number; laterJobMs: number } {
  const byWorker = new Map<string, number[]>();
  for (const r of [...results].sort((a, b) => Date.parse(a.timings.startedAt) - Date.parse(b.timings.startedAt)))
    byWorker.set(r.worker, [...(byWorker.get(r.worker) ?? []), r.timings.ms]);
  const extra = [...byWorker.values()].map((ms) => (ms.length < 2 ? 0 : Math.max(0, ms[0]! - median(ms.slice(1)))));
  const later = [...byWorker.values()].flatMap((ms) => ms.slice(1));
  return {
    warmupMs: extra.reduce((a, b) => a + b, 0) / Math.max(1, extra.length),
    laterJobMs: later.length > 0 ? later.reduce((a, b) => a + b, 0) / later.length : 0,
  };
}

export interface TransportMeasureOptions {
  /** The share of the machine the workers got (default machineShare: the pool's threads are this process's). */
  readonly share?: () => () => number;
  /**
   * A tiny job's own time beside an idle transport (the pool's `jobMs`): the jobs' work is then priced at it, and
   * what the transport's own processes slowed them by is the transport's cost. On NATS, where the coordinator,
   * nats-server and each worker's main process share the cores with the jobs, a tiny job took 12.6 ms against the
   * pool's 7.1, and the estimate, which prices jobs as the pool runs them, came out 1.4× short.
   */
  readonly idleJobMs?: number;
}

/**
 * Per-job overhead and start-up of a transport with `workers` workers, from a tiny study of `jobs` jobs on a fresh
 * transport: each result's own timings (measured around executeJob where it ran) are the jobs' work (or
 * `idleJobMs` each); what the workers spent beyond it between the first start and the last finish is the
 * transport's per-job overhead, and the time before the first start and after the last finish its start-up (and
 * wind-down). `jobMs` is the jobs' mean time after each worker's first.
 */
export async function measureTransport(
  transport: Transport,
  workers: number,
  jobs = 24,
  options: TransportMeasureOptions = {},
): Promise<TransportCost & { readonly jobMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-transport-'));
  try {
    const f = (options.share ?? machineShare)();
    // Fresh seeds: a cluster's buckets may hold results of earlier calibrations.
    const t0 = Date.now();
    const r = await runStudy(tinyStudy(jobs, t0 % 1e9), { out: join(dir, 'study'), transport });
    const t1 = Date.now();
    if (r.counts.done !== jobs) throw new Error(`transport calibration: ${JSON.stringify(r.counts)}`);
    const results = [...readResults(join(dir, 'study')).final.values()];
    const first = Math.min(...results.map((x) => Date.parse(x.timings.startedAt)));
    const last = Math.max(...results.map((x) => Date.parse(x.timings.finishedAt)));
    const { warmupMs, laterJobMs } = firstAndLater(results);
    const ran = new Set(results.map((x) => x.worker)).size;
    const work =
      options.idleJobMs !== undefined
        ? options.idleJobMs * jobs + warmupMs * ran
        : results.reduce((s, x) => s + x.timings.ms, 0);
    // As the group costs (calibrate.ts): scaled to an idle machine by the share of it the measurement got.
    const k = f();
    return {
      msPerJob: k * Math.max(0, ((last - first) * workers - work) / jobs),
      startupMs: k * (Math.max(0, first - t0 + (t1 - last)) + warmupMs),
      cpuShare: k,
      measuredAt: new Date().toISOString(),
      jobMs: k * laterJobMs,
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
