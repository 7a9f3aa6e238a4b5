// Runs one study on the local pool and on a real NATS cluster (a throwaway nats-server with JetStream and
// N `odeness worker` processes) and compares what each recorded (src/study/compare.ts): the same job ids, the same
// statuses, and equal results once timings and worker names are removed (accuracies, NFE, losses, adapted steps,
// audits).
//
//   npx tsx scripts/transport-equivalence.ts examples/paper-spheres.yaml --iterations 2 --batch-size 16 --test-points 20
//   options: --workers N (pool threads and NATS workers, default 2), --out DIR (kept; default a temp dir,
//   removed on success), --json (print the summary as one JSON line). Needs the compiled CLI (npm run build)
//   and nats-server on PATH. Exit 0 when both runs agree, 1 when they differ, 2 on a usage or set-up error.
// The test suite runs it on examples/quick-spheres.yaml (test/transport-equivalence.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareRuns, resultsById, type RunCounts } from '../src/study/compare.js';
import { natsServerMissing, startScriptNats } from './lib/nats-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/odeness.js');

interface Proc {
  readonly child: ChildProcess;
  /** Resolves with the exit code (128 when killed by a signal). */
  readonly exited: Promise<number>;
  waitFor(re: RegExp, ms: number): Promise<void>;
}

/** `odeness ARGS` (the compiled CLI) in the repository root. */
function run(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: (() => void)[] = [];
  const feed = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', feed);
  child.stderr!.on('data', feed);
  const exited = new Promise<number>((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 : 0))));
  const waitFor = (re: RegExp, ms: number) =>
    new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re}:\n${out.slice(-2000)}`)), ms);
      const check = () => (re.test(out) ? (clearTimeout(timer), res()) : waiters.push(check));
      void exited.then(() => {
        clearTimeout(timer);
        if (re.test(out)) res();
        else rej(new Error(`exited before ${re}:\n${out.slice(-2000)}`));
      });
      check();
    });
  return { child, exited, waitFor };
}

/** What the script prints with --json (test/transport-equivalence.test.ts reads it). */
export interface RunSummary {
  file: string;
  overrides: string[];
  workers: number;
  exit: { local: number; nats: number | undefined };
  jobs: number;
  local: RunCounts;
  nats: RunCounts;
  differences: string[];
}

/** Run `file` on the pool and on NATS (under `dir`), then compare; returns the summary. */
async function transportEquivalence(
  file: string,
  { workers, overrides, dir, log }: { workers: number; overrides: string[]; dir: string; log: (m: string) => void },
): Promise<RunSummary> {
  const local = run([
    'study',
    'run',
    file,
    '--out',
    join(dir, 'local'),
    '--workers',
    String(workers),
    ...overrides,
    '--json',
  ]);
  const localCode = await local.exited;
  log(`local pool: exit ${localCode}`);
  const nats = await startScriptNats(dir);
  const procs: Proc[] = [];
  let natsCode: number | undefined;
  try {
    for (let i = 0; i < workers; i++) procs.push(run(['worker', '--nats', nats.url, '--workers', '1']));
    await Promise.all(procs.map((p) => p.waitFor(/pulling from/, 60_000)));
    const coordinator = run([
      'study',
      'run',
      file,
      '--out',
      join(dir, 'nats'),
      '--nats',
      nats.url,
      ...overrides,
      '--json',
    ]);
    procs.push(coordinator);
    natsCode = await coordinator.exited;
    log(`nats (${workers} workers): exit ${natsCode}`);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await nats.stop();
  }
  const c = compareRuns(
    { label: 'the local pool', results: resultsById(join(dir, 'local')) },
    { label: 'NATS', results: resultsById(join(dir, 'nats')) },
  );
  return {
    file,
    overrides,
    workers,
    exit: { local: localCode, nats: natsCode },
    jobs: c.jobs,
    local: c.counts[0],
    nats: c.counts[1],
    differences: c.differences,
  };
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const take = (flag: string) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const [, v] = args.splice(i, 2);
    return v;
  };
  const json = args.includes('--json') ? (args.splice(args.indexOf('--json'), 1), true) : false;
  const workers = Number(take('--workers') ?? 2);
  const keep = take('--out');
  const [file, ...overrides] = args;
  if (!file || !Number.isInteger(workers) || workers < 1) {
    process.stderr.write(
      'usage: npx tsx scripts/transport-equivalence.ts STUDY.yaml [--workers N] [--out DIR] [--json] ' +
        '[study run overrides…]\n',
    );
    return 2;
  }
  const missing = natsServerMissing();
  if (missing) {
    process.stderr.write(missing + '\n');
    return 2;
  }
  const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'odeness-equivalence-'));
  const t0 = Date.now();
  const s = await transportEquivalence(file, { workers, overrides, dir, log: (m) => process.stderr.write(m + '\n') });
  const agree = s.exit.local === s.exit.nats && s.differences.length === 0;
  if (json)
    process.stdout.write(JSON.stringify({ ...s, agree, ms: Date.now() - t0, out: keep ? dir : undefined }) + '\n');
  else {
    process.stdout.write(
      `${file} ${overrides.join(' ')}: ${s.jobs} job(s); local pool ${s.local.done} done, ${s.local.failed} failed; ` +
        `NATS (${workers} workers) ${s.nats.done} done, ${s.nats.failed} failed; ` +
        `${s.differences.length} difference(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
    );
    for (const d of s.differences.slice(0, 20)) process.stdout.write(`  ${d}\n`);
  }
  if (!keep && agree) rmSync(dir, { recursive: true, force: true });
  return agree ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: Error) => {
    process.stderr.write(`transport-equivalence: ${e.message}\n`);
    process.exitCode = 2;
  },
);
