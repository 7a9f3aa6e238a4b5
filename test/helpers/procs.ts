/**
 * Real-process helpers for the study/cluster end-to-end tests: run the real
 * CLI (the compiled bin/odeness.js; `npm test` runs tsc first), and a
 * throwaway nats-server on a free port with its own JetStream store directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from './cli.js';
import { missingPrerequisite } from './prerequisites.mjs';

export { ROOT };

/** Removed when the test file's process exits: a suite run left ~1 000 directories in TMPDIR each time. */
const madeDirs = new Set<string>();
process.once('exit', () => {
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

export function tempDir(prefix = 'odeness-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.add(dir);
  return dir;
}

export function writeStudy(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything written so far. */
  out(): string;
  err(): string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
  /** Resolves once stdout+stderr match `re` (rejects after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2 };

export function spawnProc(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const poke = () => waiters.splice(0).forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), poke()));
  child.stderr!.on('data', (d: Buffer) => ((err += d.toString()), poke()));
  const exited = new Promise<number>((res) =>
    child.on('exit', (code, sig) => (res(code ?? 128 + (SIGNALS[sig ?? ''] ?? 0)), poke())),
  );
  // A program that cannot start (ENOENT) exits 127 like in a shell, instead of an uncaught 'error' event.
  child.on('error', (e) => ((err += `${cmd}: ${e.message}\n`), child.emit('exit', 127, null)));
  let done = false;
  void exited.then(() => (done = true));
  const waitFor = (re: RegExp, ms = 30_000) =>
    new Promise<RegExpMatchArray>((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`timed out after ${ms} ms waiting for ${re} in:\n${out}\n--- stderr ---\n${err}`)),
        ms,
      );
      const check = () => {
        const m = (out + err).match(re);
        if (m) {
          clearTimeout(timer);
          res(m);
        } else if (done) {
          clearTimeout(timer);
          rej(new Error(`process exited before ${re} appeared:\n${out}\n--- stderr ---\n${err}`));
        } else waiters.push(check);
      };
      check();
    });
  return {
    child,
    pid: child.pid!,
    out: () => out,
    err: () => err,
    exited,
    waitFor,
    kill: (signal = 'SIGTERM') => {
      if (!done) child.kill(signal);
    },
  };
}

/** `odeness …` (bin/odeness.js, the compiled CLI) as a real process in the repository root. */
export function cli(args: string[], env?: NodeJS.ProcessEnv): Proc {
  return spawnProc(process.execPath, [BIN, ...args], env ? { env } : {});
}

export async function cliResult(
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string }> {
  const p = cli(args, env);
  const code = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

/** `cliResult` plus the wall time of the whole process, start-up included. */
export async function timedCli(
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  const r = await cliResult(args, env);
  return { ...r, ms: Date.now() - t0 };
}

/**
 * The wall time of a CLI process that fails right after start-up (`study
 * status` of a missing directory): run it alongside a timed command to tell
 * "failed fast" from "waited for a timeout" on a loaded machine, where the
 * start-up alone (loading the CLI and its libraries) can take seconds.
 */
export async function startupMs(): Promise<number> {
  const r = await timedCli(['study', 'status', join(tempDir(), 'none')]);
  if (r.code !== 1) throw new Error(`start-up probe: expected exit 1, got ${r.code}: ${r.err}`);
  return r.ms;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => (s.destroy(), res(false)));
    s.connect(port, '127.0.0.1');
  });
}

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  stop(): Promise<void>;
  /** Stop and start again on the same port with the same store directory. */
  restart(downMs?: number): Promise<void>;
}

/** Fails the calling test with one line naming a missing program (nats-server, openssl) and how to get it. */
export function requirePrerequisite(command: string): void {
  const missing = missingPrerequisite(command);
  if (missing) {
    const e = new Error(missing);
    e.stack = `Error: ${missing}`; // the line says it all; a stack trace would only bury it
    throw e;
  }
}

/** nats-server with JetStream on a free port; `config` (nats-server conf text) for auth tests. */
export async function startNats(opts: { config?: string; env?: NodeJS.ProcessEnv } = {}): Promise<NatsServer> {
  requirePrerequisite('nats-server');
  const port = await freePort();
  const storeDir = tempDir('odeness-nats-');
  let args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
  if (opts.config !== undefined) args = [...args, '-c', writeStudy(storeDir, 'server.conf', opts.config)];
  let proc: Proc | undefined;
  const start = async () => {
    proc = spawnProc('nats-server', args, opts.env ? { env: opts.env } : {});
    const until = Date.now() + 10_000;
    while (!(await portOpen(port))) {
      if (Date.now() > until) throw new Error(`nats-server did not start on ${port}: ${proc.err()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await proc.waitFor(/Server is ready/, 10_000);
  };
  const stop = async () => {
    if (!proc) return;
    proc.kill('SIGTERM');
    await proc.exited;
    proc = undefined;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    restart: async (downMs = 1000) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
  };
}

/** A real dataset small enough for end-to-end study tests (256 training points, 100 test points). */
export const TINY_DATASET = 'spheres:dupont2019:dim=2,n=256,testN=100';
/** A real dataset that fails when a job loads it (FileFormatError: file not found). */
export const MISSING_DATASET = 'json:/nonexistent/fail.json';

/**
 * A study file of real tiny jobs (mlp:width=8, batch 32, one test solver).
 * `grid` is YAML for the grid key; job length is set by the solver and
 * `iterations` (about 0.4 ms per iteration for euler:0.5, 0.8 ms for
 * rk4:0.25, plus ~0.1 s per job on a warm worker thread, unloaded).
 */
export function tinyStudy(o: {
  grid: string;
  iterations: number;
  datasets?: string[];
  seeds?: number | number[];
}): string {
  const datasets = o.datasets ?? [TINY_DATASET];
  return [
    'datasets:',
    ...datasets.map((d) => `  - ${JSON.stringify(d)}`),
    'field: mlp:width=8',
    `grid: ${o.grid}`,
    ...(o.seeds !== undefined ? [`seeds: ${JSON.stringify(o.seeds)}`] : []),
    `iterations: ${o.iterations}`,
    'batchSize: 32',
    'lr: 0.01',
    'testSolvers: [rk4:0.1]',
    '',
  ].join('\n');
}

/**
 * scripts/transport-equivalence.ts as a user runs it (scripts and tests do not import each other): `study` on
 * the pool and on NATS with 2 workers under `out`, smoke-sized by `overrides`; its --json summary.
 */
export async function transportEquivalenceRun(
  t: { log(m: string): void; is(a: unknown, b: unknown, m?: string): void },
  study: string,
  out: string,
  overrides: readonly string[],
): Promise<Record<string, any>> {
  const args = ['--import=tsx', 'scripts/transport-equivalence.ts', study, '--workers', '2', '--out', out, '--json'];
  const p = spawnProc(process.execPath, [...args, ...overrides]);
  const code = await p.exited;
  t.log(p.err().trim());
  t.is(code, 0, p.out() + p.err());
  return JSON.parse(p.out().trim().split('\n').at(-1)!);
}
