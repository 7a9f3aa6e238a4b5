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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCachedTransport, transportKey, writeCachedTransport, type TransportCost } from './calibration-cache.js';
import { readResults } from './store.js';
import { runStudy } from './run.js';
import type { Transport } from './transport.js';

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

/**
 * Per-job overhead and start-up of a transport with `workers` workers, from a tiny study of `jobs` jobs on a fresh
 * transport: each result's own timings (measured around executeJob where it ran) are the jobs' work; what the
 * workers spent beyond it between the first start and the last finish is the transport's per-job overhead, and
 * the time before the first start and after the last finish its start-up (and wind-down).
 */
export async function measureTransport(transport: Transport, workers: number, jobs = 24): Promise<TransportCost> {
  const dir = mkdtempSync(join(tmpdir(), 'odeness-transport-'));
  try {
    // Fresh seeds: a cluster's buckets may hold results of earlier calibrations.
    const t0 = Date.now();
    const r = await runStudy(tinyStudy(jobs, t0 % 1e9), { out: join(dir, 'study'), transport });
    const t1 = Date.now();
    if (r.counts.done !== jobs) throw new Error(`transport calibration: ${JSON.stringify(r.counts)}`);
    const results = [...readResults(join(dir, 'study')).final.values()];
    const first = Math.min(...results.map((x) => Date.parse(x.timings.startedAt)));
    const last = Math.max(...results.map((x) => Date.parse(x.timings.finishedAt)));
    const work = results.reduce((s, x) => s + x.timings.ms, 0);
    return {
      msPerJob: Math.max(0, ((last - first) * workers - work) / jobs),
      startupMs: Math.max(0, first - t0 + (t1 - last)),
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
