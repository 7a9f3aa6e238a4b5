/**
 * The NATS transport, coordinator side: publishes a study's jobs to the work
 * queue, watches the result bucket, downloads bundles and hands results to
 * the study's sink.
 *
 * Every result is checked against the planned job (same job, a current
 * attempt, a bundle named for that job's run) before it is taken; a job is
 * dropped from the wanted set only once its result is committed to the
 * output directory (a commit that keeps failing ends the run with an error;
 * the result stays in the bucket for the rerun). A failure recorded because
 * a job's deliveries ran out is held while the job still shows signs of life
 * (events from a worker), so a late genuine `done` supersedes it.
 */
import { hostname } from 'node:os';
import type { Subscription } from '@nats-io/transport-node';
import { KvWatchInclude, type KvEntry } from '@nats-io/kv';
import { OdenessError } from '../errors.js';
import type { JobSink, PendingJob, Transport } from '../study/transport.js';
import { pendingFieldFiles, uploadFieldFiles } from './field-store.js';
import type { Job, JobResult } from '../study/types.js';
import { decodeEventMessage, isLocalFsError, unpackBundle } from './codec.js';
import { enqueueJob, purgeJob, queuedMessage } from './job-queue.js';
import { PROTOCOL_VERSION, type EventMessage, type ResultMessage } from './protocol.js';
import { decodeRefusal, REFUSAL_SUBJECT_PREFIX, RefusalTracker } from './refusals.js';
import { connectNats, describeNats, maskUrl, type NatsConnectOptions } from './nats-connect.js';
import {
  CONSUMER,
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_MAX_DELIVER,
  DEFAULT_RETENTION,
  EVENT_SUBJECT_PREFIX,
  openCluster,
  retrying,
  STREAM,
  type ClusterHandles,
  type Retention,
} from './nats-resources.js';
import { decodeEntry, purgeResult, sameJob } from './nats-results.js';
import { BundleRefused, DEFAULT_MAX_BUNDLE_MB, fetchBundle } from './bundle-fetch.js';
import { eventAuthentic, resultAuthentic } from './result-auth.js';
import { isStorageFull, storageFullError } from './storage-full.js';

/** Result ids re-read per 5 s sweep (a safety net behind the KV watcher). */
const SWEEP_BATCH = 200;

export interface NatsStudyOptions extends NatsConnectOptions {
  /** How long a delivered job may go without an ack or in-progress ack before redelivery (default 30 s). */
  ackWaitMs?: number;
  /** Deliveries of one job before it is given up and recorded as failed (default 5). */
  maxDeliver?: number;
  /** Sign every job message with this key (HMAC-SHA256); workers given the same key run only signed jobs. */
  jobKey?: Buffer;
  /**
   * Retention of the result and bundle buckets (default 30 days, 1 GiB of results, 20 GiB of bundles). The
   * age limit is the cluster's, set when the buckets are made; a different `ttlMs` on existing buckets is refused.
   */
  retention?: Partial<Retention>;
  /** How long jobs every live worker refuses (refusals.ts) wait before the run reports them (default 15 s). */
  refusalGraceMs?: number;
  /** Largest bundle this coordinator downloads (default 256 MiB): a larger one fails its job (bundle-fetch.ts). */
  maxBundleBytes?: number;
}

export const DEFAULT_REFUSAL_GRACE_MS = 15_000;

/** Fresh queuings of a job whose deliveries ran out while workers refused it (each a race a fitting worker may lose). */
const MAX_REFUSAL_REQUEUES = 20;

/** Attempts at committing one result to the output directory before the run gives up (ENOSPC, EIO…). */
const COMMIT_TRIES = 3;

