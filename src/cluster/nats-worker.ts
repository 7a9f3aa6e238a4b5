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
 *      message's own metadata) → a failed result, marked `exhausted`;
 *   3. already answered in the result bucket → ack and skip;
 *   4. run it; the delivery is extended (in-progress ack) only while the job
 *      reports progress, so a stuck job is redelivered; every failure from
 *      here on, start-up ones included (no temp dir), is a failed result;
 *   5. upload the bundle under a per-run name, offer the result
 *      (compare-and-set: the first done wins), then ack.
 * A frozen run (no progress for twice --stall-timeout plus 5 s: a stopped
 * job process) whose job another run has finished is stopped, its slot freed. Job temp
 * dirs of workers that no longer run are removed before each job.
 * A worker that dies before the ack leaves the job to be redelivered after
 * the ack wait; one that is stopped (SIGTERM) kills its jobs' processes and
 * hands them back at once (nak).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { OdenessError } from '../errors.js';
import { describeError } from '../study/job.js';
import { pidAlive } from '../study/lock.js';
import { JOB_ID_PATTERN } from '../formats/index.js';
import type { Job, JobProgress, JobResult } from '../study/types.js';
import type { Device } from '../formats/common.js';
import { decodeJobMessage, encode, MessageError, packBundle, unpackRaw } from './codec.js';
import {
  checkDatasetFiles,
  checkJobBounds,
  checkJobId,
  checkJobMemory,
  checkJobSignature,
  JobRefused,
  type DataRootOptions,
} from './job-checks.js';
import { PROTOCOL_VERSION, type EventMessage, type ResultMessage } from './protocol.js';
import { connectNats, describeNats, maskUrl, type NatsConnectOptions } from './nats-connect.js';
import {
  CONSUMER,
  DEFAULT_ACK_WAIT_MS,
  EVENT_SUBJECT_PREFIX,
  isPermissionError,
  openCluster,
  retrying,
  STREAM,
  type ClusterHandles,
} from './nats-resources.js';
import { standingResult, storeResult } from './nats-results.js';
import { resultAuthentic, sealEvent, sealResult } from './result-auth.js';
import { maxDeliverOf } from './nats-resources.js';
import { isStorageFull } from './storage-full.js';
import { defaultThreads } from '../study/local.js';
import { ProcessPool } from './process-pool.js';
import { defaultMemoryBudget, MemoryAdmission } from '../study/admission.js';
import { formatBytes } from '../engines/memory.js';
import { admitDelivery } from './admission.js';
import {
  encodeRefusal,
  REFUSAL_MAX_DELIVERIES,
  REFUSAL_SUBJECT_PREFIX,
  refusalDelayMs,
  type RefusalKind,
} from './refusals.js';

export interface WorkerOptions extends NatsConnectOptions, DataRootOptions {
  /** Jobs run at once, one child process each (default: one per core). */
  concurrency?: number;
  /** Abort to stop: running jobs are killed and handed back to the queue (nak), and the worker exits. */
  signal?: AbortSignal;
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Called once the worker is connected and pulling. */
  onReady?: () => void;
  /** Wall-clock limit of one job (default 6 h): past it the job is stopped and recorded as failed. */
  jobTimeoutMs?: number;
  /** A job that reports no progress for this long is no longer kept alive (default 120 s): it is redelivered after the ack wait. */
  stallTimeoutMs?: number;
  /** Run only jobs signed with this key (HMAC-SHA256; the coordinator's --job-key-file). */
  jobKey?: Buffer;
  /** Heap limit of each job process, MB. */
  jobMemoryMb?: number;
  /** Memory budget of the jobs running at once, bytes (study/admission.ts; default: from the machine). */
  memoryBytes?: number;
  /** The device this worker's sessions run on (default cpu): it takes CPU jobs and jobs requiring this device. */
  device?: Device;
}

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
/** Temp dirs of jobs: `odeness-job-<worker pid>-XXXXXX`, so a later worker can tell a crashed worker's leftovers. */
const JOB_TMP_PREFIX = 'odeness-job-';
const PROGRESS_EVERY_MS = 500;
/** Most time between two events of a running job (a bare progress event when it reports none). */
const ALIVE_EVERY_MS = 5_000;
const PULL_EXPIRES_MS = 2_000;

