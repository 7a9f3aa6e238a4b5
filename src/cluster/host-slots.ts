/**
 * Jobs at once on this machine, across every worker process of this user (`odeness worker --host-jobs N`).
 * More worker processes than cores (one per Slurm task on a shared node, or 16 on 2 cores) otherwise all
 * compute at once: measured on 2 cores, 16 processes spent 48 ms of CPU per tiny job where 2 spent 32, the
 * rest lost to switching between them. A slot is a file `slot-<i>` in a directory of this user's job temp
 * root, created exclusively and holding its owner's pid; a worker takes one before it pulls a job and gives
 * it back after the job. Files of dead owners (SIGKILL) are taken over. Two workers taking over one dead
 * owner's slot at the same moment may run one job more than N for a while, never fewer.
 */
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidAlive } from '../study/lock.js';

/**
 * A waiting worker looks again this often. Polling, not a watch of the directory: a watch woke every waiting
 * process at each job's start and end, while the lane that frees a slot mostly takes it again at once.
 */
const POLL_MS = 200;

/** A slot file without a pid this old was left half-written (its owner died between create and write). */
const HALF_WRITTEN_MS = 5_000;

export type ReleaseSlot = () => Promise<void>;

export class HostSlots {
  /** `dir`: the slot directory (made on first use); `slots`: jobs at once on this machine. */
  constructor(
    private readonly dir: string,
    private readonly slots: number,
  ) {}

  private made: Promise<unknown> | undefined;

  /** Wait for a free slot; undefined when `signal` aborts first. */
  async acquire(signal: AbortSignal): Promise<ReleaseSlot | undefined> {
    // Made once per worker, not before every job (and again if making it failed).
    this.made ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
      this.made = undefined;
      throw e;
    });
    await this.made;
    while (!signal.aborted) {
      const taken = await this.tryTake();
      if (taken) return taken;
      await pause(POLL_MS, signal);
    }
    return undefined;
  }

  private async tryTake(): Promise<ReleaseSlot | undefined> {
    for (let i = 0; i < this.slots; i++) {
      const file = join(this.dir, `slot-${i}`);
      if (await this.create(file)) return () => unlink(file).catch(() => undefined);
      if (await held(file)) continue;
      await unlink(file).catch(() => undefined); // a dead owner's slot
      if (await this.create(file)) return () => unlink(file).catch(() => undefined);
    }
    return undefined;
  }

  private async create(file: string): Promise<boolean> {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  }
}

/** Whether a slot file is held: by a live pid, or just created and not yet written (its pid follows). */
async function held(file: string): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return false; // gone meanwhile: free
  const owner = Number(text);
  if (text !== '' && Number.isInteger(owner) && owner > 0) return pidAlive(owner);
  const age = await stat(file).then(
    (s) => Date.now() - s.mtimeMs,
    () => Infinity,
  );
  return age < HALF_WRITTEN_MS;
}

/** `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
