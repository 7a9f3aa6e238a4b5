/**
 * `odeness worker`: pull jobs from the work queue and run each in its own
 * child process (process-pool.ts: a poison job cannot take other jobs down).
 * Per delivery:
 *   1. decode and check the message as untrusted input (job-checks.ts): a
 *      job no worker could run (bounds, files) with a genuine id becomes a
 *      failed result; one refused for this worker's own reason (another
 *      protocol version or job key) is left for another worker and its
 *      coordinator told (refusals.ts); anything else is terminated and logged;
 *   2. past its max deliveries (JetStream's delivery count, from the
 *      message's own metadata, less the deliveries that workers refused,
 *      heard on `odeness.refusals.*`) → a failed result, marked `exhausted`;
 *   3. a redelivery already answered in the result bucket → ack and skip;
 *   4. run it (nats-job-run.ts); the delivery is extended (in-progress ack)
 *      only while the job reports progress, so a stuck job is redelivered;
 *      every failure from here on, start-up ones included (no temp dir), is a
 *      failed result;
 *   5. upload the bundle under a per-run name (or carry a small one in the
 *      result message), offer the result
 *      (compare-and-set: the first done wins), then ack.
 * Job temp dirs of workers that no longer run are removed before each job.
 * A worker that dies before the ack leaves the job to be redelivered after
 * the ack wait; one that is stopped (SIGTERM) kills its jobs' processes and
 * hands them back at once (nak). While a slot is idle the worker says it is
 * alive (refusals.ts), so a coordinator waits for it with jobs others refuse.
 */
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Consumer, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { OdenessError } from '../errors.js';
import { JOB_ID_PATTERN } from '../formats/index.js';
import type { Job, JobResult } from '../study/types.js';
import type { Device } from '../formats/common.js';
import { decodeJobMessage, encode, MessageError, unpackRaw } from './codec.js';
import {
  checkDatasetFiles,
  checkJobBounds,
  checkJobId,
  checkJobMemory,
  checkJobSignature,
  JobRefused,
  type DataRootOptions,
} from './job-checks.js';
import {
  MAX_INLINE_BUNDLE_BYTES,
  PROTOCOL_VERSION,
  type EventMessage,
  type JobMessage,
  type ResultMessage,
} from './protocol.js';
import { connectNats, describeNats, maskUrl, type NatsConnectOptions } from './nats-connect.js';
import {
  CONSUMER,
  DEFAULT_ACK_WAIT_MS,
  EVENT_SUBJECT_PREFIX,
  isPermissionError,
  maxDeliverOf,
  openCluster,
  retrying,
  STREAM,
  type ClusterHandles,
} from './nats-resources.js';
import { standingResult, storeResult } from './nats-results.js';
import { resultAuthentic, sealAlive, sealEvent, sealResult } from './result-auth.js';
import { defaultThreads } from '../study/local.js';
import { ProcessPool } from './process-pool.js';
import { HostSlots } from './host-slots.js';
import { defaultMemoryBudget, MemoryAdmission } from '../study/admission.js';
import { formatBytes } from '../engines/memory.js';
import { admitDelivery } from './admission.js';
import {
  ALIVE_EVERY_MS,
  ALIVE_SUBJECT,
  decodeRefusal,
  encodeAlive,
  encodeRefusal,
  REFUSAL_MAX_DELIVERIES,
  REFUSAL_SUBJECT_PREFIX,
  refusalDelayMs,
  RefusedDeliveries,
  type RefusalKind,
} from './refusals.js';
import {
  cleanStaleJobDirs,
  JOB_TMP_PREFIX,
  jobTmpRoot,
  JobRun,
  JobDirs,
  type RetryOptions,
  type RunContext,
} from './nats-job-run.js';
import { fetchFieldFile } from './field-store.js';
import { isStorageFull, storageFullError } from './storage-full.js';

export { cleanStaleJobDirs, jobTmpRoot } from './nats-job-run.js';

