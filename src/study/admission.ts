/**
 * Memory-aware admission: jobs run side by side only while the sum of their
 * estimated peak memory (job-memory.ts) fits a budget — the `--memory` of
 * `study run` (the local pool) and of `odeness worker` (a NATS worker). One
 * concept for both transports: the pool waits for room; a NATS worker leaves
 * a job bigger than its whole budget for a bigger worker (nats-worker.ts).
 *
 * Admission is first come, first served: a job that does not fit yet is not
 * overtaken by later small ones (they would starve it). A job bigger than the
 * whole budget still runs, alone, once nothing else runs — never never.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { formatBytes } from '../engines/memory.js';

/**
 * Share of the machine's memory (or its cgroup's limit) a default budget takes: the rest is the OS and the transport.
 */
export const DEFAULT_MEMORY_SHARE = 0.8;

/** The cgroup's memory limit of this process (v2, then v1), or undefined where none is set. */
export function cgroupMemoryLimit(read = (f: string) => readFileSync(f, 'utf8')): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const text = read(file).trim();
      const n = Number(text);
      // "max" (v2) or a huge number (v1's "unlimited") mean no limit.
      if (Number.isFinite(n) && n > 0 && n < 2 ** 60) return n;
      return undefined;
    } catch {
      /* not this cgroup version */
    }
  }
  return undefined;
}

/** The default budget: DEFAULT_MEMORY_SHARE of this machine's memory, or of its cgroup's limit when lower. */
export function defaultMemoryBudget(machine = totalmem(), cgroup = cgroupMemoryLimit()): number {
  return Math.floor(DEFAULT_MEMORY_SHARE * Math.min(machine, cgroup ?? machine));
}

/** A running job's hold on the budget. */
export interface MemoryGrant {
  /** Bytes held (the job's estimate, or the whole budget for a job bigger than it). */
  readonly bytes: number;
  /** The job is bigger than the whole budget: it runs alone. */
  readonly alone: boolean;
  /** Give the bytes back (idempotent). */
  release(): void;
}

interface Waiter {
  readonly bytes: number;
  /** Asked for more than the whole budget. */
  readonly over: boolean;
  readonly grant: (g: MemoryGrant) => void;
}

/** A memory budget shared by the jobs of one pool or one worker. */
export class MemoryAdmission {
  private used = 0;
  private runningJobs = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly budget: number) {
    if (!(Number.isFinite(budget) && budget > 0))
      throw new TypeError(`MemoryAdmission: budget must be a positive number of bytes, got ${budget}`);
  }

  /** Bytes held by running jobs. */
  get inUse(): number {
    return this.used;
  }

  /** Jobs holding a grant. */
  get running(): number {
    return this.runningJobs;
  }

  /** Whether a job of `bytes` fits this budget at all (else it can only run alone). */
  fits(bytes: number): boolean {
    return bytes <= this.budget;
  }

  /** Whether a job of `bytes` would be admitted now, beside the running jobs, with nobody queued before it. */
  fitsNow(bytes: number): boolean {
    return this.queue.length === 0 && this.room(Math.min(bytes, this.budget));
  }

  /**
   * Wait until a job of `bytes` fits beside the running jobs, in arrival
   * order; a job bigger than the budget waits until nothing runs and holds
   * all of it. Rejects with an AbortError when `signal` aborts first.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<MemoryGrant> {
    const held = Math.min(Math.max(0, bytes), this.budget);
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: held,
        over: bytes > this.budget,
        grant: (g) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(g);
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortError());
        this.admit(); // the head may have been what blocked the rest
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.admit();
    });
  }

  /** One line for logs: `3.1 GiB of 8 GiB held by 2 jobs`. */
  describe(): string {
    return `${formatBytes(this.used)} of ${formatBytes(this.budget)} held by ${this.runningJobs} job(s)`;
  }

  private room(bytes: number): boolean {
    return this.runningJobs === 0 || this.used + bytes <= this.budget;
  }

  private admit(): void {
    while (this.queue.length > 0 && this.room(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      this.used += w.bytes;
      this.runningJobs++;
      let released = false;
      w.grant({
        bytes: w.bytes,
        alone: w.over,
        release: () => {
          if (released) return;
          released = true;
          this.used -= w.bytes;
          this.runningJobs--;
          this.admit();
        },
      });
    }
  }
}

function abortError(): Error {
  const e = new Error('the job was cancelled');
  e.name = 'AbortError';
  return e;
}
