/**
 * `odeness worker`: pull jobs from the work queue and run each in a worker
 * thread (the same JobPool, hence the same runJob → executeJob, as local
 * runs). Per job: skip it if the result bucket already has its result; keep
 * the delivery alive with in-progress acks while it runs; upload the bundle;
 * store the result; then ack. A worker that dies before the ack leaves the job
 * to be redelivered to another worker after the ack wait.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { OdenessError } from '../errors.js';
import type { JobProgress } from '../study/types.js';
import { decodeJobMessage, decodeResultMessage, encode, packBundle } from './codec.js';
import { PROTOCOL_VERSION, type EventMessage } from './protocol.js';
import { connectNats, describeNats, maskUrl, type NatsConnectOptions } from './nats-connect.js';
import { CONSUMER, DEFAULT_ACK_WAIT_MS, EVENT_SUBJECT_PREFIX, openCluster, retrying, STREAM, type ClusterHandles } from './nats-resources.js';
import { MAX_DELIVERIES_ADVISORY, recordGivenUp, storeResult } from './nats-results.js';
import { defaultThreads, JobPool } from './pool.js';

export interface WorkerOptions extends NatsConnectOptions {
  /** Jobs run at once, one worker thread each (default: one per core). */
  concurrency?: number;
  /** Abort to stop: running jobs are handed back to the queue (nak) and the worker exits. */
  signal?: AbortSignal;
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Called once the worker is connected and pulling. */
  onReady?: () => void;
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
}

const PROGRESS_EVERY_MS = 500;
const PULL_EXPIRES_MS = 2_000;

export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const concurrency = opts.concurrency ?? defaultThreads();
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new OdenessError(`--concurrency must be a positive integer, got ${String(opts.concurrency)}`);
  const log = opts.log ?? ((level, message) => process.stderr.write(`[worker ${level}] ${message}\n`));
  const signal = opts.signal ?? new AbortController().signal;
  const where = describeNats(opts);
  const prefix = `nats/${hostname()}/${process.pid}`;

  const nc = await connectNats({ ...opts, name: opts.name ?? `odeness worker ${hostname()}/${process.pid}` });
  let h: ClusterHandles;
  let consumer: Consumer;
  try {
    h = await openCluster(nc, where);
    consumer = await h.js.consumers.get(STREAM, CONSUMER);
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
  const pool = new JobPool({ threads: concurrency, workerPrefix: prefix });
  const summary: WorkerSummary = { ran: 0, done: 0, failed: 0, skipped: 0, returned: 0 };

  const advisories = nc.subscribe(MAX_DELIVERIES_ADVISORY, {
    queue: CONSUMER,
    callback: (err, m) => {
      if (err) return;
      void recordGivenUp(h, m.json<{ stream_seq: number; deliveries: number }>(), `${prefix}/advisory`)
        .then((id) => id && log('warn', `${id}: given up after too many deliveries; recorded as failed`))
        .catch((e) => log('warn', `max-deliveries advisory: ${(e as Error).message}`));
    },
  });

  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') log('warn', `lost the connection to NATS at ${maskUrl(opts.url)}; reconnecting…`);
      else if (s.type === 'reconnect') log('info', `reconnected to NATS at ${maskUrl(opts.url)}`);
    }
  })().catch(() => undefined);

  // The coordinator owns the ack wait; re-read it now and then so heartbeats keep up with changes.
  let ackWaitMs = DEFAULT_ACK_WAIT_MS;
  let ackWaitReadAt = 0;
  const currentAckWait = async (): Promise<number> => {
    if (Date.now() - ackWaitReadAt > 5_000) {
      const info = await h.jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
      if (info?.config.ack_wait) {
        ackWaitMs = info.config.ack_wait / 1e6;
        ackWaitReadAt = Date.now();
      }
    }
    return ackWaitMs;
  };

  const publishEvent = (ev: Omit<EventMessage, 'v'>) => {
    try {
      nc.publish(`${EVENT_SUBJECT_PREFIX}${ev.id}`, encode({ v: PROTOCOL_VERSION, ...ev }));
    } catch {
      /* best-effort */
    }
  };

  const handle = async (m: JsMsg): Promise<void> => {
    let decoded;
    try {
      decoded = decodeJobMessage(m.data);
    } catch (e) {
      log('warn', `dropping an unreadable job message (seq ${m.seq}): ${(e as Error).message}`);
      m.term();
      return;
    }
    const { job, attempt } = decoded;
    const existing = await h.kv.get(job.id).catch(() => null);
    if (existing && existing.operation === 'PUT' && existing.length > 0) {
      try {
        const r = decodeResultMessage(existing.value).result;
        if (r.status === 'done' || r.attempt >= attempt) {
          summary.skipped++;
          await m.ackAck().catch(() => false);
          return;
        }
      } catch {
        /* unreadable old result: run the job again */
      }
    }

    // Frequent enough to survive a coordinator shortening the ack wait mid-job; an in-progress ack is one small publish.
    const heartbeatMs = Math.max(200, Math.min(1000, (await currentAckWait()) / 3));
    const heartbeat = setInterval(() => m.working(), heartbeatMs);
    const abort = new AbortController();
    const onStop = () => abort.abort();
    signal.addEventListener('abort', onStop, { once: true });
    const bundleDir = await mkdtemp(join(tmpdir(), 'odeness-job-'));
    let lastEvent = 0;
    try {
      const result = await pool.run(job, attempt, bundleDir, {
        signal: abort.signal,
        onStart: (worker) => publishEvent({ kind: 'start', id: job.id, worker }),
        onProgress: (worker, progress: JobProgress) => {
          const now = Date.now();
          if (now - lastEvent < PROGRESS_EVERY_MS && progress.iteration < progress.iterations) return;
          lastEvent = now;
          publishEvent({ kind: 'progress', id: job.id, worker, progress });
        },
      }).catch((e) => {
        if (abort.signal.aborted) return undefined;
        throw e;
      });
      if (!result) {
        summary.returned++;
        m.nak();
        return;
      }
      const keep = { signal, forMs: 10 * 60_000, onRetry: (e: unknown) => log('warn', `${job.id}: NATS not answering (${(e as Error).message}); retrying`) };
      if (result.status === 'done') {
        const bytes = await packBundle(bundleDir);
        await retrying(`upload bundle of ${job.id}`, () => h.os.putBlob({ name: job.id }, bytes), keep);
      }
      await retrying(
        `store result of ${job.id}`,
        () => storeResult(h.kv, { v: PROTOCOL_VERSION, result, ...(result.status === 'done' ? { bundle: job.id } : {}) }),
        keep,
      );
      summary.ran++;
      if (result.status === 'done') summary.done++;
      else summary.failed++;
      log('info', `${job.id} ${result.status} in ${result.timings.ms} ms${result.error ? `: ${result.error}` : ''}`);
      // If the ack is lost, the redelivery finds the stored result and is skipped.
      await retrying(`ack ${job.id}`, () => m.ackAck(), { forMs: 30_000 }).catch(() => undefined);
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onStop);
      await rm(bundleDir, { recursive: true, force: true });
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

  log('info', `worker ${prefix} pulling from ${where} with ${concurrency} slot(s)`);
  opts.onReady?.();
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    advisories.unsubscribe();
    await pool.close().catch(() => undefined);
    await nc.drain().catch(() => nc.close());
  }
  return summary;
}
