/**
 * `odeness ARGS` (the compiled CLI, bin/odeness.js) as a child process in the repository root, for the
 * scripts that drive whole runs (transport-equivalence.ts, bench-scale.ts). The tests have their own
 * (test/helpers/procs.ts): scripts and tests do not import each other.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin/odeness.js');

export interface OdenessProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (128 when killed by a signal). */
  readonly exited: Promise<number>;
  /** Everything written so far, stdout and stderr apart. */
  out(): string;
  err(): string;
  /** Resolves once stdout+stderr match `re`; rejects after `ms` or when the process exits first. */
  waitFor(re: RegExp, ms: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

/** `nodeArgs` go to node itself, before the CLI (e.g. `--cpu-prof` to profile one process of a run). */
export function odeness(args: string[], nodeArgs: string[] = []): OdenessProcess {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let both = '';
  const waiters: (() => void)[] = [];
  const feed = (into: 'out' | 'err') => (d: Buffer) => {
    const s = d.toString();
    if (into === 'out') out += s;
    else err += s;
    both += s;
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', feed('out'));
  child.stderr!.on('data', feed('err'));
  let done = false;
  const exited = new Promise<number>((res) =>
    child.on('exit', (code, signal) => ((done = true), res(code ?? (signal ? 128 : 0)))),
  );
  const waitFor = (re: RegExp, ms: number) =>
    new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re}:\n${both.slice(-2000)}`)), ms);
      const check = () => (re.test(both) ? (clearTimeout(timer), res()) : waiters.push(check));
      void exited.then(() => {
        clearTimeout(timer);
        if (re.test(both)) res();
        else rej(new Error(`exited before ${re}:\n${both.slice(-2000)}`));
      });
      check();
    });
  return {
    child,
    pid: child.pid!,
    exited,
    out: () => out,
    err: () => err,
    waitFor,
    kill: (signal = 'SIGTERM') => {
      if (!done) child.kill(signal);
    },
  };
}
