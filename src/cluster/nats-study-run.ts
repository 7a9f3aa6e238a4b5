/**
 * One run of a study on the NATS transport, coordinator side (the transport,
 * nats-coordinator.ts, makes one per `run`): the wanted jobs and everything
 * known about them while the run lasts. Its steps:
 *   1. watch the result bucket for updates;
 *   2. listen to worker events (progress, signs of life), alive notices and refusals;
 *   3. restart the watcher after reconnects;
 *   4. publish what the bucket does not already answer;
 *   5. record held failures once their job is silent, report jobs every worker refuses;
 *   6. sweep now and then for results a watcher missed, lost jobs and idleness.
 *
 * Every result is checked against the planned job (same job, a current
 * attempt, a bundle named for that job's run) before it is taken; a job is
 * dropped from the wanted set only once its result is committed to the
 * output directory (a commit that keeps failing ends the run with an error;
 * the result stays in the bucket for the rerun). A failure recorded because
 * a job's deliveries ran out is held while the job still shows signs of life
 * (events from a worker), so a late genuine `done` supersedes it.
 */
import type { Msg } from '@nats-io/transport-node';
import { KvWatchInclude, type KvEntry } from '@nats-io/kv';
import { OdenessError } from '../errors.js';
import type { JobSink, PendingJob } from '../study/transport.js';
import type { Job, JobResult } from '../study/types.js';
import { decodeEventMessage, isLocalFsError, unpackBundle } from './codec.js';
import { enqueueJob, purgeJob, queuedJobIds, queuedMessage } from './job-queue.js';
import { PROTOCOL_VERSION, type EventMessage, type ResultMessage } from './protocol.js';
import {
  ALIVE_SUBJECT,
  decodeAlive,
  decodeRefusal,
  REFUSAL_SUBJECT_PREFIX,
  RefusalTracker,
  type AliveNotice,
} from './refusals.js';
import { maskUrl } from './nats-connect.js';
import {
  CONSUMER,
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_MAX_DELIVER,
  EVENT_SUBJECT_PREFIX,
  retrying,
  STREAM,
  type ClusterHandles,
  type Retention,
} from './nats-resources.js';
import { decodeEntry, purgeResult, resultKeys, sameJob } from './nats-results.js';
import { BundleRefused, DEFAULT_MAX_BUNDLE_MB, fetchBundle, inlineBundle } from './bundle-fetch.js';
import { aliveAuthentic, eventAuthentic, resultAuthentic } from './result-auth.js';
import { isStorageFull, storageFullError } from './storage-full.js';
import type { NatsConnectOptions } from './nats-connect.js';

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

/** Result ids re-read per 5 s sweep (a safety net behind the KV watcher). */
const SWEEP_BATCH = 200;

export const DEFAULT_REFUSAL_GRACE_MS = 15_000;

