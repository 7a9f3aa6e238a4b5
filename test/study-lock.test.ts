import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { acquireLock, breakStale, inspect, readLock } from '../src/study/lock.js';
import { ResultStore } from '../src/study/store.js';
import { ROOT, tempDir } from './helpers/procs.js';

const LOCK_MODULE = pathToFileURL(join(ROOT, 'dist/src/study/lock.js')).href;

/**
 * A separate node process that waits for the wall-clock instant `goAt`, tries
 * to take DIR's lock, prints `won` or `lost: <message>`, and holds what it got
 * until its stdin closes (so the loser's attempt overlaps the winner's hold).
 */
function attempt(dir: string, goAt: number): { outcome: Promise<string>; release(): void } {
  const script = `
    const { acquireLock } = await import(${JSON.stringify(LOCK_MODULE)});
    while (Date.now() < ${goAt}) {}
    try { await acquireLock(${JSON.stringify(dir)}); console.log('won'); } catch (e) { console.log('lost: ' + e.message); }
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const outcome = new Promise<string>((res) => {
    child.stdout.on('data', () => {
      if (out.includes('\n')) res(out.trim());
    });
  });
  return { outcome, release: () => child.stdin.end() };
}

async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.on('exit', r));
  return c.pid!;
}

async function race(trials: number, stale: boolean, t: import('ava').ExecutionContext): Promise<void> {
  const dead = await deadPid();
  for (let i = 0; i < trials; i += 10) {
    // Ten trials at a time, each its own directory; both attempts of a trial start at the same instant.
    await Promise.all(
      Array.from({ length: Math.min(10, trials - i) }, async () => {
        const dir = tempDir('odeness-lock-');
        if (stale)
          writeFileSync(
            join(dir, '.lock'),
            JSON.stringify({ pid: dead, host: hostname(), startedAt: '2026-01-01T00:00:00Z' }) + '\n',
          );
        const goAt = Date.now() + 3000;
        const both = [attempt(dir, goAt), attempt(dir, goAt)];
        const outcomes = await Promise.all(both.map((p) => p.outcome));
        both.forEach((p) => p.release());
        t.is(
          outcomes.filter((o) => o === 'won').length,
          1,
          `exactly one of two simultaneous runs takes the lock: ${outcomes.join(' / ')}`,
        );
        t.regex(outcomes.find((o) => o !== 'won') ?? '', /^lost: .* is in use by another study run \(pid \d+ on /);
        t.deepEqual(
          readdirSync(dir).filter((n) => n !== '.lock'),
          [],
          'no temporary lock files left behind',
        );
      }),
    );
  }
}

test.serial('two simultaneous lock attempts on one directory: exactly one wins, 30 times out of 30', async (t) => {
  t.timeout(120_000);
  await race(30, false, t);
});

test.serial('…and with a stale lock (a dead process) present: exactly one wins, 30 times out of 30', async (t) => {
  t.timeout(120_000);
  await race(30, true, t);
});

test('a lock is released only by its holder; a live holder is never treated as stale', async (t) => {
  const dir = tempDir('odeness-lock-');
  const lock = await acquireLock(dir);
  t.like(readLock(dir), { pid: process.pid, host: hostname() });
  await t.throwsAsync(acquireLock(dir), {
    message: new RegExp(`is in use by another study run \\(pid ${process.pid} on `),
  });
  // Another run's lock in its place (ours was broken by hand): releasing ours must not remove it.
  const other = JSON.stringify({ pid: process.pid, host: 'elsewhere', startedAt: 'x' });
  writeFileSync(join(dir, '.lock.replaced'), other);
  const { rename } = await import('node:fs/promises');
  await rename(join(dir, '.lock.replaced'), join(dir, '.lock'));
  await lock.release();
  t.is(readFileSync(join(dir, '.lock'), 'utf8'), other);
});

test('a stale lock judged by one run and broken by another: the fresh lock that took its place (often on the very same inode number) is kept', async (t) => {
  const dir = tempDir('odeness-lock-');
  const file = join(dir, '.lock');
  writeFileSync(
    file,
    JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: '2026-01-01T00:00:00Z' }) + '\n',
  );
  const judged = (await inspect(file))!; // run B judges it stale…
  const { unlink } = await import('node:fs/promises');
  await unlink(file); // …run A breaks it first…
  const lockA = await acquireLock(dir); // …and takes the lock, usually on the freed inode
  const fresh = readFileSync(file, 'utf8');
  t.log(`inode reused: ${(await inspect(file))!.ino === judged.ino}`);
  await breakStale(file, judged); // B now breaks "the stale lock"
  t.is(readFileSync(file, 'utf8'), fresh, "A's lock is still in place");
  t.like(readLock(dir), { pid: process.pid });
  t.deepEqual(
    readdirSync(dir).filter((n) => n !== '.lock'),
    [],
    'no temporary lock files left behind',
  );
  await lockA.release();
  t.false(existsSync(file));
});

test('an empty lock file just created by another run is not deleted as stale', async (t) => {
  const dir = tempDir('odeness-lock-');
  writeFileSync(join(dir, '.lock'), ''); // an older odeness between its create and its write
  await t.throwsAsync(acquireLock(dir), {
    message: /is in use by another study run \(its lock file \.lock is being written\)/,
  });
  t.true(existsSync(join(dir, '.lock')));
});

test('ResultStore takes and releases the lock; a second store on the same directory is refused', async (t) => {
  const dir = tempDir('odeness-lock-');
  const a = await ResultStore.open(dir);
  await t.throwsAsync(ResultStore.open(dir), { message: /is in use by another study run/ });
  await a.close();
  t.false(existsSync(join(dir, '.lock')));
  const b = await ResultStore.open(dir);
  await b.close();
});
