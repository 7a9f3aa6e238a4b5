/**
 * How well `study plan` predicts a run's wall time here (issue 21: within ±35 %): for each study and transport,
 * `study plan --json` gives the idle and the loaded estimate, then the study runs as a user runs it and its wall
 * time is measured (the pool: `study run --workers W`; NATS: a throwaway nats-server and W `odeness worker
 * --workers 1` processes already pulling, then the coordinator's `study run --nats`, timed alone). The 1-minute
 * load average is recorded before and after each run: on a shared machine read the loaded estimate too.
 *
 *   npx tsx scripts/estimate-table.ts [--only quick,spheres,mnist,tiny] [--transports pool,nats] [--workers W]
 *                                     [--out DIR] [--recalibrate]
 *
 * Prints a Markdown table on stdout and one JSON line per row on stderr as it goes; each row's plan is kept in
 * DIR/STUDY-TRANSPORT.plan.json (its groups' prices, to compare with the run's results). Needs the compiled CLI
 * (npm run build) and, for NATS, nats-server on PATH. `--recalibrate` measures this machine again first (once per
 * study, on the first transport: do it on an idle machine).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startScriptNats } from './lib/nats-server.js';
import { odeness, type OdenessProcess } from './lib/odeness-process.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'quick,spheres,tiny,mnist' },
    transports: { type: 'string', default: 'pool,nats' },
    workers: { type: 'string', default: '2' },
    out: { type: 'string' },
    recalibrate: { type: 'boolean', default: false },
  },
  strict: true,
});
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer`);
const dir = values.out ? resolve(values.out) : mkdtempSync(join(tmpdir(), 'odeness-estimate-'));
mkdirSync(dir, { recursive: true });

/** 2 000 tiny grid jobs (the issue's per-job-overhead case): two step sizes × 1 000 seeds, 2 iterations each. */
function tinyStudy(): string {
  const file = join(dir, 'tiny-2000.json');
  writeFileSync(
    file,
    JSON.stringify({
      name: 'tiny-2000',
      datasets: ['spheres:dupont2019:dim=2,n=256,testN=100'],
      field: 'mlp:width=8',
      grid: ['euler:0.5', 'euler:0.25'],
      seeds: Array.from({ length: 1000 }, (_, i) => i + 1),
      iterations: 2,
      batchSize: 32,
      lr: 0.01,
      testSolvers: ['rk4:steps=2'],
    }),
  );
  return file;
}

const SMOKE = ['--iterations', '2', '--batch-size', '16'];
const STUDIES: Record<string, () => { file: string; args: string[] }> = {
  quick: () => ({ file: 'examples/quick-spheres.yaml', args: [...SMOKE, '--test-points', '20'] }),
  spheres: () => ({ file: 'examples/paper-spheres.yaml', args: [...SMOKE, '--test-points', '20'] }),
  mnist: () => ({ file: 'examples/paper-mnist.yaml', args: [...SMOKE, '--test-points', '5'] }),
  tiny: () => ({ file: tinyStudy(), args: [] }),
};

interface Row {
  study: string;
  transport: string;
  jobs: number;
  idleMs: number;
  loadedMs?: number;
  measuredMs: number;
  exit: number;
  loadBefore: number;
  loadAfter: number;
  ratio: number;
}

/** `study plan --json` of the row (its document is kept beside the run's output as OUT.plan.json). */
async function plan(file: string, args: string[], transport: string, recalibrate: boolean, keep: string) {
  const p = odeness([
    'study',
    'plan',
    file,
    ...args,
    '--workers',
    String(workers),
    '--transport',
    transport,
    '--json',
    ...(recalibrate ? ['--recalibrate'] : []),
  ]);
  if ((await p.exited) !== 0) throw new Error(`study plan ${file} failed:\n${p.err()}`);
  const doc = JSON.parse(p.out());
  writeFileSync(keep, p.out());
  const est = doc.estimate;
  if (est?.wallMs === undefined) throw new Error(`study plan ${file} gave no wall-time estimate`);
  return { jobs: doc.counts?.jobs ?? doc.jobs.length, idleMs: est.wallMs, loadedMs: est.loaded?.wallMs };
}

/** Wall time of the coordinator's run, the workers (NATS) already up. */
async function timed(p: OdenessProcess): Promise<{ ms: number; exit: number }> {
  const t0 = performance.now();
  const exit = await p.exited;
  return { ms: performance.now() - t0, exit };
}

async function runOn(transport: string, file: string, args: string[], out: string) {
  const common = ['study', 'run', file, '--out', out, ...args, '--yes', '--json'];
  if (transport === 'pool') return timed(odeness([...common, '--workers', String(workers)]));
  mkdirSync(out + '-nats', { recursive: true });
  const nats = await startScriptNats(out + '-nats');
  const procs: OdenessProcess[] = [];
  try {
    for (let i = 0; i < workers; i++) procs.push(odeness(['worker', '--nats', nats.url, '--workers', '1']));
    await Promise.all(procs.map((p) => p.waitFor(/pulling from/, 60_000)));
    const coordinator = odeness([...common, '--nats', nats.url]);
    procs.push(coordinator);
    return await timed(coordinator);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await nats.stop();
  }
}

const fmt = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
};

async function main(): Promise<void> {
  const rows: Row[] = [];
  const transports = values.transports!.split(',');
  for (const name of values.only!.split(',')) {
    const make = STUDIES[name];
    if (!make) throw new Error(`--only: unknown study "${name}"; expected some of ${Object.keys(STUDIES).join(', ')}`);
    const { file, args } = make();
    for (const [k, transport] of transports.entries()) {
      const out = join(dir, `${name}-${transport}`);
      const p = await plan(file, args, transport, values.recalibrate === true && k === 0, `${out}.plan.json`);
      rmSync(out, { recursive: true, force: true });
      const loadBefore = loadavg()[0]!;
      const r = await runOn(transport, file, args, out);
      const row: Row = {
        study: name,
        transport,
        jobs: p.jobs,
        idleMs: p.idleMs,
        ...(p.loadedMs !== undefined ? { loadedMs: p.loadedMs } : {}),
        measuredMs: r.ms,
        exit: r.exit,
        loadBefore,
        loadAfter: loadavg()[0]!,
        ratio: r.ms / p.idleMs,
      };
      rows.push(row);
      process.stderr.write(JSON.stringify(row) + '\n');
    }
  }
  const lines = [
    '| study | transport | jobs | estimate (idle) | estimate (at load) | measured | measured / idle estimate | load |',
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.study} | ${r.transport} | ${r.jobs} | ${fmt(r.idleMs)} | ${r.loadedMs ? fmt(r.loadedMs) : '–'} | ` +
        `${fmt(r.measuredMs)}${r.exit === 0 ? '' : ` (exit ${r.exit})`} | ${r.ratio.toFixed(2)} | ` +
        `${r.loadBefore.toFixed(1)} → ${r.loadAfter.toFixed(1)} |`,
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e: Error) => {
  process.stderr.write(`estimate-table: ${e.message}\n`);
  process.exitCode = 1;
});
