/**
 * Measure what each transport adds per job on this machine and keep it in the calibration cache that
 * `study plan` prices from (~/.cache/odeness/calibration.json, see src/study/calibration-cache.ts):
 *   - the local pool (`study plan` measures it too, on its first call or with --recalibrate);
 *   - NATS: a throwaway nats-server with JetStream and N `odeness worker --workers 1` processes of the
 *     compiled CLI (npm run build first), the coordinator in this process. `study plan` cannot measure
 *     NATS itself (it needs a cluster), so after a change to the cluster code run this again.
 *
 *   npx tsx scripts/calibrate-transport.ts [--workers N] [--jobs J] [--only pool|nats]
 *
 * Prints one JSON line per transport: {transport, workers, jobs, msPerJob, startupMs}.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NatsTransport } from '../src/cluster/index.js';
import { loadShare, measureTransport } from '../src/study/calibrate-transport.js';
import { transportKey, writeCachedTransport, type TransportCost } from '../src/study/calibration-cache.js';
import { LocalTransport } from '../src/study/local.js';
import { startScriptNats } from './lib/nats-server.js';
import { odeness } from './lib/odeness-process.js';

const { values } = parseArgs({
  options: { workers: { type: 'string' }, jobs: { type: 'string' }, only: { type: 'string' } },
  strict: true,
});
const workers = Number(values.workers ?? Math.min(2, availableParallelism()));
const jobs = Number(values.jobs ?? 40);
if (!Number.isInteger(workers) || workers < 1 || !Number.isInteger(jobs) || jobs < 2)
  throw new Error('--workers and --jobs must be positive integers (--jobs at least 2)');

/** The CLI's own start (`study run` pays it before its transport starts): one `odeness --help`. */
async function cliStartMs(): Promise<number> {
  const share = loadShare();
  const t = performance.now();
  const p = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'odeness.js'), 'study', 'run', '--help'], {
    stdio: 'ignore',
  });
  await new Promise((r) => p.once('exit', r));
  return (performance.now() - t) * share();
}
const cli = await cliStartMs();

function report(transport: string, measured: TransportCost & { jobMs: number }): void {
  const { jobMs: _jobMs, ...own } = measured;
  const cost = { ...own, startupMs: measured.startupMs + cli };
  writeCachedTransport(transportKey(transport), cost);
  const { msPerJob, startupMs } = cost;
  console.log(
    JSON.stringify({ transport, workers, jobs, msPerJob: Math.round(msPerJob), startupMs: Math.round(startupMs) }),
  );
}

// The pool runs first even for NATS alone: its tiny jobs' own time is what NATS's jobs are priced at.
const pool = await measureTransport(new LocalTransport({ threads: workers }), workers, jobs);
if (values.only !== 'nats') report('pool', pool);

if (values.only !== 'pool') {
  const server = await startScriptNats();
  const procs = Array.from({ length: workers }, () => odeness(['worker', '--nats', server.url, '--workers', '1']));
  try {
    // Standing workers, as a cluster has them: their own start is not the study's.
    await Promise.all(procs.map((p) => p.waitFor(/pulling from/, 120_000)));
    const nats = await NatsTransport.connect({ url: server.url });
    // Not scaled by the load: this run's own processes (nats-server, the workers and their job processes) are the
    // machine's load, and it cannot tell them from others'. Measure on an idle machine.
    report('nats', await measureTransport(nats, workers, jobs, { share: () => () => 1, idleJobMs: pool.jobMs }));
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await server.stop();
  }
}