/**
 * Fresh queuings of a job whose deliveries ran out while workers refused it (each a race a fitting worker
 * may lose).
 */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class StudyRun {
  private readonly wanted: Map<string, Wanted>;
  /** Jobs whose result is being taken (downloaded, committed) or requeued right now. */
  private readonly busy = new Set<string>();
  private readonly lastEventAt = new Map<string, number>();
  private readonly heldFailures = new Map<string, ResultMessage>();
  private readonly warned = new Set<string>();
  private readonly refusals: RefusalTracker;
  private readonly refusedByAll: string[] = [];
  private readonly requeued = new Map<string, { stamp: string; times: number }>();
  /** The last sealed event time per job and worker (replays are ignored). */
  private readonly lastEventTime = new Map<string, number>();
  private readonly maxDeliver: number;
  /** How long an exhausted-deliveries failure waits for silence from workers before it is recorded. */
  private readonly exhaustedGraceMs: number;
  private fatal: Error | undefined;
  private resolveAll!: () => void;
  private readonly allDone = new Promise<void>((r) => (this.resolveAll = r));
  private lastActivity = Date.now();
  private watcher: { stop(): void } | undefined;
  private warnedIdle = false;
  private cursor = 0;
  /** Wanted jobs without a queued message at the last sweep. */
  private unqueued = new Set<string>();

  constructor(
    private readonly h: ClusterHandles,
    private readonly opts: NatsStudyOptions,
    private readonly description: string,
    jobs: readonly PendingJob[],
    private readonly sink: JobSink,
    private readonly signal: AbortSignal,
    /** Called by the transport's close: subscriptions, timers, the watcher. */
    private readonly closers: (() => Promise<void> | void)[],
  ) {
    this.maxDeliver = opts.maxDeliver ?? DEFAULT_MAX_DELIVER;
    this.exhaustedGraceMs = Math.max(10_000, 3 * (opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS));
    this.wanted = new Map(jobs.map((p) => [p.job.id, { job: p.job, attempt: p.attempt }]));
    this.refusals = new RefusalTracker(opts.refusalGraceMs ?? DEFAULT_REFUSAL_GRACE_MS, PROTOCOL_VERSION);
  }

  async execute(): Promise<void> {
    const onAbort = () => this.resolveAll();
    this.signal.addEventListener('abort', onAbort, { once: true });
    await this.startWatch(true);
    this.closers.push(() => this.watcher?.stop());
    this.subscribe();
    this.watchConnection();
    const count = this.wanted.size;
    await this.publishAll();
    this.sink.log(
      'info',
      `${count} job(s) queued on ${this.description}; waiting for workers (odeness worker --nats …)`,
    );
    this.startTimers();
    this.checkDone();
    await this.allDone;
    this.signal.removeEventListener('abort', onAbort);
    // Let in-flight commits settle before the store closes.
    while (this.busy.size > 0) await sleep(20);
    if (this.fatal) throw this.fatal;
    if (this.refusedByAll.length > 0 && !this.signal.aborted) {
      throw new OdenessError(
        `${this.refusedByAll.length} job(s) were refused by every worker that saw them, and nothing was recorded ` +
          `for them: ${this.refusals.describe(this.refusedByAll).join('; ')}. ` +
          'Fix the workers (or start fitting ones) and rerun the same command',
      );
    }
  }

  private checkDone(): void {
    if (this.wanted.size === 0 || this.fatal) this.resolveAll();
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.sink.log('warn', message);
  }

  private warnIgnored(key: string, msg: ResultMessage, why: string): void {
    const r = msg.result;
    this.warnOnce(
      `${key}:${r.timings.finishedAt}:${r.worker}`,
      `ignoring a result under ${key} from ${r.worker}: ${why}`,
    );
  }

  /** Why a stored result is not one this run can take, or undefined if it is. */
  private mismatch(key: string, msg: ResultMessage, w: Wanted): string | undefined {
    const r = msg.result;
    if (this.opts.jobKey && !resultAuthentic(this.opts.jobKey, msg))
      return "it is not sealed with the cluster's job key (an unauthenticated result)";
    if (r.id !== key) return `it is stored under ${key} but names job ${r.id}`;
    if (!sameJob(r.job, w.job)) return 'its job parameters differ from the planned job';
    if (r.status === 'done' && !msg.bundle?.startsWith(`${r.id}.`))
      return `its bundle name ${JSON.stringify(msg.bundle)} is not one of this job's runs`;
    return undefined;
  }

  // --- taking results -------------------------------------------------------------------------------------------

  /** Take a result of the bucket if it is one this run waits for. Idempotent. */
  private async consider(key: string, msg: ResultMessage): Promise<void> {
    const r = msg.result;
    const w = this.wanted.get(key);
    if (!w || this.busy.has(key) || this.fatal) return;
    const why = this.mismatch(key, msg, w);
    if (why) {
      this.warnIgnored(key, msg, why);
      // The bucket is create only: clear the forged entry so that the job's genuine result can be stored.
      await purgeResult(this.h.jsm, key).catch(() => undefined);
      return;
    }
    // A failed result from before a --retry-failed rerun is stale; a done result is always welcome.
    if (r.status === 'failed' && r.attempt < w.attempt) return;
    this.lastActivity = Date.now();
    if (r.status === 'failed' && msg.exhausted && this.refusals.has(key)) return this.requeueRefused(key, w, r);
    if (r.status === 'failed' && msg.exhausted) return this.holdFailure(key, msg);
    this.heldFailures.delete(key);
    this.busy.add(key);
    try {
      const taken = await this.withBundle(msg);
      if (!taken) return;
      await this.commit(taken.result, taken.tmp);
      this.wanted.delete(key);
      this.checkDone();
    } catch (e) {
      this.fatal ??= e as Error;
      this.checkDone();
    } finally {
      this.busy.delete(key);
    }
  }

  /** Held until the job shows no sign of life: a run still going may yet finish done. */
  private async holdFailure(key: string, msg: ResultMessage): Promise<void> {
    if (!this.heldFailures.has(key)) this.lastEventAt.set(key, Math.max(this.lastEventAt.get(key) ?? 0, Date.now()));
    this.heldFailures.set(key, msg);
    // Kept in memory meanwhile: the key is cleared so that a late genuine done can be stored (create only).
    await purgeResult(this.h.jsm, key).catch(() => undefined);
  }

  /**
   * The result to commit with its bundle unpacked into a temp dir (a done result), or as a failure when the
   * bundle cannot be fetched; undefined when the run was aborted meanwhile.
   */
  private async withBundle(msg: ResultMessage): Promise<{ result: JobResult; tmp?: string } | undefined> {
    const r = msg.result;
    if (r.status !== 'done') return { result: r };
    const { signal, sink } = this;
    const tmp = await sink.tempBundleDir(r.id);
    try {
      const key = this.opts.jobKey;
      const sealed = key
        ? { sealed: { nuid: msg.bundleNuid!, bytes: msg.bundleBytes!, digest: msg.bundleDigest! } }
        : {};
      const maxBytes = this.opts.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_MB * 2 ** 20;
      const { bundleData: data, bundleBytes: bytes, bundleDigest: digest } = msg;
      // Forged object metadata fails the job at once (BundleRefused); only connection trouble is retried.
      const archive = data
        ? inlineBundle({ name: msg.bundle!, data, bytes, digest }, { maxBytes })
        : await retrying(
            `download bundle ${msg.bundle}`,
            () => fetchBundle(this.h, { name: msg.bundle!, ...sealed }, { maxBytes, signal }),
            { signal, retryIf: (e) => !(e instanceof BundleRefused) },
          );
      await unpackBundle(archive, tmp);
      return { result: r, tmp };
    } catch (e) {
      await sink.discard(tmp);
      if (signal.aborted) return undefined;
      if (isLocalFsError(e)) throw localWriteFailure(r.id, e);
      const error = `job finished on ${r.worker} but its bundle could not be fetched: ${(e as Error).message}`;
      const result: JobResult = { ...r, status: 'failed', error };
      delete result.metrics;
      return { result };
    }
  }

  private async commit(result: JobResult, tmp?: string): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await this.sink.finished(result, tmp, tmp !== undefined);
        return;
      } catch (e) {
        if (tries >= COMMIT_TRIES || this.signal.aborted) {
          throw new OdenessError(
            `cannot record the result of job ${result.id} in the output directory (${(e as Error).message}); ` +
              'it stays in the result bucket: rerun the same command once this is fixed',
            { cause: e },
          );
        }
        this.sink.log('warn', `recording the result of ${result.id} failed (${(e as Error).message}); retrying`);
        await sleep(500 * tries);
      }
    }
  }

  /**
   * Deliveries that ran out while workers refused the job were no runs: queue it afresh, allowing one
   * more delivery per refusal so far, at most MAX_REFUSAL_REQUEUES times, once per stored failure.
   */
  private async requeueRefused(key: string, w: Wanted, r: JobResult): Promise<void> {
    const stamp = `${r.worker}@${r.timings.finishedAt}`;
    const seen = this.requeued.get(key) ?? { stamp: '', times: 0 };
    if (seen.stamp === stamp) return;
    this.requeued.set(key, { stamp, times: seen.times + 1 });
    if (seen.times >= MAX_REFUSAL_REQUEUES) return this.consider(key, { v: PROTOCOL_VERSION, result: r });
    this.busy.add(key);
    try {
      this.sink.log('info', `job ${key}: its deliveries ran out while workers refused it; queued again`);
      await purgeJob(this.h.jsm, key);
      // The worker that recorded it takes jobs; the new message allows as many more deliveries as were refused.
      this.refusals.active(r.worker);
      const more = Math.min(1000, this.maxDeliver + this.refusals.count(key));
      const opts = { maxDeliver: more, ...(this.opts.jobKey ? { jobKey: this.opts.jobKey } : {}) };
      await retrying(`publish job ${key}`, () => enqueueJob(this.h, w.job, w.attempt, opts), {
        signal: this.signal,
      });
    } catch (e) {
      this.sink.log('warn', `job ${key}: ${(e as Error).message}`);
    } finally {
      this.busy.delete(key);
    }
  }

  private considerEntry(e: KvEntry): void {
    // Taken or being taken (the watcher and a sweep can both bring it): no second decode.
    if (!this.wanted.has(e.key) || this.busy.has(e.key)) return;
    let m: ResultMessage | undefined;
    try {
      m = decodeEntry(e);
    } catch (err) {
      if (this.wanted.has(e.key)) {
        const why = `ignoring an unreadable result under ${e.key}: ${(err as Error).message}`;
        this.warnOnce(`${e.key}:${e.revision}`, why);
      }
      return;
    }
    if (m) void this.consider(e.key, m);
  }

  // --- 1–3. watching ---------------------------------------------------------------------------------------------

  /**
   * Watch the result bucket for updates (the current values are read per job when publishing: no replay of
   * the whole bucket). Restarted after reconnects: its ephemeral consumer may not survive a server restart.
   */
  private async startWatch(updatesOnly: boolean): Promise<void> {
    this.watcher?.stop();
    const it = await this.h.kv.watch({
      ignoreDeletes: true,
      ...(updatesOnly ? { include: KvWatchInclude.UpdatesOnly } : {}),
    });
    this.watcher = it;
    void (async () => {
      for await (const e of it) if (this.wanted.has(e.key)) this.considerEntry(e);
    })().catch(() => undefined);
  }

  /** Worker events (progress for the user, signs of life for held failures) and refusals. */
  private subscribe(): void {
    const events = this.h.nc.subscribe(`${EVENT_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        if (!err) this.onEvent(m);
      },
    });
    this.closers.push(() => events.unsubscribe());
    const refused = this.h.nc.subscribe(`${REFUSAL_SUBJECT_PREFIX}*`, {
      callback: (err, m) => {
        const n = err ? undefined : decodeRefusal(m.data);
        if (!n || !this.wanted.has(n.id)) return;
        const line = this.refusals.refused(n);
        if (line) this.sink.log('warn', line);
      },
    });
    this.closers.push(() => refused.unsubscribe());
    const alive = this.h.nc.subscribe(ALIVE_SUBJECT, {
      callback: (err, m) => {
        const n = err ? undefined : decodeAlive(m.data);
        if (n && (!this.opts.jobKey || this.freshAlive(n))) this.refusals.alive(n.worker);
      },
    });
    this.closers.push(() => alive.unsubscribe());
  }

  /** With a job key only sealed alive notices count, each worker's send times increasing (no replays). */
  private freshAlive(n: AliveNotice): boolean {
    if (!aliveAuthentic(this.opts.jobKey!, n)) return false;
    const k = `alive ${n.worker}`;
    if (n.at <= (this.lastEventTime.get(k) ?? 0)) return false;
    this.lastEventTime.set(k, n.at);
    return true;
  }

  /** With a job key only sealed events count, each worker's send times increasing (no replays). */
  private freshEvent(ev: EventMessage): boolean {
    if (!eventAuthentic(this.opts.jobKey!, ev)) return false;
    const k = `${ev.id} ${ev.worker}`;
    if (ev.at! <= (this.lastEventTime.get(k) ?? 0)) return false;
    this.lastEventTime.set(k, ev.at!);
    return true;
  }

  private onEvent(m: Msg): void {
    try {
      const ev = decodeEventMessage(m.data);
      if (!this.wanted.has(ev.id)) return;
      if (this.opts.jobKey && !this.freshEvent(ev)) return; // unsealed, spoofed or replayed: no sign of life
      this.lastActivity = Date.now();
      this.lastEventAt.set(ev.id, Date.now());
      if (ev.kind === 'storage') {
        const why = `worker ${ev.worker}: ${ev.error ?? 'storage full'}`;
        void storageFullError(this.h.jsm, maskUrl(this.opts.url), why).then((e) => {
          this.fatal ??= e;
          this.checkDone();
        });
        return;
      }
      this.refusals.active(ev.worker);
      if (ev.kind === 'start') this.refusals.forget(ev.id);
      if (ev.kind === 'start') this.sink.started(ev.id, ev.worker);
      else if (ev.progress) this.sink.progress(ev.id, ev.worker, ev.progress);
    } catch {
      /* events are best-effort */
    }
  }

  /** Reconnects: restart the watcher; after an outage, replay the current values too (`consider` is idempotent). */
  private watchConnection(): void {
    const url = maskUrl(this.opts.url);
    void (async () => {
      for await (const s of this.h.nc.status()) {
        if (s.type === 'disconnect') this.sink.log('warn', `lost the connection to NATS at ${url}; reconnecting…`);
        if (s.type === 'reconnect') {
          this.sink.log('info', `reconnected to NATS at ${url}`);
          await retrying('restart the result watcher', () => this.startWatch(false), { signal: this.signal }).catch(
            (e) => this.sink.log('warn', (e as Error).message),
          );
        }
      }
    })().catch(() => undefined);
  }

  // --- 4. publishing -----------------------------------------------------------------------------------------------

  /**
   * One look at the queue, then one at the result bucket, instead of two requests per job: a job neither
   * queued then nor answered after is one nobody runs (a worker stores its result before it acks), and is
   * published without looking again. The others take the careful path, as does every job when a look fails.
   */
  private async publishAll(): Promise<void> {
    const queued = await queuedJobIds(this.h.jsm).catch(() => undefined);
    const stored = queued && (await resultKeys(this.h.jsm).catch(() => undefined));
    const unseen = (id: string) => stored !== undefined && !queued!.has(id) && !stored.has(id);
    const queue = [...this.wanted.values()];
    const lanes = Array.from({ length: Math.min(32, queue.length) }, async () => {
      while (queue.length > 0 && !this.signal.aborted && !this.fatal) {
        const w = queue.shift()!;
        await (unseen(w.job.id) ? this.enqueue(w, true) : this.publishOne(w));
      }
    });
    await Promise.all(lanes);
  }

  /** Publish a job unless the bucket already answers it. */
  private async publishOne(w: Wanted): Promise<void> {
    const { signal } = this;
    const id = w.job.id;
    const entry = await retrying(`read result ${id}`, () => this.h.kv.get(id), { signal });
    let have: ResultMessage | undefined;
    try {
      have = entry ? decodeEntry(entry) : undefined;
    } catch {
      have = undefined;
    }
    const why = have && this.mismatch(id, have, w);
    if (have && why) this.warnIgnored(id, have, why);
    if (have && !why && (have.result.status === 'done' || have.result.attempt >= w.attempt)) {
      await this.consider(id, have);
      if (!this.wanted.has(id) || this.heldFailures.has(id)) return;
    }
    // A forged entry or a failure of an earlier attempt stands in the way of this run's result (create only).
    if (entry && (why || !have || (have.result.status === 'failed' && have.result.attempt < w.attempt))) {
      await retrying(`clear result ${id}`, () => purgeResult(this.h.jsm, id), { signal });
    }
    await this.enqueue(w);
  }

  /** Queue a job; `seenAbsent`: the queue was just seen without it, so the first try need not look again. */
  private async enqueue(w: Wanted, seenAbsent = false): Promise<void> {
    const opts = { maxDeliver: this.maxDeliver, ...(this.opts.jobKey ? { jobKey: this.opts.jobKey } : {}) };
    let tries = 0; // a retry always looks: the first try's message may be there
    const publish = () => enqueueJob(this.h, w.job, w.attempt, { ...opts, look: !seenAbsent || tries++ > 0 });
    const done = await retrying(`publish job ${w.job.id}`, publish, {
      signal: this.signal,
      retryIf: (e) => !isStorageFull(e),
    }).catch(async (e) => {
      throw isStorageFull(e)
        ? await storageFullError(this.h.jsm, maskUrl(this.opts.url), `publishing a job: ${(e as Error).message}`)
        : e;
    });
    if (done === 'replaced') {
      const what = "replaced a queued message that was not this coordinator's (another version, job key or attempt)";
      this.sink.log('info', `job ${w.job.id}: ${what}`);
    }
  }

  // --- 5–6. timers -------------------------------------------------------------------------------------------------

  private startTimers(): void {
    const holds = setInterval(() => this.releaseHeld(), 250);
    this.closers.push(() => clearInterval(holds));
    const sweep = setInterval(() => void this.sweep().catch(() => undefined), 5_000);
    this.closers.push(() => clearInterval(sweep));
  }

  /** Held failures are recorded once their job has been silent for the grace period. */
  private releaseHeld(): void {
    for (const [id, msg] of this.heldFailures) {
      if (Date.now() - (this.lastEventAt.get(id) ?? 0) < this.exhaustedGraceMs) continue;
      this.heldFailures.delete(id);
      void this.consider(id, { ...msg, exhausted: false });
    }
    for (const id of this.refusals.refusedByAll()) this.giveUpRefused(id);
  }

  /** Jobs every live worker refused: not run, not recorded; reported when the run ends (their messages go). */
  private giveUpRefused(id: string): void {
    if (!this.wanted.has(id) || this.busy.has(id)) return;
    this.wanted.delete(id);
    this.refusedByAll.push(id);
    void purgeJob(this.h.jsm, id).catch(() => undefined);
    this.checkDone();
  }

  /**
   * Periodic sweep: catches results a watcher missed, and tells the user when nothing happens. A job whose
   * message is still queued has neither a result to catch (a worker acks only after storing it) nor been lost:
   * one look at the queue spares two requests per such job. Nor is a job that left the queue since the last
   * sweep: its result is on its way through the watcher (a coordinator behind on commits would fetch and decode
   * each twice).
   */
  private async sweep(): Promise<void> {
    const queued = await queuedJobIds(this.h.jsm).catch(() => undefined);
    const before = this.unqueued;
    this.unqueued = new Set([...this.wanted.keys()].filter((id) => queued && !queued.has(id)));
    const due = (id: string) => !this.busy.has(id) && (!queued || (before.has(id) && this.unqueued.has(id)));
    const ids = [...this.wanted.keys()].filter(due);
    this.cursor = this.cursor >= ids.length ? 0 : this.cursor;
    const slice = ids.slice(this.cursor, this.cursor + SWEEP_BATCH);
    this.cursor += SWEEP_BATCH;
    for (const id of slice) {
      if (this.signal.aborted) return;
      const e = await this.h.kv.get(id).catch(() => null);
      if (e?.operation === 'PUT') this.considerEntry(e);
      else await this.requeueIfLost(id);
    }
    if (!this.warnedIdle && Date.now() - this.lastActivity > 15_000 && this.wanted.size > 0) {
      this.warnedIdle = true;
      const info = await this.h.jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
      const waiting = info?.num_waiting ?? 0;
      const url = maskUrl(this.opts.url);
      this.sink.log(
        'warn',
        waiting === 0
          ? `no worker is pulling jobs from ${url}; start one with: odeness worker --nats ${url}`
          : `no progress for 15 s (${waiting} worker pull request(s) waiting)`,
      );
    }
  }

  /** A wanted job with neither a queued message nor a result (study clean, a purged stream) is queued again. */
  private async requeueIfLost(id: string): Promise<void> {
    const w = this.wanted.get(id);
    if (!w || this.busy.has(id) || this.heldFailures.has(id)) return;
    if ((await queuedMessage(this.h.jsm, id).catch(() => 'unknown')) !== undefined) return;
    const again = await this.h.kv.get(id).catch(() => null);
    if (again?.operation === 'PUT') return this.considerEntry(again);
    if (!this.wanted.has(id)) return;
    // A job workers kept refusing ran out of deliveries (JetStream stops offering it): no clean removed it.
    const why = this.refusals.has(id)
      ? `its deliveries ran out while workers refused it (${this.refusals.count(id)} refusal(s))`
      : 'removed by study clean, or the stream was purged';
    this.sink.log('warn', `job ${id} is no longer queued and has no result (${why}): queuing it again`);
    await this.publishOne(w).catch((err: Error) => this.sink.log('warn', err.message));
  }
}
