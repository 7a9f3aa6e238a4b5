/**
 * The exclusive lock of a study output directory: DIR/.lock names the run
 * holding it (pid, host, start time).
 *
 * Taking it is atomic: the holder's record is written in full to a private
 * file, which is then hard-linked to `.lock` — link() fails if `.lock`
 * exists, so of any number of simultaneous runs exactly one wins, and a
 * `.lock` is never seen half-written. A lock is judged stale only when its
 * record names a process of this host that no longer runs; it is broken by
 * renaming it aside and checking that the renamed file is the very file
 * that was judged stale (same inode and same bytes: the stale file's inode
 * number is free again once broken, and the next run's fresh lock often gets
 * it) — had a fresh lock replaced it in between, that one is put back. Each
 * record carries a random token, so two records never have the same bytes.
 * A run releases only its own lock (same inode, same token).
 *
 * Breaking a stale lock happens only while holding a second lock,
 * `.lock.break`, taken the same way: with three or more racers, one of them
 * could otherwise move aside the fresh lock of a racer that had just broken
 * the stale one, and a third take the lock beside it. Under `.lock.break`
 * the breaker checks that `.lock` is still the very file judged stale, then
 * removes it; while that file exists nobody else can create `.lock`, so no
 * fresh lock can be removed. A `.lock.break` left by a process that died is
 * itself moved aside as above.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { OdenessError } from '../errors.js';

export const LOCK_FILE = '.lock';
const BREAK_FILE = '.lock.break';
/** How long a run waits for another run's `.lock.break` (held for a few file operations) before giving up. */
const BREAK_WAIT_MS = 10_000;

export interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  /** Random, so that no two lock records are byte-identical. */
  token?: string;
}

export interface DirLock {
  readonly file: string;
  /** Remove the lock if it is still this run's. */
  release(): Promise<void>;
}

/** Lock records unreadable for longer than this are left over from a crash mid-write by an older odeness. */
const UNREADABLE_STALE_MS = 10_000;
const TRIES = 8;

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as LockInfo;
    return Number.isInteger(v.pid) && typeof v.host === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

const isLive = (info: LockInfo): boolean => info.host !== hostname() || pidAlive(info.pid);

/** The lock holder if a live process on this host (or any process on another host) holds DIR. */
export function readLock(dir: string): LockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const info = parseLock(text);
  return info && isLive(info) ? info : undefined;
}

const tempName = (file: string, what: string) => `${file}.${what}.${process.pid}.${randomBytes(6).toString('hex')}`;

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Read the current lock file with its identity; undefined if there is none. Exported for the tests. */
interface Inspected {
  ino: number;
  dev: number;
  mtimeMs: number;
  text: string;
  info?: LockInfo;
}

export async function inspect(file: string): Promise<Inspected | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    const text = await fh.readFile('utf8');
    const info = parseLock(text);
    return { ino: st.ino, dev: st.dev, mtimeMs: st.mtimeMs, text, ...(info ? { info } : {}) };
  } finally {
    await fh.close();
  }
}

/**
 * Move a stale lock aside, if it is still the file judged stale; puts back a fresh lock moved by mistake. Exported for
 * the tests.
 */
export async function breakStale(file: string, judged: Inspected): Promise<void> {
  const grave = tempName(file, 'stale');
  try {
    await rename(file, grave);
  } catch (e) {
    if (code(e) === 'ENOENT') return; // someone else broke it
    throw e;
  }
  const st = await stat(grave);
  const text = await readFile(grave, 'utf8').catch(() => undefined);
  if (st.ino !== judged.ino || st.dev !== judged.dev || text !== judged.text) {
    // A fresh lock took the stale one's place before the rename: restore it (unless yet another run got in).
    await link(grave, file).catch(() => undefined);
  }
  await unlink(grave).catch(() => undefined);
}

const sameFile = (a: Inspected | undefined, b: Pick<Inspected, 'ino' | 'dev' | 'text'>) =>
  !!a && a.ino === b.ino && a.dev === b.dev && a.text === b.text;

/** Take `file` by hard-linking a private, fully written record to it; undefined when it exists. */
async function tryLink(file: string, record: string): Promise<{ ino: number; dev: number } | undefined> {
  const mine = tempName(file, 'new');
  await writeFile(mine, record, { flag: 'wx' });
  try {
    await link(mine, file);
    const { ino, dev } = await stat(mine);
    return { ino, dev };
  } catch (e) {
    if (code(e) !== 'EEXIST') throw e;
    return undefined;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/** Remove the stale lock `judged` if `.lock` is still that file, holding `.lock.break` meanwhile. */
async function removeStale(dir: string, file: string, judged: Inspected): Promise<void> {
  const breaker = join(dir, BREAK_FILE);
  const me: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const record = JSON.stringify(me) + '\n';
  const until = Date.now() + BREAK_WAIT_MS;
  let held: { ino: number; dev: number } | undefined;
  while (!(held = await tryLink(breaker, record))) {
    const other = await inspect(breaker);
    const dead = other && (other.info ? !isLive(other.info) : Date.now() - other.mtimeMs > UNREADABLE_STALE_MS);
    if (dead) await breakStale(breaker, other);
    if (Date.now() > until) {
      throw new OdenessError(
        `${dir}: another run keeps ${BREAK_FILE} (breaking a stale lock); remove it if no study run is running`,
      );
    }
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
  }
  try {
    if (sameFile(await inspect(file), judged)) await unlink(file).catch(() => undefined);
  } finally {
    if (sameFile(await inspect(breaker).catch(() => undefined), { ...held, text: record }))
      await unlink(breaker).catch(() => undefined);
  }
}

export async function acquireLock(dir: string): Promise<DirLock> {
  const file = join(dir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const record = JSON.stringify(info) + '\n';
  for (let tries = 0; tries < TRIES; tries++) {
    const got = await tryLink(file, record);
    if (got) {
      return {
        file,
        release: async () => {
          if (sameFile(await inspect(file).catch(() => undefined), { ...got, text: record }))
            await unlink(file).catch(() => undefined);
        },
      };
    }
    const holder = await inspect(file);
    if (!holder) continue; // released meanwhile
    if (holder.info ? isLive(holder.info) : Date.now() - holder.mtimeMs < UNREADABLE_STALE_MS) {
      const h = holder.info;
      throw new OdenessError(
        h
          ? `${dir} is in use by another study run (pid ${h.pid} on ${h.host}, since ${h.startedAt}); wait for it to ` +
              `finish or stop it`
          : `${dir} is in use by another study run (its lock file ${LOCK_FILE} is being written); wait for it to ` +
              `finish or stop it`,
      );
    }
    await removeStale(dir, file, holder);
  }
  throw new OdenessError(`${dir}: could not take the lock file ${LOCK_FILE}`);
}
