/**
 * One delivery of a job that a NATS worker runs (nats-worker.ts decides which
 * deliveries get here): its temp dir, its job process (process-pool.ts), the
 * heartbeat that keeps the delivery while the job reports progress, the
 * bundle upload under a per-run name (a small bundle rides inside the result
 * message instead), the result offer (compare-and-set: the
 * first done wins) and the ack. A frozen run (no progress for twice
 * --stall-timeout plus 5 s: a stopped job process) whose job another run has
 * finished is stopped, its slot freed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { describeError } from '../study/job.js';
import { pidAlive } from '../study/lock.js';
import type { Job, JobProgress, JobResult } from '../study/types.js';
import { packBundle } from './codec.js';
import { PROTOCOL_VERSION, type EventMessage, type ResultMessage } from './protocol.js';
import { retrying, type ClusterHandles } from './nats-resources.js';
import { standingResult } from './nats-results.js';
import { isStorageFull } from './storage-full.js';
import type { ProcessPool } from './process-pool.js';
import type { FieldFiles } from '../models/field-files.js';

/** Temp dirs of jobs: `odeness-job-<worker pid>-XXXXXX`, so a later worker can tell a crashed worker's leftovers. */
export const JOB_TMP_PREFIX = 'odeness-job-';
const STALE_NAME = new RegExp(`^${JOB_TMP_PREFIX}(\\d+)-`);
const PROGRESS_EVERY_MS = 500;
/** Room kept in a result message beside an inline bundle, under the server's max payload. */
const PAYLOAD_HEADROOM = 64 * 1024;
/** Most time between two events of a running job (a bare progress event when it reports none). */
const ALIVE_EVERY_MS = 5_000;
/** Least time between two looks for dead workers' temp dirs (one look per worker and second at most). */
const STALE_SCAN_EVERY_MS = 1_000;

/** Linux's memory file system, where job scratch goes by default (see jobScratch). */
const MEMORY_SCRATCH = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
/** Least free room on it for job scratch: a container's /dev/shm is often 64 MB, too small for big bundles. */
const MEMORY_SCRATCH_MIN_FREE = 2 ** 30;

/** Where a worker's job scratch lives, and what chose it (for messages). */
export interface JobScratch {
  readonly base: string;
  readonly why: string;
}

/**
 * Where job temp dirs go: TMPDIR when it is set (the operator's choice), else Linux's memory file system when it
 * has a GiB free, else the system's temp dir. A job's bundle is written, read back, packed and removed once per job:
 * on this machine's disk (ext4, online discard) that churn cost a NATS worker more than its tiny job, and 3 000 tiny
 * jobs on 16 workers ran 6–14 % faster from /dev/shm.
 */
export function jobScratch(env: NodeJS.ProcessEnv = process.env): JobScratch {
  const system = { base: tmpdir(), why: 'TMPDIR' };
  if (env['TMPDIR']) return system;
  try {
    const fs = statfsSync(MEMORY_SCRATCH);
    accessSync(MEMORY_SCRATCH, constants.W_OK);
    if (fs.type === TMPFS_MAGIC && fs.bavail * fs.bsize >= MEMORY_SCRATCH_MIN_FREE)
      return { base: MEMORY_SCRATCH, why: 'memory file system; set TMPDIR for another' };
  } catch {
    /* no /dev/shm here (not Linux, or not mounted): the system's temp dir */
  }
  return system;
}

/**
 * Where this user's job temp dirs live: a directory of their own under TMPDIR, so a look for dead workers'
 * leftovers reads job dirs only. Looking through TMPDIR itself (10 000 entries on this shared machine) cost
 * ~40 ms a look, once a second per worker: with 16 workers on 2 cores, more CPU than the workers' own jobs.
 */
export function jobTmpRoot(tmp = tmpdir()): string {
  return join(tmp, `odeness-jobs-${process.getuid?.() ?? 'user'}`);
}

/** Create the job temp root (owner only); refuse one that is a link or another user's (a planted directory). */
export async function ensureJobTmpRoot(root = jobTmpRoot()): Promise<string> {
  // Not recursive: TMPDIR itself must exist (a mistyped TMPDIR is reported, not created).
  await mkdir(root, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const st = await lstat(root);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid))
    throw new Error(`${root} is not a directory of this user (uid ${uid}); remove it or set TMPDIR elsewhere`);
  return root;
}

