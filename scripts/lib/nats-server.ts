/**
 * A throw-away nats-server with JetStream on a free local port, for the scripts that run a study over NATS
 * (transport-equivalence.ts, bench-study.ts). The tests have their own (test/helpers/procs.ts: auth
 * configurations, restarts, prerequisite lines): scripts and tests do not import each other.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ScriptNats {
  readonly url: string;
  stop(): Promise<void>;
}

const INSTALL =
  'nats-server is not on PATH; install it (apt-get install nats-server, or a release binary from ' +
  'https://github.com/nats-io/nats-server/releases)';

/** One line saying nats-server is missing and how to get it; undefined when it runs. */
export function natsServerMissing(): string | undefined {
  const r = spawnSync('nats-server', ['--version'], { stdio: 'ignore' });
  return (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? INSTALL : undefined;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => (s.destroy(), res(false)));
    s.connect(port, '127.0.0.1');
  });
}

/** Start nats-server with its JetStream store under `dir` (default a new temp dir); rejects with one line when absent. */
export async function startScriptNats(dir = mkdtempSync(join(tmpdir(), 'odeness-nats-'))): Promise<ScriptNats> {
  const port = await freePort();
  const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'jetstream')], {
    stdio: 'ignore',
  });
  let failed: Error | undefined;
  server.on('error', (e: NodeJS.ErrnoException) => (failed = e.code === 'ENOENT' ? new Error(INSTALL) : e));
  for (const until = Date.now() + 10_000; !(await portOpen(port)); ) {
    if (failed) throw failed;
    if (Date.now() > until) throw new Error(`nats-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        if (server.exitCode !== null || server.signalCode !== null) return r();
        server.once('exit', () => r());
        server.kill('SIGTERM');
      }),
  };
}
