import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './helpers/cli.js';
import { resultLines } from './helpers/cluster.js';
import { requirePrerequisite, spawnProc, startNats, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

// Finding 4: no telemetry, no phone-home. A worker (with its job processes) and a study coordinator run
// under `strace -f` of every socket call that can reach a peer (connect, sendto, sendmsg); every address
// they name must be loopback, and none may be a DNS lookup (port 53, or nscd / systemd-resolved sockets).
// The method: strace of the system calls (this machine's resolver is reachable, so a lookup would show).

/** Pids of the processes whose parent is `pid`. */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const TRACED = 'trace=connect,sendto,sendmsg,sendmmsg';

/** Lines of a trace that reach beyond loopback, or look a name up. */
function outbound(trace: string): string[] {
  return trace.split('\n').filter((l) => {
    if (!/\b(connect|sendto|sendmsg|sendmmsg)\(/.test(l)) return false;
    if (/htons\(53\)/.test(l)) return true; // DNS, whatever the server's address
    if (/nscd|resolve\/io\.systemd|\/run\/systemd\/resolve/.test(l)) return true;
    const inet = [
      ...l.matchAll(/sa_family=AF_INET6?, [^}]*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")/g),
    ];
    return inet.some((m) => {
      const addr = m[1] ?? m[2] ?? '';
      return !(addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.'));
    });
  });
}

test.serial(
  'finding 4: a worker, its job processes and a study coordinator open no socket beyond loopback and make no DNS lookup',
  async (t) => {
    t.timeout(300_000);
    requirePrerequisite('strace');
    const nats = await startNats();
    const dir = tempDir();
    const traces = { worker: join(dir, 'worker.trace'), coordinator: join(dir, 'coordinator.trace') };
    const strace = (file: string, args: string[]) =>
      spawnProc('strace', ['-f', '-qq', '-e', TRACED, '-o', file, process.execPath, BIN, ...args]);
    const w = strace(traces.worker, ['worker', '--nats', nats.url, '--workers', '1']);
    try {
      await w.waitFor(/pulling from/, 60_000);
      const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5, rk4:0.25]', iterations: 50 }));
      const c = strace(traces.coordinator, ['study', 'run', file, '--out', join(dir, 'out'), '--nats', nats.url]);
      const code = await c.exited;
      t.log(c.out());
      t.is(code, 0, c.err());
      t.deepEqual(
        resultLines(join(dir, 'out')).map((r) => r.status),
        ['done', 'done'],
        'the jobs ran (onnxruntime loaded in the job processes and the coordinator)',
      );
    } finally {
      // strace ignores SIGTERM while it traces: stop the worker it runs, and strace ends with it.
      for (const pid of childPids(w.pid)) process.kill(pid, 'SIGTERM');
      await w.exited;
      await nats.stop();
    }
    for (const [who, file] of Object.entries(traces)) {
      const trace = readFileSync(file, 'utf8');
      t.regex(trace, /connect\(.*127\.0\.0\.1/, `${who}: the trace sees its NATS connection`);
      t.deepEqual(outbound(trace), [], `${who}: nothing beyond loopback, no DNS`);
    }
    // The check itself sees a lookup when there is one.
    t.deepEqual(
      outbound('12 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16) = 0')
        .length,
      1,
    );
    t.deepEqual(
      outbound('12 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("13.107.5.93")}, 16) = 0')
        .length,
      1,
    );
  },
);