/** Remove job temp dirs left by workers of this host that no longer run (SIGKILL, power loss). */
export async function cleanStaleJobDirs(root = jobTmpRoot()): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return removed; // no root yet: no worker of this user ran a job here
  }
  for (const name of names) {
    const m = STALE_NAME.exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    await rm(join(root, name), { recursive: true, force: true }).then(
      () => removed.push(join(root, name)),
      () => undefined,
    );
  }
  return removed;
}

/**
 * A worker's job temp dirs: the root checked once (and again after a failure, e.g. TMPDIR cleaned under a
 * running worker), and `cleanStaleJobDirs` before a job at most once per STALE_SCAN_EVERY_MS.
 */
export class JobDirs {
  private lastAt = -Infinity;
  private checkedRoot: Promise<string> | undefined;
  readonly root: string;

  constructor(readonly scratch: JobScratch = jobScratch()) {
    this.root = jobTmpRoot(scratch.base);
  }

  async beforeJob(): Promise<string[]> {
    if (Date.now() - this.lastAt < STALE_SCAN_EVERY_MS) return [];
    this.lastAt = Date.now();
    return cleanStaleJobDirs(this.root);
  }

  /** A fresh temp dir for one job under the checked root. */
  async jobDir(): Promise<string> {
    for (let tries = 1; ; tries++) {
      this.checkedRoot ??= ensureJobTmpRoot(this.root);
      try {
        return mkdtempSync(join(await this.checkedRoot, `${JOB_TMP_PREFIX}${process.pid}-`));
      } catch (e) {
        this.checkedRoot = undefined;
        if (tries >= 2) throw e;
      }
    }
  }
}

/** Looks (at most every 2 s) whether a stalled run's job has a done result from another run. */
class SupersededCheck {
  superseded = false;
  private lastAt = 0;
  private busy = false;

  constructor(private readonly doneElsewhere: () => Promise<boolean>) {}

  async check(onSuperseded: () => void): Promise<void> {
    if (this.superseded || this.busy || Date.now() - this.lastAt < 2_000) return;
    this.busy = true;
    try {
      if (await this.doneElsewhere()) {
        this.superseded = true;
        onSuperseded();
      }
    } finally {
      this.lastAt = Date.now();
      this.busy = false;
    }
  }
}

/** Retry options of the worker's NATS calls (nats-resources.ts `retrying`). */
export interface RetryOptions {
  signal: AbortSignal;
  forMs: number;
  onRetry: (e: unknown) => void;
}

/** What every run of one worker shares (the worker, nats-worker.ts). */
export interface RunContext {
  readonly h: ClusterHandles;
  readonly pool: ProcessPool;
  /** The worker's name; each run adds 4 hex digits of its own. */
  readonly prefix: string;
  /** Aborted when the worker stops: the job process is killed and the job handed back. */
  readonly signal: AbortSignal;
  readonly jobTimeoutMs: number;
  readonly stallTimeoutMs: number;
  /** Quiet this long, a run counts as frozen (see the file's comment). */
  readonly frozenAfterMs: number;
  readonly keep: RetryOptions;
  readonly jobDirs: JobDirs;
  /** Bundles up to this size ride inside the result message instead of the object store. */
  readonly inlineBundleBytes: number;
  log(level: 'info' | 'warn', message: string): void;
  publishEvent(ev: Omit<EventMessage, 'v'>): void;
  /** Store a result (sealed with the job key, if any): 'kept' when another run's result stays. */
  offer(msg: ResultMessage): Promise<'stored' | 'kept'>;
  /** A failed result of a job this worker did not run to the end. */
  failure(job: Job, attempt: number, error: string): JobResult;
  /** The coordinator's current ack wait, ms. */
  ackWaitMs(): Promise<number>;
}

/** How a run ended: with a stored result of this status, or handed back unfinished. */
export type RunEnd = JobResult['status'] | 'returned';

