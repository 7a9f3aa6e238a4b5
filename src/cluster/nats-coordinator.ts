/**
 * The NATS transport, coordinator side: publishes a study's jobs to the work
 * queue, watches the result bucket, downloads bundles and hands results to
 * the study's sink.
 *
 * Exactly-once where it matters: a worker checks the KV before running a job
 * and acks only after the bundle and the result are stored, so a job whose
 * worker dies is redelivered and rerun, and a job that finished is never
 * rerun; duplicate results are possible (two deliveries racing) and the
 * coordinator keeps the first it sees.
 */
import { hostname } from 'node:os';
import type { Subscription } from '@nats-io/transport-node';
import type { KvEntry } from '@nats-io/kv';
import { OdenessError } from '../errors.js';
import type { JobSink, PendingJob, Transport } from '../study/transport.js';
import type { Job, JobResult } from '../study/types.js';
import { decodeEventMessage, encode, unpackBundle } from './codec.js';
import { PROTOCOL_VERSION, type ResultMessage } from './protocol.js';
import { connectNats, describeNats, maskUrl, type NatsConnectOptions } from './nats-connect.js';
import {
  BUNDLES_BUCKET, CONSUMER, DEFAULT_ACK_WAIT_MS, DEFAULT_MAX_DELIVER, EVENT_SUBJECT_PREFIX, JOB_SUBJECT_PREFIX, openCluster, retrying, STREAM,
  type ClusterHandles,
} from './nats-resources.js';
import { decodeEntry } from './nats-results.js';

/** Result ids re-read per 5 s sweep (a safety net behind the KV watcher). */
const SWEEP_BATCH = 200;

export interface NatsStudyOptions extends NatsConnectOptions {
  /** How long a delivered job may go without an ack or in-progress ack before redelivery (default 30 s). */
  ackWaitMs?: number;
  /** Deliveries of one job before it is given up and recorded as failed (default 5). */
  maxDeliver?: number;
}

/** What a coordinator waits for, per job id. */
interface Wanted {
  job: Job;
  attempt: number;
}

/**
 * The coordinator: publishes the study's jobs to the work queue, watches the
 * result bucket, downloads bundles and hands results to the sink.
 */
export class NatsTransport implements Transport {
  readonly description: string;
  private readonly closers: (() => Promise<void> | void)[] = [];

  private constructor(
    private readonly h: ClusterHandles,
    private readonly opts: NatsStudyOptions,
  ) {
    this.description = `nats ${describeNats(opts)}`;
  }

  static async connect(opts: NatsStudyOptions): Promise<NatsTransport> {
    if (opts.ackWaitMs !== undefined && !(opts.ackWaitMs >= 1000)) throw new OdenessError(`NATS ack wait must be at least 1000 ms, got ${opts.ackWaitMs}`);
    if (opts.maxDeliver !== undefined && !(Number.isInteger(opts.maxDeliver) && opts.maxDeliver >= 1)) throw new OdenessError(`NATS max deliver must be a positive integer, got ${opts.maxDeliver}`);
    const nc = await connectNats({ ...opts, name: opts.name ?? `odeness coordinator ${hostname()}/${process.pid}` });
    try {
      const h = await openCluster(nc, describeNats(opts), {
        ackWaitMs: opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS,
        maxDeliver: opts.maxDeliver ?? DEFAULT_MAX_DELIVER,
      });
      return new NatsTransport(h, opts);
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e;
    }
  }