/** Remove job temp dirs left by workers of this host that no longer run (SIGKILL, power loss). */
export async function cleanStaleJobDirs(dir = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = new RegExp(`^${JOB_TMP_PREFIX}(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { recursive: true, force: true }).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
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

export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const concurrency = opts.concurrency ?? defaultThreads();
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new OdenessError(`--concurrency must be a positive integer, got ${String(opts.concurrency)}`);
  const log = opts.log ?? ((level, message) => process.stderr.write(`[worker ${level}] ${message}\n`));
  const signal = opts.signal ?? new AbortController().signal;
  const where = describeNats(opts);
  const device = opts.device ?? 'cpu';
  // Workers advertise their device in their name (results and events carry it); CPU workers keep the plain name.
  const prefix = `nats/${hostname()}/${process.pid}${device === 'cpu' ? '' : `@${device}`}`;
  const jobTimeoutMs = opts.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
  const stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  // Quiet this long, a run counts as frozen: once another run has finished its job, it is stopped (a run that
  // only stalls for a while finishes, and the first done wins).
  const frozenAfterMs = 2 * stallTimeoutMs + 5_000;

  const nc = await connectNats({ ...opts, name: opts.name ?? `odeness worker ${hostname()}/${process.pid}` });
  let h: ClusterHandles;
  let consumer: Consumer;
  try {
    for (let warned = false; ; ) {
      try {
        h = await openCluster(nc, where);
        break;
      } catch (e) {
        // A least-privilege worker cannot create the stream and buckets: the first coordinator does.
        if (!isPermissionError(e) || signal.aborted) throw e;
        if (!warned)
          log(
            'info',
            `waiting for a coordinator to create the cluster's stream and buckets (this worker may not: ${(e as Error).message})`,
          );
        warned = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    consumer = await h.js.consumers.get(STREAM, CONSUMER);
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
  for (const name of await cleanStaleJobDirs())
    log('info', `removed ${join(tmpdir(), name)}, left by a worker that no longer runs`);
  const pool = new ProcessPool({
    ...(opts.jobMemoryMb ? { memoryMb: opts.jobMemoryMb } : {}),
    ...(opts.dataRoot !== undefined ? { dataRoot: opts.dataRoot } : {}),
  });
  const admission = new MemoryAdmission(opts.memoryBytes ?? defaultMemoryBudget());
  const summary: WorkerSummary = { ran: 0, done: 0, failed: 0, skipped: 0, returned: 0, refused: 0, passed: 0 };

  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') log('warn', `lost the connection to NATS at ${maskUrl(opts.url)}; reconnecting…`);
      else if (s.type === 'reconnect') log('info', `reconnected to NATS at ${maskUrl(opts.url)}`);
    }
  })().catch(() => undefined);

  // The coordinator owns the ack wait; re-read it now and then so heartbeats keep up with changes.
  let ackWaitMs = DEFAULT_ACK_WAIT_MS;
  // Deliveries before a job is given up: the coordinator's configuration (kept on the consumer), never the message's.
  let maxDeliver = maxDeliverOf(undefined);
  let ackWaitReadAt = 0;
  const currentAckWait = async (): Promise<number> => {
    if (Date.now() - ackWaitReadAt > 5_000) {
      const info = await h.jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
      if (info?.config.ack_wait) {
        ackWaitMs = info.config.ack_wait / 1e6;
        maxDeliver = maxDeliverOf(info.config);
        ackWaitReadAt = Date.now();
      }
    }
    return ackWaitMs;
  };

  const publishEvent = (ev: Omit<EventMessage, 'v'>) => {
    try {
      const msg: EventMessage = { v: PROTOCOL_VERSION, ...ev, at: Date.now() };
      nc.publish(`${EVENT_SUBJECT_PREFIX}${ev.id}`, encode(opts.jobKey ? sealEvent(opts.jobKey, msg) : msg));
    } catch {
      /* best-effort */
    }
  };

  // With a job key, results are sealed (result-auth.ts) and only sealed stored results count as answers.
  const authentic = opts.jobKey ? (m: ResultMessage) => resultAuthentic(opts.jobKey!, m) : undefined;
  const offer = (msg: ResultMessage) => storeResult(h.kv, opts.jobKey ? sealResult(opts.jobKey, msg) : msg, authentic);
  const keep = {
    signal,
    forMs: 10 * 60_000,
    onRetry: (e: unknown) => log('warn', `NATS not answering (${(e as Error).message}); retrying`),
  };
  const failure = (job: Job, attempt: number, error: string, started = Date.now()): JobResult => {
    const end = Date.now();
    return {
      id: job.id,
      job,
      status: 'failed',
      attempt,
      worker: `${prefix}/checks`,
      error,
      timings: {
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(end).toISOString(),
        ms: end - started,
      },
    };
  };
  /** Store a failed result without running the job, then drop the message for good. */
  const recordRefusal = async (m: JsMsg, msg: ResultMessage, what: string) => {
    summary.refused++;
    await retrying(`store result of ${msg.result.id}`, () => offer(msg), keep);
    log('warn', `${msg.result.id} failed in 0 ms (delivery ${m.info.deliveryCount}, ${what}): ${msg.result.error}`);
    m.term();
  };

  /** Leave a job for another worker (nak with a growing delay) and tell its coordinator why (refusals.ts). */
  const leaveForAnother = (
    m: JsMsg,
    id: string,
    kind: RefusalKind,
    reason: string,
    memory?: { needs: number; offers: number },
  ): void => {
    summary.refused++;
    const deliveries = m.info.deliveryCount;
    try {
      nc.publish(
        `${REFUSAL_SUBJECT_PREFIX}${id}`,
        encodeRefusal({ id, worker: prefix, v: PROTOCOL_VERSION, kind, reason, ...memory }),
      );
    } catch {
      /* best-effort, like events */
    }
    if (deliveries >= REFUSAL_MAX_DELIVERIES) {
      log(
        'warn',
        `dropping job message ${id} (stream seq ${m.seq}) after ${deliveries} deliveries no worker ran: ${reason}`,
      );
      m.term();
      return;
    }
    if (deliveries === 1 || Number.isInteger(Math.log2(deliveries)))
      log('warn', `leaving job ${id} (delivery ${deliveries}) for another worker: ${reason}`);
    m.nak(refusalDelayMs(deliveries));
  };

  /** A message this worker cannot read: another protocol version is left for a worker of that version (never a stored result); the rest is dropped. */
  const refuseUnreadable = (m: JsMsg, e: MessageError): void => {
    if (e.version !== undefined) {
      const id = (() => {
        try {
          const j = unpackRaw(m.data, 'job').job as { id?: unknown } | undefined;
          return typeof j?.id === 'string' && JOB_ID_PATTERN.test(j.id) ? j.id : undefined;
        } catch {
          return undefined;
        }
      })();
      if (id)
        return leaveForAnother(
          m,
          id,
          'version',
          `${e.message}: run coordinator and workers of the same odeness version`,
        );
    }
    summary.refused++;
    log('warn', `dropping a job message (stream seq ${m.seq}): ${e.message}`);
    m.term();
  };

  const handle = async (m: JsMsg): Promise<void> => {
    let decoded;
    try {
      decoded = decodeJobMessage(m.data);
    } catch (e) {
      if (e instanceof MessageError) return refuseUnreadable(m, e);
      throw e;
    }
    const { job, attempt } = decoded;
    await currentAckWait(); // refreshes maxDeliver too
    const deliveries = m.info.deliveryCount;
    try {
      checkJobSignature(opts.jobKey, decoded);
      checkJobId(job);
      checkJobBounds(job);
      checkJobMemory(job, admission.budget);
      await checkDatasetFiles(job, opts);
    } catch (e) {
      if (!(e instanceof JobRefused)) throw e;
      if (e.leave) return leaveForAnother(m, job.id, e.leave, e.message, e.memory);
      if (!e.record) {
        summary.refused++;
        log('warn', `dropping job message ${job.id} (stream seq ${m.seq}): ${e.message}`);
        m.term();
        return;
      }
      return recordRefusal(
        m,
        { v: PROTOCOL_VERSION, result: failure(job, attempt, e.message) },
        'refused before running',
      );
    }
    if (!canRunJob(device, job)) {
      // Not failed, not refused: left in the queue for a worker with that device.
      summary.passed++;
      m.nak(OTHER_DEVICE_DELAY_MS);
      return;
    }
    if (standingResult(await h.kv.get(job.id).catch(() => null), job, attempt, authentic)) {
      summary.skipped++;
      await m.ackAck().catch(() => false);
      return;
    }
    // JetStream counts the deliveries other workers handed back for want of the job's device (canRunJob):
    // for a job that requires a device the count says nothing about crashes, so only CPU jobs are given up by it.
    if (deliveries > maxDeliver && job.device === undefined) {
      const error = `delivered ${maxDeliver} times without a result (each worker died or stopped mid-job); rerun with --retry-failed`;
      await recordRefusal(
        m,
        { v: PROTOCOL_VERSION, result: failure(job, attempt, error), exhausted: true },
        'given up after too many deliveries; recorded as failed',
      );
      return;
    }
    // Room in the memory budget beside the running jobs (the delivery kept alive while it waits).
    const everyMs = Math.max(200, Math.min(1000, (await currentAckWait()) / 3));
    const grant = await admitDelivery(
      admission,
      job,
      () => m.working(),
      signal,
      everyMs,
      (w) => log('info', w),
    );
    if (!grant) {
      summary.returned++;
      m.nak();
      return;
    }
    try {
      await runDelivery(m, job, attempt, deliveries);
    } finally {
      grant.release();
    }
  };

  const runDelivery = async (m: JsMsg, job: Job, attempt: number, deliveries: number): Promise<void> => {
    const run = randomBytes(8).toString('hex');
    const worker = `${prefix}/${run.slice(0, 4)}`;
    const abort = new AbortController();
    const onStop = () => abort.abort();
    let lastProgress = Date.now();
    let lastEvent = 0;
    let bundleDir: string | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    // A stalled run (a frozen process) whose job another worker has finished gives its slot back.
    const finishedElsewhere = new SupersededCheck(async () => {
      const stored = standingResult(await h.kv.get(job.id).catch(() => null), job, attempt);
      return stored?.result.status === 'done';
    });
    signal.addEventListener('abort', onStop, { once: true });
    try {
      // Frequent enough to survive a coordinator shortening the ack wait mid-job; an in-progress ack is one small publish.
      const heartbeatMs = Math.max(200, Math.min(1000, (await currentAckWait()) / 3));
      heartbeat = setInterval(() => {
        const quietMs = Date.now() - lastProgress;
        if (quietMs < stallTimeoutMs) m.working();
        // A sign of life between progress reports (evaluation and audits report none): the coordinator must
        // not take this worker for gone and report jobs it left for a bigger worker as refused by all.
        if (quietMs < stallTimeoutMs && Date.now() - lastEvent >= ALIVE_EVERY_MS) {
          lastEvent = Date.now();
          publishEvent({ kind: 'progress', id: job.id, worker });
        } else if (quietMs >= frozenAfterMs) void finishedElsewhere.check(() => abort.abort());
      }, heartbeatMs);
      publishEvent({ kind: 'start', id: job.id, worker });
      let result: JobResult | undefined;
      for (const name of await cleanStaleJobDirs()) {
        log('info', `removed ${join(tmpdir(), name)}, left by a worker that no longer runs`);
      }
      try {
        bundleDir = await mkdtemp(join(tmpdir(), `${JOB_TMP_PREFIX}${process.pid}-`));
      } catch (e) {
        result = failure(
          job,
          attempt,
          `the worker cannot create the job's temporary directory in ${tmpdir()} (TMPDIR): ${describeError(e)}`,
        );
      }
      if (!result) {
        result = await pool
          .run(job, attempt, bundleDir!, worker, {
            signal: abort.signal,
            deadlineMs: jobTimeoutMs,
            onStart: () => {
              lastProgress = Date.now();
              publishEvent({ kind: 'start', id: job.id, worker });
            },
            onProgress: (progress: JobProgress) => {
              const now = Date.now();
              lastProgress = now;
              if (now - lastEvent < PROGRESS_EVERY_MS && progress.iteration < progress.iterations) return;
              lastEvent = now;
              publishEvent({ kind: 'progress', id: job.id, worker, progress });
            },
          })
          .catch((e: Error) => {
            if (e.name === 'AbortError') return undefined;
            return failure(job, attempt, `job process failed: ${describeError(e)}`);
          });
      }
      if (!result) {
        summary.returned++;
        const quiet = `${Math.round(frozenAfterMs / 1000)} s`;
        if (finishedElsewhere.superseded) {
          const what = 'finished by another run: its job process is stopped, the slot freed';
          log('info', `${job.id}: no progress here for ${quiet} and ${what}`);
        } else m.nak();
        return;
      }
      // A full JetStream store: the job is kept (not acked) while this retries, and the coordinator is told.
      let toldFull = false;
      const keepStoring = {
        ...keep,
        onRetry: (e: unknown) => {
          keep.onRetry(e);
          if (!toldFull && isStorageFull(e))
            publishEvent({ kind: 'storage', id: job.id, worker, error: (e as Error).message });
          toldFull ||= isStorageFull(e);
        },
      };
      let bundle: string | undefined;
      let stored: Pick<ResultMessage, 'bundleDigest' | 'bundleBytes' | 'bundleNuid'> = {};
      if (result.status === 'done') {
        bundle = `${job.id}.${run}`;
        const bytes = await packBundle(bundleDir!);
        const info = await retrying(
          `upload bundle of ${job.id}`,
          () => h.os.putBlob({ name: bundle! }, bytes),
          keepStoring,
        );
        stored = {
          bundleDigest: createHash('sha256').update(bytes).digest('hex'),
          bundleBytes: bytes.length,
          bundleNuid: info.nuid,
        };
      }
      const outcome = await retrying(
        `store result of ${job.id}`,
        () => offer({ v: PROTOCOL_VERSION, result, ...(bundle ? { bundle, ...stored } : {}) }),
        keepStoring,
      );
      summary.ran++;
      if (result.status === 'done') summary.done++;
      else summary.failed++;
      log(
        'info',
        `${job.id} ${result.status} in ${result.timings.ms} ms (delivery ${deliveries})${result.error ? `: ${result.error}` : ''}`,
      );
      if (outcome === 'kept') {
        log('info', `${job.id}: another run's result was stored first; this run's is dropped`);
        if (bundle) await h.os.delete(bundle).catch(() => undefined);
      }
      // If the ack is lost, the redelivery finds the stored result and is skipped.
      await retrying(`ack ${job.id}`, () => m.ackAck(), { forMs: 30_000 }).catch(() => undefined);
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onStop);
      if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
    }
  };

  let lastPullWarning = 0;
  const lane = async () => {
    while (!signal.aborted) {
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (e) {
        if (signal.aborted) break;
        if (Date.now() - lastPullWarning > 60_000 && !nc.isClosed()) {
          lastPullWarning = Date.now();
          log('warn', `cannot pull jobs from ${STREAM}/${CONSUMER} (${(e as Error).message}); retrying`);
        }
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!m) continue;
      if (signal.aborted) {
        m.nak();
        break;
      }
      try {
        await handle(m);
      } catch (e) {
        // The job stays un-acked and is redelivered after the ack wait.
        log('warn', `job message ${m.seq}: ${(e as Error).message}`);
      }
    }
  };

  log(
    'info',
    `worker ${prefix} pulling from ${where} with ${concurrency} slot(s), memory ${formatBytes(admission.budget)}, device ${device}`,
  );
  opts.onReady?.();
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    await pool.close().catch(() => undefined);
    await nc.drain().catch(() => nc.close());
  }
  return summary;
}