/** One delivery of a job, run to a stored result (or handed back). */
export class JobRun {
  private readonly run = randomBytes(8).toString('hex');
  private readonly worker: string;
  private readonly abort = new AbortController();
  private lastProgress = Date.now();
  private lastEvent = 0;
  /** Progress held back by the throttle, sent when its time comes unless the job ends first. */
  private heldProgress: { progress: JobProgress; timer: NodeJS.Timeout } | undefined;
  private bundleDir: string | undefined;
  /** A stalled run (a frozen process) whose job another worker has finished gives its slot back. */
  private readonly finishedElsewhere: SupersededCheck;

  constructor(
    private readonly ctx: RunContext,
    private readonly m: JsMsg,
    private readonly job: Job,
    private readonly attempt: number,
    private readonly deliveries: number,
    /** The job's field file, fetched and verified by this worker (field-store.ts), by hash. */
    private readonly fieldFiles: FieldFiles = {},
  ) {
    this.worker = `${ctx.prefix}/${this.run.slice(0, 4)}`;
    this.finishedElsewhere = new SupersededCheck(async () => {
      const stored = standingResult(await ctx.h.kv.get(job.id).catch(() => null), job, attempt);
      return stored?.result.status === 'done';
    });
  }

  async execute(): Promise<RunEnd> {
    const onStop = () => this.abort.abort();
    this.ctx.signal.addEventListener('abort', onStop, { once: true });
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      heartbeat = await this.startHeartbeat();
      this.ctx.publishEvent({ kind: 'start', id: this.job.id, worker: this.worker });
      this.lastEvent = Date.now();
      const result = await this.runJob();
      if (!result) return this.handBack();
      await this.deliver(result);
      return result.status;
    } finally {
      clearInterval(heartbeat);
      clearTimeout(this.heldProgress?.timer);
      this.ctx.signal.removeEventListener('abort', onStop);
      // Synchronous, like packBundle: see there.
      if (this.bundleDir) rmSync(this.bundleDir, { recursive: true, force: true });
    }
  }

  /** In-progress acks while the job reports progress; a frozen run is stopped once another run has finished. */
  private async startHeartbeat(): Promise<NodeJS.Timeout> {
    const { stallTimeoutMs, frozenAfterMs } = this.ctx;
    // Frequent enough to survive a coordinator shortening the ack wait mid-job; an in-progress ack is one small
    // publish.
    const heartbeatMs = Math.max(200, Math.min(1000, (await this.ctx.ackWaitMs()) / 3));
    return setInterval(() => {
      const quietMs = Date.now() - this.lastProgress;
      if (quietMs < stallTimeoutMs) this.m.working();
      // A sign of life between progress reports (evaluation and audits report none): the coordinator must not
      // take this worker for gone and report the jobs it left for a bigger worker as refused by all.
      if (quietMs < stallTimeoutMs && Date.now() - this.lastEvent >= ALIVE_EVERY_MS) {
        this.lastEvent = Date.now();
        this.ctx.publishEvent({ kind: 'progress', id: this.job.id, worker: this.worker });
      }
      if (quietMs < stallTimeoutMs) return;
      if (quietMs >= frozenAfterMs) void this.finishedElsewhere.check(() => this.abort.abort());
    }, heartbeatMs);
  }

  /** The job's result, or undefined when it was stopped (the worker stops, or the run froze). */
  private async runJob(): Promise<JobResult | undefined> {
    const { job, attempt, worker, ctx } = this;
    for (const path of await ctx.jobDirs.beforeJob()) {
      ctx.log('info', `removed ${path}, left by a worker that no longer runs`);
    }
    try {
      this.bundleDir = await ctx.jobDirs.jobDir();
    } catch (e) {
      const { base, why: chosen } = ctx.jobDirs.scratch;
      const why = `the worker cannot create the job's temporary directory in ${base} (${chosen})`;
      return ctx.failure(job, attempt, `${why}: ${describeError(e)}`);
    }
    return ctx.pool
      .run(job, attempt, this.bundleDir, worker, {
        signal: this.abort.signal,
        deadlineMs: ctx.jobTimeoutMs,
        fieldFiles: this.fieldFiles,
        // The start event went out when the run began (execute): a second one per job is only traffic.
        onStart: () => (this.lastProgress = Date.now()),
        onProgress: (progress: JobProgress) => this.progressed(progress),
      })
      .catch((e: Error) => {
        if (e.name === 'AbortError') return undefined;
        return ctx.failure(job, attempt, `job process failed: ${describeError(e)}`);
      });
  }

  /**
   * At most one progress event per PROGRESS_EVERY_MS; the last report held back is sent when its time comes
   * (so the end of training still shows), unless the job has ended by then: a tiny job sends only its start.
   */
  private progressed(progress: JobProgress): void {
    const now = Date.now();
    this.lastProgress = now;
    const waitMs = this.lastEvent + PROGRESS_EVERY_MS - now;
    if (waitMs <= 0) return this.sendProgress(progress);
    if (this.heldProgress) this.heldProgress.progress = progress;
    else this.heldProgress = { progress, timer: setTimeout(() => this.sendProgress(), waitMs) };
  }

  private sendProgress(progress = this.heldProgress?.progress): void {
    clearTimeout(this.heldProgress?.timer);
    this.heldProgress = undefined;
    if (!progress) return;
    this.lastEvent = Date.now();
    this.ctx.publishEvent({ kind: 'progress', id: this.job.id, worker: this.worker, progress });
  }

  /** A stopped run: its job goes back to the queue, unless another run has finished it. */
  private handBack(): RunEnd {
    const quiet = `${Math.round(this.ctx.frozenAfterMs / 1000)} s`;
    if (this.finishedElsewhere.superseded) {
      const what = 'finished by another run: its job process is stopped, the slot freed';
      this.ctx.log('info', `${this.job.id}: no progress here for ${quiet} and ${what}`);
    } else this.m.nak();
    return 'returned';
  }

  /** Upload the bundle of a done job, offer the result, then ack. */
  private async deliver(result: JobResult): Promise<void> {
    const { job, ctx } = this;
    const keepStoring = this.storingRetries();
    const bundle = result.status === 'done' ? `${job.id}.${this.run}` : undefined;
    const stored = bundle ? await this.uploadBundle(bundle, keepStoring) : {};
    const outcome = await retrying(
      `store result of ${job.id}`,
      () => ctx.offer({ v: PROTOCOL_VERSION, result, ...(bundle ? { bundle, ...stored } : {}) }),
      keepStoring,
    );
    const error = result.error ? `: ${result.error}` : '';
    ctx.log('info', `${job.id} ${result.status} in ${result.timings.ms} ms (delivery ${this.deliveries})${error}`);
    if (outcome === 'kept') {
      ctx.log('info', `${job.id}: another run's result was stored first; this run's is dropped`);
      if (stored.bundleNuid) await ctx.h.os.delete(bundle!).catch(() => undefined);
    }
    // A plain ack, no confirmation round trip: if it is lost, the redelivery finds the stored result and is skipped.
    try {
      this.m.ack();
    } catch {
      /* a closed connection: the same as a lost ack */
    }
  }

  /** A full JetStream store: the job is kept (not acked) while this retries, and the coordinator is told. */
  private storingRetries(): RetryOptions {
    const { keep } = this.ctx;
    let toldFull = false;
    return {
      ...keep,
      onRetry: (e: unknown) => {
        keep.onRetry(e);
        if (!toldFull && isStorageFull(e))
          this.ctx.publishEvent({ kind: 'storage', id: this.job.id, worker: this.worker, error: (e as Error).message });
        toldFull ||= isStorageFull(e);
      },
    };
  }

  /** Upload the bundle under `name`, or carry a small one in the result message (no object-store round trips). */
  private async uploadBundle(
    name: string,
    retries: RetryOptions,
  ): Promise<Pick<ResultMessage, 'bundleDigest' | 'bundleBytes' | 'bundleNuid' | 'bundleData'>> {
    const bytes = packBundle(this.bundleDir!);
    const bundleDigest = createHash('sha256').update(bytes).digest('hex');
    // Inline only with room to spare under the server's payload limit (the rest of the result is a few KiB).
    const room = (this.ctx.h.nc.info?.max_payload ?? 0) - PAYLOAD_HEADROOM;
    if (bytes.length <= Math.min(this.ctx.inlineBundleBytes, room))
      return { bundleDigest, bundleBytes: bytes.length, bundleData: bytes };
    const info = await retrying(
      `upload bundle of ${this.job.id}`,
      () => this.ctx.h.os.putBlob({ name }, bytes),
      retries,
    );
    return { bundleDigest, bundleBytes: bytes.length, bundleNuid: info.nuid };
  }
}
