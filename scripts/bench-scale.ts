/**
 * Tiny-job throughput at scale, NATS against the local pool on the same cores (JSON on stdout):
 *
 *   1. the local pool (`study run --workers T`) runs N tiny grid jobs;
 *   2. a throwaway nats-server, W `odeness worker --workers 1` processes and one coordinator
 *      (`study run --nats`) run the same N jobs; the coordinator's RSS is sampled against the
 *      number of results recorded so far;
 *   3. both output directories are compared (exactly one result per job on NATS, equal results
 *      once timings and worker names are removed: src/study/compare.ts), and
 *      `study status` and `study report` are timed on the NATS directory;
 *   4. CPU seconds per process kind (coordinator, workers with their job processes, nats-server).
 *
 *   npx tsx scripts/bench-scale.ts [--jobs N] [--nats-workers W] [--pool-threads T] [--iterations I]
 *                                  [--out DIR] [--skip-pool] [--sample-ms MS] [--profile-coordinator DIR]
 *                                  [--host-jobs K] (workers share K job slots: odeness worker --host-jobs)
 *                                  [--profile-workers DIR] (node --cpu-prof of those processes, job processes too)
 *                                  [--coordinator-arg A]... (passed to the coordinator's `study run`, e.g. --no-report)
 * Needs the compiled CLI (npx tsc) and nats-server on PATH. Defaults: 2000 jobs, 8 workers, 2 threads.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_SEEDS } from '../src/formats/study-file.js';
import { compareRuns, resultsById } from '../src/study/compare.js';
import { startScriptNats } from './lib/nats-server.js';
import { odeness as cli, type OdenessProcess as Proc } from './lib/odeness-process.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    'nats-workers': { type: 'string', default: '8' },
    'pool-threads': { type: 'string', default: '2' },
    iterations: { type: 'string', default: '2' },
    out: { type: 'string' },
    'skip-pool': { type: 'boolean', default: false },
    'sample-ms': { type: 'string', default: '1000' },
    'profile-coordinator': { type: 'string' },
    'profile-workers': { type: 'string' },
    'host-jobs': { type: 'string' },
    'coordinator-arg': { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});
const int = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${values[name]}`);
  return n;
};
const requestedJobs = int('jobs');
const natsWorkers = int('nats-workers');
const poolThreads = int('pool-threads');
const iterations = int('iterations');
const sampleMs = int('sample-ms');
const dir = values.out ? resolve(values.out) : mkdtempSync(join(tmpdir(), 'odeness-scale-'));
mkdirSync(dir, { recursive: true });
const log = (m: string) => process.stderr.write(`[bench-scale ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/**
 * N tiny grid jobs: 2-D spheres, a width-8 MLP, one rk4 test solve; Euler step counts 1..k × N/k seeds (a study
 * takes at most MAX_SEEDS seeds, so k = ⌈N / MAX_SEEDS⌉; N is rounded up to a multiple of k).
 */
const stepCounts = Math.ceil(requestedJobs / MAX_SEEDS);
const seedsPerStep = Math.ceil(requestedJobs / stepCounts);
const jobs = stepCounts * seedsPerStep;
const studyFile = join(dir, 'tiny.json');
writeFileSync(
  studyFile,
  JSON.stringify({
    name: `tiny-${jobs}`,
    datasets: ['spheres:dupont2019:dim=2,n=256,testN=100'],
    field: 'mlp:width=8',
    grid: Array.from({ length: stepCounts }, (_, k) => `euler:steps=${k + 1}`),
    seeds: Array.from({ length: seedsPerStep }, (_, i) => i + 1),
    iterations,
    batchSize: 32,
    lr: 0.01,
    testSolvers: ['rk4:steps=2'],
  }),
);

