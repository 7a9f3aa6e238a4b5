/**
 * The local transport: a piscina pool of worker threads on this machine,
 * each running jobs through `workers/pool-worker` → runJobToResult →
 * executeJob. It lives with the study (it is no cluster); the NATS transport
 * in src/cluster runs its jobs in child processes instead (process-pool.ts).
 */
import { availableParallelism, hostname, totalmem } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { workerFile } from '../child-processes.js';
import { Piscina } from 'piscina';
import { describeError } from './job.js';
import { defaultMemoryBudget, MemoryAdmission } from './admission.js';
import { jobMemory } from './job-memory.js';
import { formatBytes } from '../engines/memory.js';
import type { JobSink, PendingJob, Transport } from './transport.js';
import type { Job, JobProgress, JobResult } from './types.js';
import { fieldFilesFor, type FieldFiles } from '../models/field-files.js';
import type { PoolControlMessage, PoolTask, PoolTaskMessage } from './local-messages.js';

function abortError(): Error {
  const e = new Error('the job was cancelled');
  e.name = 'AbortError';
  return e;
}

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Memory one pool thread may hold: its own tfjs-wasm heap (evaluation
 * chunks stay within the default 512 MiB budget), onnxruntime training and
 * evaluation sessions, and the job's data.
 */
export const WORKER_MEMORY_BYTES = 1.5 * 2 ** 30;

/**
 * Worker threads this machine can run: no more than its cores (jobs are
 * CPU-bound; more threads only share them) and than its memory allows at
 * WORKER_MEMORY_BYTES each. `note` says why a request was lowered.
 */
export function capThreads(
  requested: number,
  machine = { cores: availableParallelism(), memoryBytes: totalmem() },
): { threads: number; note?: string } {
  const byMemory = Math.max(1, Math.floor(machine.memoryBytes / WORKER_MEMORY_BYTES));
  const max = Math.max(1, Math.min(machine.cores, byMemory));
  if (requested <= max) return { threads: requested };
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  const why =
    machine.cores <= byMemory
      ? `${machine.cores} cores`
      : `${gib(machine.memoryBytes)} GiB of memory at ~${gib(WORKER_MEMORY_BYTES)} GiB per worker`;
  return { threads: max, note: `${requested} workers requested; using ${max} (this machine has ${why})` };
}

export interface JobPoolOptions {
  threads?: number;
  /** Prefix of the `worker` field of results: `<prefix>/t<threadId>`. */
  workerPrefix?: string;
}

export interface PoolRunHooks {
  onStart?: (worker: string) => void;
  onProgress?: (worker: string, p: JobProgress) => void;
  signal?: AbortSignal;
  /** Where the job's field file lies, by hash (models/field-files.ts). */
  fieldFiles?: FieldFiles;
}

export class JobPool {
  readonly threads: number;
  readonly workerPrefix: string;
  private readonly pool: Piscina<PoolTask, JobResult>;