export interface WorkerOptions extends NatsConnectOptions, DataRootOptions {
  /** Jobs run at once, one child process each (default: one per core). */
  concurrency?: number;
  /** At most this many jobs at once across this user's workers on this machine (0 or absent: no such limit). */
  hostJobs?: number;
  /** Abort to stop: running jobs are killed and handed back to the queue (nak), and the worker exits. */
  signal?: AbortSignal;
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Called once the worker is connected and pulling. */
  onReady?: () => void;
  /** Wall-clock limit of one job (default 6 h): past it the job is stopped and recorded as failed. */
  jobTimeoutMs?: number;
  /**
   * A job that reports no progress for this long is no longer kept alive (default 120 s): it is redelivered
   * after the ack wait.
   */
  stallTimeoutMs?: number;
  /** Run only jobs signed with this key (HMAC-SHA256; the coordinator's --job-key-file). */
  jobKey?: Buffer;
  /** Heap limit of each job process, MB. */
  jobMemoryMb?: number;
  /** Memory budget of the jobs running at once, bytes (study/admission.ts; default: from the machine). */
  memoryBytes?: number;
  /** The device this worker's sessions run on (default cpu): it takes CPU jobs and jobs requiring this device. */
  device?: Device;
  /**
   * Bundles up to this many bytes ride inside the result message, sparing the object store's round trips per job
   * (default DEFAULT_INLINE_BUNDLE_BYTES; 0: every bundle goes through the object store).
   */
  inlineBundleBytes?: number;
}

export const DEFAULT_INLINE_BUNDLE_BYTES = 64 * 1024;

export interface WorkerSummary {
  /** Jobs this worker ran to a result (done or failed). */
  ran: number;
  done: number;
  failed: number;
  /** Deliveries skipped because the bucket already had their result. */
  skipped: number;
  /** Jobs handed back unfinished at shutdown. */
  returned: number;
  /** Messages refused (unreadable, unsigned, forged, out of bounds). */
  refused: number;
  /** Deliveries of jobs requiring another device, handed back for a worker that has it. */
  passed: number;
}

/** How long a job for another device waits before it is delivered again (to some worker). */
export const OTHER_DEVICE_DELAY_MS = 2000;

/** A worker on `device` runs CPU jobs and jobs requiring its own device. */
export function canRunJob(device: Device, job: Pick<Job, 'device'>): boolean {
  return job.device === undefined || job.device === device;
}

export const DEFAULT_JOB_TIMEOUT_MS = 6 * 3600_000;
export const DEFAULT_STALL_TIMEOUT_MS = 120_000;
/**
 * A pull stands this long (a stopping worker cancels it): the server serves the oldest pull first, so a job that
 * a worker just handed back (a refusal, then that worker's fresh pull) mostly goes to a worker idle since before
 * it (longer than the refusal's nak delay, at most 5 s for memory), not back to the refuser. With 2 s pulls, a
 * refused job bounced between the refuser's lanes while a fitting worker sat idle.
 */
const PULL_EXPIRES_MS = 10_000;

/** The worker's fixed settings, from its options. */
interface WorkerSettings {
  concurrency: number;
  log: (level: 'info' | 'warn', message: string) => void;
  signal: AbortSignal;
  where: string;
  device: Device;
  /** The worker's name in results and events. */
  prefix: string;
  jobTimeoutMs: number;
  stallTimeoutMs: number;
  frozenAfterMs: number;
}

function workerSettings(opts: WorkerOptions): WorkerSettings {
  const concurrency = opts.concurrency ?? defaultThreads();
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new OdenessError(`--concurrency must be a positive integer, got ${String(opts.concurrency)}`);
  const device = opts.device ?? 'cpu';
  const stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  return {
    concurrency,
    log: opts.log ?? ((level, message) => process.stderr.write(`[worker ${level}] ${message}\n`)),
    signal: opts.signal ?? new AbortController().signal,
    where: describeNats(opts),
    device,
    // Workers advertise their device in their name (results and events carry it); CPU workers keep the plain name.
    prefix: `nats/${hostname()}/${process.pid}${device === 'cpu' ? '' : `@${device}`}`,
    jobTimeoutMs: opts.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS,
    stallTimeoutMs,
    // Quiet this long, a run counts as frozen: once another run has finished its job, it is stopped (a run that
    // only stalls for a while finishes, and the first done wins).
    frozenAfterMs: 2 * stallTimeoutMs + 5_000,
  };
}