const TICK_S = 0.01; // /proc stat times are in clock ticks of 10 ms (USER_HZ 100)
/** CPU seconds of a live process (user + system), or undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_S; // utime, stime
  } catch {
    return undefined;
  }
}
/**
 * Busy CPU seconds of the whole machine (/proc/stat: user, nice, system, irq, softirq, steal): the job
 * processes a worker keeps alive are in no process's account until they exit, so per-process times miss them.
 */
function machineCpuSeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) * TICK_S;
}
/** CPU seconds of the children a process has waited for (its job processes, for a worker). */
function childCpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_S; // cutime, cstime
}
/** The pid of the nats-server listening on `port` (started by startNats, which does not say). */
function natsServerPid(port: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('nats-server') && args[args.indexOf('-p') + 1] === String(port)) return Number(name);
    } catch {}
  }
  return undefined;
}
function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
/** Results recorded so far: lines of results.jsonl (read incrementally by size). */
function resultLines(out: string): number {
  try {
    const text = readFileSync(join(out, 'results.jsonl'), 'utf8');
    let n = 0;
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

interface Sample {
  s: number;
  results: number;
  rssMb: number;
}
/** Sample a study run's RSS and result count until it exits. */
async function watch(p: Proc, out: string, t0: number): Promise<{ code: number; samples: Sample[]; cpuS: number }> {
  const samples: Sample[] = [];
  let cpuS = 0;
  let resultsFileSize = -1;
  let results = 0;
  const timer = setInterval(() => {
    const rss = rssMb(p.pid);
    cpuS = cpuSeconds(p.pid) ?? cpuS;
    let size = 0;
    try {
      size = statSync(join(out, 'results.jsonl')).size;
    } catch {}
    if (size !== resultsFileSize) {
      resultsFileSize = size;
      results = resultLines(out);
    }
    if (rss !== undefined) samples.push({ s: Math.round((performance.now() - t0) / 100) / 10, results, rssMb: rss });
  }, sampleMs);
  const code = await p.exited;
  clearInterval(timer);
  return { code, samples, cpuS };
}

/** A few points of the RSS curve: the start, each quarter of the results, the peak. */
function curve(samples: Sample[]): Sample[] {
  if (samples.length === 0) return [];
  const last = samples[samples.length - 1]!.results;
  const points = [samples[0]!];
  for (const q of [0.25, 0.5, 0.75, 1]) {
    const s = samples.find((x) => x.results >= q * last);
    if (s && !points.includes(s)) points.push(s);
  }
  const peak = samples.reduce((a, b) => (b.rssMb > a.rssMb ? b : a));
  return [...points, { ...peak, peak: true } as Sample];
}

/** Results against time, about `n` points: where a run stalls or speeds up. */
function timeline(samples: Sample[], n = 12): [number, number][] {
  const step = Math.max(1, Math.ceil(samples.length / n));
  const picked = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  return picked.map((x) => [x.s, x.results]);
}

async function timed(args: string[]): Promise<{ ms: number; code: number; out: string }> {
  const t0 = performance.now();
  const p = cli(args);
  const code = await p.exited;
  return { ms: Math.round(performance.now() - t0), code, out: p.out().slice(-300) };
}

const summary: Record<string, unknown> = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  jobs,
  iterations,
  out: dir,
};

// 1. The local pool.
const poolOut = join(dir, 'pool');
let poolMs: number | undefined;
if (!values['skip-pool']) {
  log(`pool: ${jobs} jobs on ${poolThreads} thread(s)`);
  const t0 = performance.now();
  const machine0 = machineCpuSeconds();
  const p = cli(['study', 'run', studyFile, '--out', poolOut, '--workers', String(poolThreads), '--yes']);
  const w = await watch(p, poolOut, t0);
  poolMs = performance.now() - t0;
  if (w.code !== 0) throw new Error(`pool run exited ${w.code}: ${p.err().slice(-2000)}`);
  summary.pool = {
    threads: poolThreads,
    wallS: +(poolMs / 1000).toFixed(1),
    cpuS: +w.cpuS.toFixed(1),
    machineCpuMsPerJob: +(((machineCpuSeconds() - machine0) / jobs) * 1000).toFixed(1),
  };
  log(`pool: ${(poolMs / 1000).toFixed(1)} s`);
}

// 2. NATS.
const natsOut = join(dir, 'nats');
const server = await startScriptNats();
const workers: Proc[] = [];
try {
  const hostJobs = values['host-jobs'] ? ['--host-jobs', values['host-jobs']] : [];
  const workerProfile = values['profile-workers'];
  const workerNodeArgs = workerProfile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(workerProfile)}`] : [];
  for (let i = 0; i < natsWorkers; i++)
    workers.push(cli(['worker', '--nats', server.url, '--workers', '1', ...hostJobs], workerNodeArgs));
  await Promise.all(workers.map((w) => w.waitFor(/pulling from/, 120_000)));
  log(`nats: ${jobs} jobs on ${natsWorkers} worker process(es)`);
  const t0 = performance.now();
  const machine0 = machineCpuSeconds();
  const profile = values['profile-coordinator'];
  const coordinator = cli(
    ['study', 'run', studyFile, '--out', natsOut, '--nats', server.url, '--yes', ...values['coordinator-arg']],
    profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(profile)}`] : [],
  );
  const w = await watch(coordinator, natsOut, t0);
  const natsMs = performance.now() - t0;
  const machineCpuMsPerJob = +(((machineCpuSeconds() - machine0) / jobs) * 1000).toFixed(1);
  if (w.code !== 0) throw new Error(`nats run exited ${w.code}: ${coordinator.err().slice(-2000)}`);
  const workerCpu = workers.map((p) => (cpuSeconds(p.pid) ?? 0) + childCpuSeconds(p.pid));
  const serverCpu = cpuSeconds(natsServerPid(Number(new URL(server.url).port)) ?? -1);
  summary.nats = {
    workers: natsWorkers,
    ...(values['host-jobs'] ? { hostJobs: Number(values['host-jobs']) } : {}),
    wallS: +(natsMs / 1000).toFixed(1),
    cpuS: {
      coordinator: +w.cpuS.toFixed(1),
      workersWithJobProcesses: +workerCpu.reduce((a, b) => a + b, 0).toFixed(1),
      ...(serverCpu !== undefined ? { natsServer: +serverCpu.toFixed(1) } : {}),
    },
    machineCpuMsPerJob,
    coordinatorRss: curve(w.samples),
    resultsOverTime: timeline(w.samples),
  };
  writeFileSync(join(dir, 'coordinator.log'), coordinator.out() + coordinator.err());
  if (poolMs !== undefined) summary.throughputRatio = +(poolMs / natsMs).toFixed(2);
  log(`nats: ${(natsMs / 1000).toFixed(1)} s`);
} finally {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  await server.stop();
}

// 3. Exactly once, equal to the pool, status and report times.
const lines = readFileSync(join(natsOut, 'results.jsonl'), 'utf8').split('\n').filter(Boolean);
const perId = new Map<string, number>();
for (const l of lines) {
  const id = (JSON.parse(l) as { id: string }).id;
  perId.set(id, (perId.get(id) ?? 0) + 1);
}
summary.exactlyOnce = {
  resultLines: lines.length,
  ids: perId.size,
  idsWithMoreThanOne: [...perId.values()].filter((n) => n > 1).length,
};
if (!values['skip-pool']) {
  const c = compareRuns(
    { label: 'the local pool', results: resultsById(poolOut) },
    { label: 'NATS', results: resultsById(natsOut) },
  );
  summary.equalToPool = { ...c, differences: c.differences.slice(0, 10), differenceCount: c.differences.length };
}
summary.status = await timed(['study', 'status', natsOut]);
summary.report = await timed(['study', 'report', natsOut]);
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (!values.out) rmSync(dir, { recursive: true, force: true });