/** A bundle that arrived but cannot be written here (ENOSPC, EDQUOT…): not the job's failure; nothing is recorded. */
function localWriteFailure(id: string, e: unknown): OdenessError {
  const why = `cannot write the bundle of job ${id} into the output directory (${(e as Error).message})`;
  const then = 'the result stays in the result bucket: rerun the same command once this is fixed';
  return new OdenessError(`${why}; ${then}`, { cause: e });
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
    if (opts.ackWaitMs !== undefined && !(opts.ackWaitMs >= 1000))
      throw new OdenessError(`NATS ack wait must be at least 1000 ms, got ${opts.ackWaitMs}`);
    if (opts.maxDeliver !== undefined && !(Number.isInteger(opts.maxDeliver) && opts.maxDeliver >= 1))
      throw new OdenessError(`NATS max deliver must be a positive integer, got ${opts.maxDeliver}`);
    const nc = await connectNats({ ...opts, name: opts.name ?? `odeness coordinator ${hostname()}/${process.pid}` });
    try {
      const h = await openCluster(nc, describeNats(opts), {
        ackWaitMs: opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS,
        maxDeliver: opts.maxDeliver ?? DEFAULT_MAX_DELIVER,
        retention: { ...DEFAULT_RETENTION, ...opts.retention },
        ttlGiven: opts.retention?.ttlMs !== undefined,
      });
      return new NatsTransport(h, opts);
    } catch (e) {
      await nc.close().catch(() => undefined);
      // No room for the buckets' size limits (the server's max_file_store, or its disk).
      if (isStorageFull(e))
        throw await storageFullError(undefined, describeNats(opts), `creating the buckets: ${(e as Error).message}`);
      throw e;
    }
  }

  async run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void> {
    const { nc, jsm, kv } = this.h;
    // onnx: fields: workers fetch the files' bytes from the object store by hash (field-store.ts).
    await uploadFieldFiles(this.h.os, pendingFieldFiles(jobs), {
      signal,
      onUpload: (file, bytes) => sink.log('info', `field file ${file} (${bytes} bytes) put into the object store`),
    });
    const maxDeliver = this.opts.maxDeliver ?? DEFAULT_MAX_DELIVER;
    const ackWaitMs = this.opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    /** How long an exhausted-deliveries failure waits for silence from workers before it is recorded. */
    const exhaustedGraceMs = Math.max(10_000, 3 * ackWaitMs);
    const wanted = new Map<string, Wanted>(jobs.map((p) => [p.job.id, { job: p.job, attempt: p.attempt }]));
    const busy = new Set<string>();
    const lastEventAt = new Map<string, number>();
    const heldFailures = new Map<string, ResultMessage>();
    const warned = new Set<string>();
    const refusals = new RefusalTracker(this.opts.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS, PROTOCOL_VERSION);
    const refusedByAll: string[] = [];
    const requeued = new Map<string, { stamp: string; times: number }>();
    let fatal: Error | undefined;
    let resolveAll!: () => void;
    const allDone = new Promise<void>((r) => (resolveAll = r));
    const checkDone = () => {
      if (wanted.size === 0 || fatal) resolveAll();
    };
    const onAbort = () => resolveAll();
    signal.addEventListener('abort', onAbort, { once: true });
    let lastActivity = Date.now();
    const warnOnce = (key: string, message: string) => {
      if (warned.has(key)) return;
      warned.add(key);
      sink.log('warn', message);
    };

    /** Why a stored result is not one this run can take, or undefined if it is. */
    const mismatch = (key: string, msg: ResultMessage, w: Wanted): string | undefined => {
      const r = msg.result;
      if (this.opts.jobKey && !resultAuthentic(this.opts.jobKey, msg))
        return "it is not sealed with the cluster's job key (an unauthenticated result)";
      if (r.id !== key) return `it is stored under ${key} but names job ${r.id}`;
      if (!sameJob(r.job, w.job)) return 'its job parameters differ from the planned job';
      if (r.status === 'done' && !msg.bundle?.startsWith(`${r.id}.`))
        return `its bundle name ${JSON.stringify(msg.bundle)} is not one of this job's runs`;
      return undefined;
    };

    const commit = async (result: JobResult, tmp?: string): Promise<void> => {
      for (let tries = 1; ; tries++) {
        try {
          await sink.finished(result, tmp);
          return;
        } catch (e) {
          if (tries >= COMMIT_TRIES || signal.aborted) {
            throw new OdenessError(
              `cannot record the result of job ${result.id} in the output directory (${(e as Error).message}); it stays in the result bucket: rerun the same command once this is fixed`,
              { cause: e },
            );
          }
          sink.log('warn', `recording the result of ${result.id} failed (${(e as Error).message}); retrying`);
          await new Promise((r) => setTimeout(r, 500 * tries));
        }
      }
    };

    /** Take a result of the bucket if it is one this run waits for. Idempotent. */
    const consider = async (key: string, msg: ResultMessage): Promise<void> => {
      const r = msg.result;
      const w = wanted.get(key);
      if (!w || busy.has(key) || fatal) return;
      const why = mismatch(key, msg, w);
      if (why) {
        warnOnce(
          `${key}:${r.timings.finishedAt}:${r.worker}`,
          `ignoring a result under ${key} from ${r.worker}: ${why}`,
        );
        // The bucket is create only: clear the forged entry so that the job's genuine result can be stored.
        await purgeResult(jsm, key).catch(() => undefined);
        return;
      }
      // A failed result from before a --retry-failed rerun is stale; a done result is always welcome.
      if (r.status === 'failed' && r.attempt < w.attempt) return;
      lastActivity = Date.now();
      if (r.status === 'failed' && msg.exhausted && refusals.has(key)) return requeueRefused(key, w, r);
      if (r.status === 'failed' && msg.exhausted) {
        // Held until the job shows no sign of life: a run still going may yet finish done.
        if (!heldFailures.has(key)) lastEventAt.set(key, Math.max(lastEventAt.get(key) ?? 0, Date.now()));
        heldFailures.set(key, msg);
        // Kept in memory meanwhile: the key is cleared so that a late genuine done can be stored (create only).
        await purgeResult(jsm, key).catch(() => undefined);
        return;
      }
      heldFailures.delete(key);
      busy.add(key);
      try {
        let tmp: string | undefined;
        let result: JobResult = r;
        if (r.status === 'done') {
          tmp = await sink.tempBundleDir(r.id);
          try {
            const sealed = this.opts.jobKey
              ? { sealed: { nuid: msg.bundleNuid!, bytes: msg.bundleBytes!, digest: msg.bundleDigest! } }
              : {};
            const maxBytes = this.opts.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_MB * 2 ** 20;
            // Forged object metadata fails the job at once (BundleRefused); only connection trouble is retried.
            const bytes = await retrying(
              `download bundle ${msg.bundle}`,
              () => fetchBundle(this.h, { name: msg.bundle!, ...sealed }, { maxBytes, signal }),
              {
                signal,
                retryIf: (e) => !(e instanceof BundleRefused),
              },
            );
            await unpackBundle(bytes, tmp);
          } catch (e) {
            await sink.discard(tmp);
            tmp = undefined;
            if (signal.aborted) return;
            if (isLocalFsError(e)) throw localWriteFailure(r.id, e);
            result = {
              ...r,
              status: 'failed',
              error: `job finished on ${r.worker} but its bundle could not be fetched: ${(e as Error).message}`,
            };
            delete result.metrics;
          }
        }
        await commit(result, tmp);
        wanted.delete(key);
        checkDone();
      } catch (e) {
        fatal ??= e as Error;
        checkDone();
      } finally {
        busy.delete(key);
      }
    };
    /**
     * Deliveries that ran out while workers refused the job were no runs: queue it afresh, allowing one
     * more delivery per refusal so far, at most MAX_REFUSAL_REQUEUES times, once per stored failure.
     */
    const requeueRefused = async (key: string, w: Wanted, r: JobResult): Promise<void> => {
      const stamp = `${r.worker}@${r.timings.finishedAt}`;
      const seen = requeued.get(key) ?? { stamp: '', times: 0 };
      if (seen.stamp === stamp) return;
      requeued.set(key, { stamp, times: seen.times + 1 });
      if (seen.times >= MAX_REFUSAL_REQUEUES) return consider(key, { v: PROTOCOL_VERSION, result: r });
      busy.add(key);
      try {
        sink.log('info', `job ${key}: its deliveries ran out while workers refused it; queued again`);
        await purgeJob(jsm, key);
        // The worker that recorded it takes jobs; the new message allows as many more deliveries as were refused.
        refusals.active(r.worker);
        const more = Math.min(1000, maxDeliver + refusals.count(key));
        const opts = { maxDeliver: more, ...(this.opts.jobKey ? { jobKey: this.opts.jobKey } : {}) };
        await retrying(`publish job ${key}`, () => enqueueJob(this.h, w.job, w.attempt, opts), { signal });
      } catch (e) {
        sink.log('warn', `job ${key}: ${(e as Error).message}`);
      } finally {
        busy.delete(key);
      }
    };
    const considerEntry = (e: KvEntry) => {
      let m: ResultMessage | undefined;
      try {
        m = decodeEntry(e);
      } catch (err) {
        if (wanted.has(e.key))
          warnOnce(`${e.key}:${e.revision}`, `ignoring an unreadable result under ${e.key}: ${(err as Error).message}`);
        return;
      }
      if (m) void consider(e.key, m);
    };

    // 1. Watch the result bucket for updates (the current values are read per job below: no replay of
    //    the whole bucket). Restarted after reconnects: its ephemeral consumer may not survive a server restart.
    let watcher: { stop(): void } | undefined;
    const startWatch = async (updatesOnly: boolean) => {
      watcher?.stop();
      const it = await kv.watch({
        ignoreDeletes: true,
        ...(updatesOnly ? { include: KvWatchInclude.UpdatesOnly } : {}),
      });
      watcher = it;
      void (async () => {
        for await (const e of it) if (wanted.has(e.key)) considerEntry(e);
      })().catch(() => undefined);
    };
    await startWatch(true);
    this.closers.push(() => watcher?.stop());

    // 2. Worker start/progress events: progress for the user, and signs of life for held failures.
    //    With a job key only sealed events count, each worker's send times increasing (no replays).
    const lastEventTime = new Map<string, number>();
    const freshEvent = (ev: EventMessage): boolean => {
      if (!eventAuthentic(this.opts.jobKey!, ev)) return false;
      const k = `${ev.id} ${ev.worker}`;
      if (ev.at! <= (lastEventTime.get(k) ?? 0)) return false;
      lastEventTime.set(k, ev.at!);
      return true;
    };
    const events: Subscription = nc.subscribe(`${EVENT_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        if (err) return;
        try {
          const ev = decodeEventMessage(m.data);
          if (!wanted.has(ev.id)) return;
          if (this.opts.jobKey && !freshEvent(ev)) return; // unsealed, spoofed or replayed: no sign of life
          lastActivity = Date.now();
          lastEventAt.set(ev.id, Date.now());
          if (ev.kind === 'storage') {
            void storageFullError(
              jsm,
              maskUrl(this.opts.url),
              `worker ${ev.worker}: ${ev.error ?? 'storage full'}`,
            ).then((e) => {
              fatal ??= e;
              checkDone();
            });
            return;
          }
          refusals.active(ev.worker);
          if (ev.kind === 'start') refusals.forget(ev.id);
          if (ev.kind === 'start') sink.started(ev.id, ev.worker);
          else if (ev.progress) sink.progress(ev.id, ev.worker, ev.progress);
        } catch {
          /* events are best-effort */
        }
      },
    });
    this.closers.push(() => events.unsubscribe());
    const refused: Subscription = nc.subscribe(`${REFUSAL_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        const n = err ? undefined : decodeRefusal(m.data);
        if (!n || !wanted.has(n.id)) return;
        const line = refusals.refused(n);
        if (line) sink.log('warn', line);
      },
    });
    this.closers.push(() => refused.unsubscribe());

    // 3. Reconnects: restart the watcher; after an outage, replay the current values too (`consider` is idempotent).
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect')
          sink.log('warn', `lost the connection to NATS at ${maskUrl(this.opts.url)}; reconnecting…`);
        if (s.type === 'reconnect') {
          sink.log('info', `reconnected to NATS at ${maskUrl(this.opts.url)}`);
          await retrying('restart the result watcher', () => startWatch(false), { signal }).catch((e) =>
            sink.log('warn', (e as Error).message),
          );
        }
      }
    })().catch(() => undefined);

    // 4. Publish what the bucket does not already answer.
    const publishOne = async (w: Wanted) => {
      const entry = await retrying(`read result ${w.job.id}`, () => kv.get(w.job.id), { signal });
      let have: ResultMessage | undefined;
      try {
        have = entry ? decodeEntry(entry) : undefined;
      } catch {
        have = undefined;
      }
      const why = have && mismatch(w.job.id, have, w);
      if (have && why)
        warnOnce(
          `${w.job.id}:${have.result.timings.finishedAt}:${have.result.worker}`,
          `ignoring a result under ${w.job.id} from ${have.result.worker}: ${why}`,
        );
      if (have && !why && (have.result.status === 'done' || have.result.attempt >= w.attempt)) {
        await consider(w.job.id, have);
        if (!wanted.has(w.job.id) || heldFailures.has(w.job.id)) return;
      }
      // A forged entry or a failure of an earlier attempt stands in the way of this run's result (create only).
      if (entry && (why || !have || (have.result.status === 'failed' && have.result.attempt < w.attempt))) {
        await retrying(`clear result ${w.job.id}`, () => purgeResult(jsm, w.job.id), { signal });
      }
      const opts = { maxDeliver, ...(this.opts.jobKey ? { jobKey: this.opts.jobKey } : {}) };
      const done = await retrying(`publish job ${w.job.id}`, () => enqueueJob(this.h, w.job, w.attempt, opts), {
        signal,
        retryIf: (e) => !isStorageFull(e),
      }).catch(async (e) => {
        throw isStorageFull(e)
          ? await storageFullError(jsm, maskUrl(this.opts.url), `publishing a job: ${(e as Error).message}`)
          : e;
      });
      if (done === 'replaced')
        sink.log(
          'info',
          `job ${w.job.id}: replaced a queued message that was not this coordinator's (another version, job key or attempt)`,
        );
    };
    const queue = [...wanted.values()];
    const lanes = Array.from({ length: Math.min(32, queue.length) }, async () => {
      while (queue.length > 0 && !signal.aborted && !fatal) await publishOne(queue.shift()!);
    });
    await Promise.all(lanes);
    sink.log(
      'info',
      `${jobs.length} job(s) queued on ${this.description}; waiting for workers (odeness worker --nats …)`,
    );

    // Jobs every live worker refused: not run, not recorded; reported when the run ends (their messages go).
    const giveUpRefused = (id: string) => {
      if (!wanted.has(id) || busy.has(id)) return;
      wanted.delete(id);
      refusedByAll.push(id);
      void purgeJob(jsm, id).catch(() => undefined);
      checkDone();
    };

    // 5. Held failures are recorded once their job has been silent for the grace period.
    const holds = setInterval(() => {
      for (const [id, msg] of heldFailures) {
        if (Date.now() - (lastEventAt.get(id) ?? 0) < exhaustedGraceMs) continue;
        heldFailures.delete(id);
        void consider(id, { ...msg, exhausted: false });
      }
      for (const id of refusals.refusedByAll()) giveUpRefused(id);
    }, 250);
    this.closers.push(() => clearInterval(holds));

    /** A wanted job with neither a queued message nor a result (study clean, a purged stream) is queued again. */
    const requeueIfLost = async (id: string) => {
      const w = wanted.get(id);
      if (!w || busy.has(id) || heldFailures.has(id)) return;
      if ((await queuedMessage(jsm, id).catch(() => 'unknown')) !== undefined) return;
      const again = await kv.get(id).catch(() => null);
      if (again?.operation === 'PUT') return considerEntry(again);
      if (!wanted.has(id)) return;
      sink.log(
        'warn',
        `job ${id} is no longer queued and has no result (removed by study clean, or the stream was purged): queuing it again`,
      );
      await publishOne(w).catch((err: Error) => sink.log('warn', err.message));
    };

    // 6. Periodic sweep: catches results a watcher missed, and tells the user when nothing happens.
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
          if (e?.operation === 'PUT') considerEntry(e);
          else await requeueIfLost(id);
        }
        if (!warnedIdle && Date.now() - lastActivity > 15_000 && wanted.size > 0) {
          warnedIdle = true;
          const info = await jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
          const waiting = info?.num_waiting ?? 0;
          sink.log(
            'warn',
            waiting === 0
              ? `no worker is pulling jobs from ${maskUrl(this.opts.url)}; start one with: odeness worker --nats ${maskUrl(this.opts.url)}`
              : `no progress for 15 s (${waiting} worker pull request(s) waiting)`,
          );
        }
      })().catch(() => undefined);
    }, 5_000);
    this.closers.push(() => clearInterval(sweep));

    checkDone();
    await allDone;
    signal.removeEventListener('abort', onAbort);
    // Let in-flight commits settle before the store closes.
    while (busy.size > 0) await new Promise((r) => setTimeout(r, 20));
    if (fatal) throw fatal;
    if (refusedByAll.length > 0 && !signal.aborted) {
      throw new OdenessError(
        `${refusedByAll.length} job(s) were refused by every worker that saw them, and nothing was recorded for them: ${refusals.describe(refusedByAll).join('; ')}. Fix the workers (or start fitting ones) and rerun the same command`,
      );
    }
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0)) await Promise.resolve(c()).catch(() => undefined);
    await this.h.nc.drain().catch(() => this.h.nc.close());
  }
}