/** Connect and bind to the work queue; a least-privilege worker waits for a coordinator to create it. */
async function joinCluster(
  opts: WorkerOptions,
  s: WorkerSettings,
): Promise<{ nc: NatsConnection; h: ClusterHandles; consumer: Consumer }> {
  const nc = await connectNats({ ...opts, name: opts.name ?? `odeness worker ${hostname()}/${process.pid}` });
  try {
    for (let warned = false; ; ) {
      try {
        const h = await openCluster(nc, s.where);
        for (const notice of h.notices) s.log('warn', notice);
        return { nc, h, consumer: await h.js.consumers.get(STREAM, CONSUMER) };
      } catch (e) {
        // A least-privilege worker cannot create the stream and buckets: the first coordinator does.
        if (!isPermissionError(e) || s.signal.aborted) throw e;
        if (!warned) {
          const why = `this worker may not: ${(e as Error).message}`;
          s.log('info', `waiting for a coordinator to create the cluster's stream and buckets (${why})`);
        }
        warned = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } catch (e) {
    await nc.close().catch(() => undefined);
    // Not even the smallest buckets fit the server's storage.
    if (isStorageFull(e))
      throw await storageFullError(undefined, s.where, `creating the buckets: ${(e as Error).message}`);
    throw e;
  }
}

export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const settings = workerSettings(opts);
  const { nc, h, consumer } = await joinCluster(opts, settings);
  const jobDirs = new JobDirs();
  settings.log('info', `job scratch in ${jobDirs.root} (${jobDirs.scratch.why})`);
  for (const path of await cleanStaleJobDirs(jobDirs.root))
    settings.log('info', `removed ${path}, left by a worker that no longer runs`);
  return new NatsWorker(opts, settings, nc, h, jobDirs).run(consumer);
}

/** The coordinator's ack wait and max deliver, kept on the consumer: re-read at most every 5 s. */
class ConsumerSettings {
  ackWaitMs = DEFAULT_ACK_WAIT_MS;
  /** Deliveries before a job is given up: the coordinator's configuration (on the consumer), never the message's. */
  maxDeliver = maxDeliverOf(undefined);
  private readAt = 0;

  constructor(private readonly jsm: JetStreamManager) {}

  /** `now`: read even if read lately (a redelivery is judged by the coordinator's current max deliver). */
  async refresh(now = false): Promise<number> {
    if (now || Date.now() - this.readAt > 5_000) {
      const info = await this.jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
      if (info?.config.ack_wait) {
        this.ackWaitMs = info.config.ack_wait / 1e6;
        this.maxDeliver = maxDeliverOf(info.config);
        this.readAt = Date.now();
      }
    }
    return this.ackWaitMs;
  }
}

/** A connected worker: its lanes pull deliveries and sort each into refused, skipped, passed on or run. */
class NatsWorker implements RunContext {
  readonly pool: ProcessPool;
  /** --host-jobs: jobs at once across this user's workers on this machine (host-slots.ts). */
  private readonly hostSlots: HostSlots | undefined;
  readonly summary: WorkerSummary = { ran: 0, done: 0, failed: 0, skipped: 0, returned: 0, refused: 0, passed: 0 };
  readonly keep: RetryOptions;
  readonly inlineBundleBytes: number;
  readonly prefix: string;
  readonly signal: AbortSignal;
  readonly jobTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly frozenAfterMs: number;
  readonly log: WorkerSettings['log'];
  /** Field files fetched for this worker's jobs; a crashed worker's are removed by cleanStaleJobDirs. */
  private readonly fieldCache: string;
  /** The coordinator owns the ack wait; re-read now and then so heartbeats keep up with changes. */
  private readonly consumerSettings: ConsumerSettings;
  /** With a job key, results are sealed (result-auth.ts) and only sealed stored results count as answers. */
  private readonly authentic: ((m: ResultMessage) => boolean) | undefined;
  private lastPullWarning = 0;
  private readonly admission: MemoryAdmission;
  /** Deliveries that were refusals (every worker's), not counted against max deliver. */
  private readonly refusedDeliveries = new RefusedDeliveries();
  /** Lanes waiting for a delivery: while any is, the worker says it is alive. */
  private idleLanes = 0;

  constructor(
    private readonly opts: WorkerOptions,
    private readonly s: WorkerSettings,
    private readonly nc: NatsConnection,
    readonly h: ClusterHandles,
    readonly jobDirs: JobDirs,
  ) {
    this.prefix = s.prefix;
    this.signal = s.signal;
    this.log = s.log;
    this.jobTimeoutMs = s.jobTimeoutMs;
    this.stallTimeoutMs = s.stallTimeoutMs;
    this.frozenAfterMs = s.frozenAfterMs;
    this.inlineBundleBytes = Math.min(opts.inlineBundleBytes ?? DEFAULT_INLINE_BUNDLE_BYTES, MAX_INLINE_BUNDLE_BYTES);
    this.pool = new ProcessPool({
      ...(opts.jobMemoryMb ? { memoryMb: opts.jobMemoryMb } : {}),
      ...(opts.dataRoot !== undefined ? { dataRoot: opts.dataRoot } : {}),
    });
    this.fieldCache = join(jobDirs.root, `${JOB_TMP_PREFIX}${process.pid}-fields`);
    this.consumerSettings = new ConsumerSettings(h.jsm);
    // Under TMPDIR whatever the job scratch: every worker of this user on the machine shares its slots.
    this.hostSlots = opts.hostJobs ? new HostSlots(join(jobTmpRoot(), 'host-slots'), opts.hostJobs) : undefined;
    this.admission = new MemoryAdmission(opts.memoryBytes ?? defaultMemoryBudget());
    const key = opts.jobKey;
    this.authentic = key ? (m: ResultMessage) => resultAuthentic(key, m) : undefined;
    this.keep = {
      signal: this.signal,
      forMs: 10 * 60_000,
      onRetry: (e: unknown) => this.log('warn', `NATS not answering (${(e as Error).message}); retrying`),
    };
  }

  async run(consumer: Consumer): Promise<WorkerSummary> {
    this.watchConnection();
    const { device, concurrency } = this.s;
    await this.pool.warm(concurrency);
    this.log(
      'info',
      `worker ${this.prefix} pulling from ${this.s.where} with ${concurrency} slot(s), ` +
        (this.opts.hostJobs ? `at most ${this.opts.hostJobs} job(s) at once on this machine, ` : '') +
        `memory ${formatBytes(this.admission.budget)}, device ${device}`,
    );
    const stopSignals = this.startSignals();
    this.opts.onReady?.();
    try {
      await Promise.all(Array.from({ length: concurrency }, () => this.lane(consumer)));
    } finally {
      stopSignals();
      await this.pool.close().catch(() => undefined);
      await this.nc.drain().catch(() => this.nc.close());
      await rm(this.fieldCache, { recursive: true, force: true }).catch(() => undefined);
    }
    return this.summary;
  }

  private watchConnection(): void {
    const url = maskUrl(this.opts.url);
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') this.log('warn', `lost the connection to NATS at ${url}; reconnecting…`);
        else if (s.type === 'reconnect') this.log('info', `reconnected to NATS at ${url}`);
      }
    })().catch(() => undefined);
  }

  /**
   * Hear every worker's refusals (a worker whose NATS user may not subscribe to them counts every delivery,
   * and its coordinator queues a job afresh whose deliveries ran out while workers refused it); say this
   * worker is alive while a slot is idle. Returns the stop.
   */
  private startSignals(): () => void {
    const refusals = this.nc.subscribe(`${REFUSAL_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        // A permission error ends the subscription: said once.
        const fix = 'every delivery counts against --max-deliver (see examples/nats/odeness.conf)';
        if (err) this.log('warn', `cannot hear other workers' refusals (${err.message}): ${fix}`);
        const n = err ? undefined : decodeRefusal(m.data);
        if (n) this.refusedDeliveries.heard(n);
      },
    });
    const alive = setInterval(() => {
      if (this.idleLanes === 0) return;
      const key = this.opts.jobKey;
      const n = { worker: this.prefix, at: Date.now() };
      try {
        this.nc.publish(ALIVE_SUBJECT, encodeAlive(key ? sealAlive(key, n) : n));
      } catch {
        /* best-effort, like events */
      }
    }, ALIVE_EVERY_MS);
    return () => {
      clearInterval(alive);
      refusals.unsubscribe();
    };
  }

  ackWaitMs(): Promise<number> {
    return this.consumerSettings.refresh();
  }

  publishEvent(ev: Omit<EventMessage, 'v'>): void {
    try {
      const msg: EventMessage = { v: PROTOCOL_VERSION, ...ev, at: Date.now() };
      const key = this.opts.jobKey;
      this.nc.publish(`${EVENT_SUBJECT_PREFIX}${ev.id}`, encode(key ? sealEvent(key, msg) : msg));
    } catch {
      /* best-effort */
    }
  }

  offer(msg: ResultMessage): Promise<'stored' | 'kept'> {
    const key = this.opts.jobKey;
    return storeResult(this.h.kv, key ? sealResult(key, msg) : msg, this.authentic);
  }

  failure(job: Job, attempt: number, error: string, started = Date.now()): JobResult {
    const end = Date.now();
    return {
      id: job.id,
      job,
      status: 'failed',
      attempt,
      worker: `${this.prefix}/checks`,
      error,
      timings: {
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(end).toISOString(),
        ms: end - started,
      },
    };
  }

  private async lane(consumer: Consumer): Promise<void> {
    while (!this.signal.aborted) {
      // With --host-jobs, a slot of this machine first: a lane without one neither pulls nor runs.
      const release = this.hostSlots ? await this.hostSlots.acquire(this.signal) : undefined;
      if (this.hostSlots && !release) break;
      try {
        await this.pullAndHandle(consumer);
      } finally {
        await release?.();
      }
    }
  }

  private async pullAndHandle(consumer: Consumer): Promise<void> {
    let m: JsMsg | null;
    try {
      this.idleLanes++;
      m = await this.pull(consumer);
    } catch (e) {
      if (this.signal.aborted) return;
      if (Date.now() - this.lastPullWarning > 60_000 && !this.nc.isClosed()) {
        this.lastPullWarning = Date.now();
        this.log('warn', `cannot pull jobs from ${STREAM}/${CONSUMER} (${(e as Error).message}); retrying`);
      }
      await new Promise((r) => setTimeout(r, 500));
      return;
    } finally {
      this.idleLanes--;
    }
    if (!m) return;
    if (this.signal.aborted) {
      m.nak();
      return;
    }
    try {
      await this.handle(m);
    } catch (e) {
      // The job stays un-acked and is redelivered after the ack wait.
      this.log('warn', `job message ${m.seq}: ${(e as Error).message}`);
    }
  }

  /** One delivery, or null when none came within PULL_EXPIRES_MS or the worker stops (its pull is cancelled). */
  private async pull(consumer: Consumer): Promise<JsMsg | null> {
    const pulling = await consumer.fetch({ max_messages: 1, expires: PULL_EXPIRES_MS });
    const cancel = () => pulling.stop();
    this.signal.addEventListener('abort', cancel, { once: true });
    if (this.signal.aborted) cancel();
    try {
      for await (const m of pulling) return m;
      return null;
    } finally {
      this.signal.removeEventListener('abort', cancel);
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    let decoded: JobMessage;
    try {
      decoded = decodeJobMessage(m.data);
    } catch (e) {
      if (e instanceof MessageError) return this.refuseUnreadable(m, e);
      throw e;
    }
    const { job, attempt } = decoded;
    // Refreshes maxDeliver too; a redelivery reads it now: a value read for the study before may be stale.
    await this.consumerSettings.refresh(m.info.deliveryCount > 1);
    const fieldFiles: Record<string, string> = {};
    if (await this.refused(m, decoded, fieldFiles)) return;
    if (!canRunJob(this.s.device, job)) {
      // Not failed, not refused: left in the queue for a worker with that device.
      this.summary.passed++;
      m.nak(OTHER_DEVICE_DELAY_MS);
      return;
    }
    // Only a redelivery looks (one request per job spared): the coordinator queues only jobs the bucket does not
    // answer, and a worker stores a result before it acks. A race (two coordinators queuing one job) at worst
    // runs a job twice; the bucket keeps the first result (create only).
    const answered = m.info.deliveryCount > 1 && (await this.h.kv.get(job.id).catch(() => null));
    if (answered && standingResult(answered, job, attempt, this.authentic)) {
      this.summary.skipped++;
      try {
        m.ack();
      } catch {
        /* a closed connection: redelivered, and skipped again */
      }
      return;
    }
    const deliveries = m.info.deliveryCount;
    const { maxDeliver } = this.consumerSettings;
    // JetStream counts the deliveries other workers handed back for want of the job's device (canRunJob):
    // for a job that requires a device the count says nothing about crashes, so only CPU jobs are given up by it.
    // Deliveries that workers refused (refusals.ts) were no runs either.
    const runs = deliveries - this.refusedDeliveries.of(job.id, m.seq);
    if (runs > maxDeliver && job.device === undefined) {
      const error =
        `delivered ${maxDeliver} times without a result (each worker died or stopped mid-job); ` +
        'rerun with --retry-failed';
      await this.recordRefusal(
        m,
        { v: PROTOCOL_VERSION, result: this.failure(job, attempt, error), exhausted: true },
        'given up after too many deliveries; recorded as failed',
      );
      return;
    }
    // Room in the memory budget beside the running jobs (the delivery kept alive while it waits).
    const everyMs = Math.max(200, Math.min(1000, (await this.ackWaitMs()) / 3));
    const onWait = (line: string) => this.log('info', line);
    const grant = await admitDelivery(this.admission, job, fieldFiles, () => m.working(), this.signal, everyMs, onWait);
    if (!grant) {
      this.summary.returned++;
      m.nak();
      return;
    }
    try {
      this.count(await new JobRun(this, m, job, attempt, deliveries, fieldFiles).execute());
    } finally {
      grant.release();
    }
  }

  private count(end: Awaited<ReturnType<JobRun['execute']>>): void {
    if (end === 'returned') {
      this.summary.returned++;
      return;
    }
    this.summary.ran++;
    if (end === 'done') this.summary.done++;
    else this.summary.failed++;
  }

  /** The untrusted-input checks (job-checks.ts); true when the message was refused (and dealt with). */
  private async refused(m: JsMsg, decoded: JobMessage, fieldFiles: Record<string, string>): Promise<boolean> {
    const { job, attempt } = decoded;
    try {
      checkJobSignature(this.opts.jobKey, decoded);
      checkJobId(job);
      // onnx: fields: the file's bytes from the object store, verified, into this worker's temp dir (field-store.ts).
      Object.assign(fieldFiles, await fetchFieldFile(this.h, job.field, this.fieldCache, { signal: this.signal }));
      checkJobBounds(job, fieldFiles);
      checkJobMemory(job, this.admission.budget, fieldFiles);
      await checkDatasetFiles(job, this.opts);
      return false;
    } catch (e) {
      if (!(e instanceof JobRefused)) throw e;
      if (e.leave) this.leaveForAnother(m, job.id, e.leave, e.message, e.memory);
      else if (!e.record) {
        this.summary.refused++;
        this.log('warn', `dropping job message ${job.id} (stream seq ${m.seq}): ${e.message}`);
        m.term();
      } else {
        const msg: ResultMessage = { v: PROTOCOL_VERSION, result: this.failure(job, attempt, e.message) };
        await this.recordRefusal(m, msg, 'refused before running');
      }
      return true;
    }
  }

  /** Store a failed result without running the job, then drop the message for good. */
  private async recordRefusal(m: JsMsg, msg: ResultMessage, what: string): Promise<void> {
    this.summary.refused++;
    await retrying(`store result of ${msg.result.id}`, () => this.offer(msg), this.keep);
    const delivery = `delivery ${m.info.deliveryCount}`;
    this.log('warn', `${msg.result.id} failed in 0 ms (${delivery}, ${what}): ${msg.result.error}`);
    m.term();
  }

  /** Leave a job for another worker (nak with a growing delay) and tell its coordinator why (refusals.ts). */
  private leaveForAnother(
    m: JsMsg,
    id: string,
    kind: RefusalKind,
    reason: string,
    memory?: { needs: number; offers: number },
  ): void {
    this.summary.refused++;
    const deliveries = m.info.deliveryCount;
    try {
      this.nc.publish(
        `${REFUSAL_SUBJECT_PREFIX}${id}`,
        encodeRefusal({ id, worker: this.prefix, v: PROTOCOL_VERSION, kind, reason, seq: m.seq, ...memory }),
      );
    } catch {
      /* best-effort, like events */
    }
    if (deliveries >= REFUSAL_MAX_DELIVERIES) {
      const where = `job message ${id} (stream seq ${m.seq})`;
      this.log('warn', `dropping ${where} after ${deliveries} deliveries no worker ran: ${reason}`);
      m.term();
      return;
    }
    if (deliveries === 1 || Number.isInteger(Math.log2(deliveries)))
      this.log('warn', `leaving job ${id} (delivery ${deliveries}) for another worker: ${reason}`);
    m.nak(refusalDelayMs(deliveries, kind));
  }

  /**
   * A message this worker cannot read: another protocol version is left for a worker of that version (never a
   * stored result); the rest is dropped.
   */
  private refuseUnreadable(m: JsMsg, e: MessageError): void {
    const id = e.version !== undefined ? jobIdOf(m.data) : undefined;
    if (id) {
      const reason = `${e.message}: run coordinator and workers of the same odeness version`;
      return this.leaveForAnother(m, id, 'version', reason);
    }
    this.summary.refused++;
    this.log('warn', `dropping a job message (stream seq ${m.seq}): ${e.message}`);
    m.term();
  }
}

/** The well-formed job id of a message of another version, if it has one. */
function jobIdOf(data: Uint8Array): string | undefined {
  try {
    const j = unpackRaw(data, 'job').job as { id?: unknown } | undefined;
    return typeof j?.id === 'string' && JOB_ID_PATTERN.test(j.id) ? j.id : undefined;
  } catch {
    return undefined;
  }
}