  async run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void> {
    const { nc, js, jsm, kv, os } = this.h;
    const wanted = new Map<string, Wanted>(jobs.map((p) => [p.job.id, { job: p.job, attempt: p.attempt }]));
    const busy = new Set<string>();
    let resolveAll!: () => void;
    const allDone = new Promise<void>((r) => (resolveAll = r));
    const checkDone = () => {
      if (wanted.size === 0) resolveAll();
    };
    const onAbort = () => resolveAll();
    signal.addEventListener('abort', onAbort, { once: true });
    let lastActivity = Date.now();

    /** Take a result of the bucket if it is one this run waits for. Idempotent. */
    const consider = async (msg: ResultMessage): Promise<void> => {
      const r = msg.result;
      const w = wanted.get(r.id);
      if (!w || busy.has(r.id)) return;
      // A failed result from before a --retry-failed rerun is stale; a done result is always welcome.
      if (r.status === 'failed' && r.attempt < w.attempt) return;
      busy.add(r.id);
      lastActivity = Date.now();
      try {
        let tmp: string | undefined;
        let result: JobResult = r;
        if (r.status === 'done') {
          tmp = await sink.tempBundleDir(r.id);
          try {
            const bytes = await retrying(`download bundle ${r.id}`, () => os.getBlob(msg.bundle ?? r.id), { signal });
            if (!bytes) {
              // Forget the orphaned result so that --retry-failed reruns the job instead of finding it "done".
              await kv.delete(r.id).catch(() => undefined);
              throw new Error(`bundle ${msg.bundle ?? r.id} is missing from the object store ${BUNDLES_BUCKET}`);
            }
            await unpackBundle(bytes, tmp);
          } catch (e) {
            await sink.discard(tmp);
            tmp = undefined;
            if (signal.aborted) return;
            result = { ...r, status: 'failed', error: `job finished on ${r.worker} but its bundle could not be fetched: ${(e as Error).message}` };
            delete result.metrics;
          }
        }
        wanted.delete(r.id);
        await sink.finished(result, tmp);
        checkDone();
      } finally {
        busy.delete(r.id);
      }
    };
    const considerEntry = (e: KvEntry) => {
      let m: ResultMessage | undefined;
      try {
        m = decodeEntry(e);
      } catch (err) {
        sink.log('warn', `ignoring an unreadable result under ${e.key}: ${(err as Error).message}`);
        return;
      }
      if (m) consider(m).catch((err) => sink.log('warn', `result ${e.key}: ${(err as Error).message}`));
    };

    // 1. Watch the result bucket (last values first, then updates). Restarted
    //    after reconnects: the watcher's ephemeral consumer may not survive a server restart.
    let watcher: { stop(): void } | undefined;
    const startWatch = async () => {
      watcher?.stop();
      const it = await kv.watch({ ignoreDeletes: true });
      watcher = it;
      void (async () => {
        for await (const e of it) considerEntry(e);
      })().catch(() => undefined);
    };
    await startWatch();
    this.closers.push(() => watcher?.stop());

    // 2. Worker start/progress events.
    const events: Subscription = nc.subscribe(`${EVENT_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        if (err) return;
        try {
          const ev = decodeEventMessage(m.data);
          if (!wanted.has(ev.id)) return;
          lastActivity = Date.now();
          if (ev.kind === 'start') sink.started(ev.id, ev.worker);
          else if (ev.progress) sink.progress(ev.id, ev.worker, ev.progress);
        } catch {
          /* events are best-effort */
        }
      },
    });
    this.closers.push(() => events.unsubscribe());

    // 3. Reconnects: restart the watcher (it replays last values; `consider` is idempotent).
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') sink.log('warn', `lost the connection to NATS at ${maskUrl(this.opts.url)}; reconnecting…`);
        if (s.type === 'reconnect') {
          sink.log('info', `reconnected to NATS at ${maskUrl(this.opts.url)}`);
          await retrying('restart the result watcher', startWatch, { signal }).catch((e) => sink.log('warn', (e as Error).message));
        }
      }
    })().catch(() => undefined);

    // 4. Publish what the bucket does not already answer.
    const publishOne = async (w: Wanted) => {
      const entry = await retrying(`read result ${w.job.id}`, () => kv.get(w.job.id), { signal });
      const have = entry ? decodeEntry(entry) : undefined;
      if (have && (have.result.status === 'done' || have.result.attempt >= w.attempt)) {
        await consider(have);
        return;
      }
      await retrying(
        `publish job ${w.job.id}`,
        () => js.publish(`${JOB_SUBJECT_PREFIX}${w.job.id}`, encode({ v: PROTOCOL_VERSION, job: w.job, attempt: w.attempt }), { msgID: `${w.job.id}.${w.attempt}` }),
        { signal },
      );
    };
    const queue = [...wanted.values()];
    const lanes = Array.from({ length: Math.min(32, queue.length) }, async () => {
      while (queue.length > 0 && !signal.aborted) await publishOne(queue.shift()!);
    });
    await Promise.all(lanes);
    sink.log('info', `${jobs.length} job(s) queued on ${this.description}; waiting for workers (odeness worker --nats …)`);

    // 5. Periodic sweep: catches results a watcher missed, and tells the user when nothing happens.
    let warnedIdle = false;
    let cursor = 0;
    const sweep = setInterval(() => {
      void (async () => {
        const ids = [...wanted.keys()];
        cursor = cursor >= ids.length ? 0 : cursor;
        const slice = ids.slice(cursor, cursor + SWEEP_BATCH);
        cursor += SWEEP_BATCH;
        for (const id of slice) {
          if (signal.aborted) return;
          const e = await kv.get(id).catch(() => null);
          if (e) considerEntry(e);
        }
        if (!warnedIdle && Date.now() - lastActivity > 15_000 && wanted.size > 0) {
          warnedIdle = true;
          const info = await jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
          const waiting = info?.num_waiting ?? 0;
          sink.log('warn', waiting === 0
            ? `no worker is pulling jobs from ${maskUrl(this.opts.url)}; start one with: odeness worker --nats ${maskUrl(this.opts.url)}`
            : `no progress for 15 s (${waiting} worker pull request(s) waiting)`);
        }
      })().catch(() => undefined);
    }, 5_000);
    this.closers.push(() => clearInterval(sweep));

    checkDone();
    await allDone;
    signal.removeEventListener('abort', onAbort);
    // Let in-flight commits settle before the store closes.
    while (busy.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0)) await Promise.resolve(c()).catch(() => undefined);
    await this.h.nc.drain().catch(() => this.h.nc.close());
  }
}