  constructor(opts: JobPoolOptions = {}) {
    const threads = opts.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1)
      throw new TypeError(`JobPool: threads must be a positive integer, got ${threads}`);
    this.threads = threads;
    this.workerPrefix = opts.workerPrefix ?? `local/${hostname()}/${process.pid}`;
    this.pool = new Piscina<PoolTask, JobResult>({
      filename: workerFile('pool-worker'),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      // One job per thread at a time: jobs are CPU-bound.
      concurrentTasksPerWorker: 1,
    });
  }

  /**
   * Run one job in a worker thread. A job that throws becomes a failed result;
   * a thread that dies becomes a failed result too.
   *
   * `signal` cancels cooperatively: the thread is told to stop and the job
   * ends at its next safe point (between training iterations or phases). The
   * thread is never terminated mid-job: terminating a thread while
   * onnxruntime-node runs in it aborts the whole process (a native
   * `Napi::Error` escapes). Once `signal` has aborted this rejects with an
   * AbortError, unless the job still finished `done` (its work is kept).
   */
  async run(job: Job, attempt: number, bundleDir: string, hooks: PoolRunHooks = {}): Promise<JobResult> {
    if (hooks.signal?.aborted) throw abortError();
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: PoolTaskMessage) => {
      if (m.kind === 'start') hooks.onStart?.(m.worker);
      else hooks.onProgress?.(m.worker, m.progress);
    });
    const cancel = () => port1.postMessage({ kind: 'cancel' } satisfies PoolControlMessage);
    hooks.signal?.addEventListener('abort', cancel, { once: true });
    const started = Date.now();
    try {
      const result = await this.pool.run(
        {
          job,
          attempt,
          bundleDir,
          workerPrefix: this.workerPrefix,
          port: port2,
          ...(hooks.fieldFiles ? { fieldFiles: hooks.fieldFiles } : {}),
        },
        { transferList: [port2] },
      );
      if (hooks.signal?.aborted && result.status !== 'done') throw abortError();
      return result;
    } catch (e) {
      if (hooks.signal?.aborted) throw e;
      const end = Date.now();
      return {
        id: job.id,
        job,
        status: 'failed',
        attempt,
        worker: `${this.workerPrefix}/thread`,
        error: `worker thread died: ${describeError(e)}`,
        timings: {
          startedAt: new Date(started).toISOString(),
          finishedAt: new Date(end).toISOString(),
          ms: end - started,
        },
      };
    } finally {
      hooks.signal?.removeEventListener('abort', cancel);
      port1.close();
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

export interface LocalTransportOptions extends JobPoolOptions {
  /** Memory budget of the jobs running at once, bytes (default: defaultMemoryBudget, from the machine). */
  memoryBytes?: number;
}

/** Runs jobs on this machine, at most `threads` at a time and only while their memory estimates fit the budget. */
export class LocalTransport implements Transport {
  private readonly pool: JobPool;
  private readonly admission: MemoryAdmission;

  constructor(opts: LocalTransportOptions = {}) {
    this.pool = new JobPool(opts);
    this.admission = new MemoryAdmission(opts.memoryBytes ?? defaultMemoryBudget());
  }

  get description(): string {
    const threads = `${this.pool.threads} worker thread${this.pool.threads === 1 ? '' : 's'}`;
    return `local (${threads}, memory ${formatBytes(this.admission.budget)})`;
  }

  async run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void> {
    let next = 0;
    let toldWaiting = false;
    const lane = async () => {
      while (!signal.aborted && next < jobs.length) {
        const { job, attempt, fieldFile } = jobs[next++]!;
        const files = fieldFile !== undefined ? fieldFilesFor(job.field, fieldFile) : {};
        const needs = jobMemory(job, files);
        if (!toldWaiting && !this.admission.fitsNow(needs)) {
          toldWaiting = true;
          sink.log(
            'info',
            `job ${job.id} needs about ${formatBytes(needs)}: it waits for room in the memory budget ` +
              `(${this.admission.describe()}; --memory)`,
          );
        }
        let grant;
        try {
          grant = await this.admission.acquire(needs, signal);
        } catch (e) {
          if (signal.aborted) return;
          throw e;
        }
        try {
          if (grant.alone)
            sink.log(
              'warn',
              `job ${job.id} needs about ${formatBytes(needs)}, ` +
                `more than the whole memory budget of ` +
                `${formatBytes(this.admission.budget)} (--memory): it runs alone`,
            );
          await this.runOne(job, attempt, files, sink, signal);
        } finally {
          grant.release();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.pool.threads, jobs.length) }, lane));
  }

  /** One job in a pool thread, its result (and bundle) handed to the sink. */
  private async runOne(
    job: Job,
    attempt: number,
    files: FieldFiles,
    sink: JobSink,
    signal: AbortSignal,
  ): Promise<void> {
    const tmp = await sink.tempBundleDir(job.id);
    let result: JobResult;
    try {
      result = await this.pool.run(job, attempt, tmp, {
        onStart: (w) => sink.started(job.id, w),
        onProgress: (w, p) => sink.progress(job.id, w, p),
        signal,
        ...(Object.keys(files).length > 0 ? { fieldFiles: files } : {}),
      });
    } catch (e) {
      await sink.discard(tmp);
      if (signal.aborted) return;
      throw e;
    }
    if (result.status === 'done') await sink.finished(result, tmp);
    else {
      await sink.discard(tmp);
      await sink.finished(result);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
