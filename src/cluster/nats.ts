/**
 * NATS transport, coordinator side, plus what both sides share: connecting
 * (masked URLs, fail-fast, clear auth errors) and the JetStream resources.
 *
 *   stream   ODENESS_JOBS      work-queue retention, subjects odeness.jobs.<id>,
 *                              msg id <id>.<attempt> (JetStream drops duplicates
 *                              published within its 2-minute window)
 *   consumer odeness-workers   durable pull consumer shared by every worker:
 *                              explicit ack, ack wait (default 30 s, kept alive
 *                              by workers with in-progress acks), max deliver 5
 *   KV       odeness-results   key <id> → ResultMessage (the result of record)
 *   objects  odeness-bundles   name <id> → BundleArchive of the job's bundle dir
 *   subject  odeness.events.<id>  start/progress from workers (core NATS, lossy)
 *
 * Exactly-once where it matters: a worker checks the KV before running a job
 * and acks only after the bundle and the result are stored, so a job whose
 * worker dies is redelivered and rerun, and a job that finished is never
 * rerun; duplicate results are possible (two deliveries racing) and the
 * coordinator keeps the first it sees.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { hostname } from 'node:os';
import { connect, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { OdenessError } from '../errors.js';
import type { Job, JobResult } from '../study/types.js';
import { decodeEventMessage, decodeJobMessage, decodeResultMessage, encode, PROTOCOL_VERSION, unpackBundle, type ResultMessage } from './codec.js';
import type { JobSink, PendingJob, Transport } from './transport.js';

export const STREAM = 'ODENESS_JOBS';
export const JOB_SUBJECT_PREFIX = 'odeness.jobs.';
export const CONSUMER = 'odeness-workers';
export const RESULTS_BUCKET = 'odeness-results';
export const BUNDLES_BUCKET = 'odeness-bundles';
export const EVENT_SUBJECT_PREFIX = 'odeness.events.';
export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_MAX_DELIVER = 5;
export const CONNECT_TIMEOUT_MS = 5_000;
/** JetStream API calls: short, since every call that matters is retried (a request sent while the server restarts is lost). */
const JS_TIMEOUT_MS = 4_000;
/** Result ids re-read per 5 s sweep (a safety net behind the KV watcher). */
const SWEEP_BATCH = 200;

export interface NatsConnectOptions {
  /** nats://host:4222 (tls://… for TLS); user:password@ or token@ in the URL is accepted and masked. */
  url: string;
  user?: string;
  password?: string;
  token?: string;
  /** PEM files. Giving any of them requires TLS. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Client name shown by the server's monitoring (never holds credentials). */
  name?: string;
  /** Handshake timeout of the first connection (default 5 s). */
  timeoutMs?: number;
}

export interface NatsStudyOptions extends NatsConnectOptions {
  /** How long a delivered job may go without an ack or in-progress ack before redelivery (default 30 s). */
  ackWaitMs?: number;
  /** Deliveries of one job before it is given up and recorded as failed (default 5). */
  maxDeliver?: number;
}

/** The URL with any user, password or token replaced by `***`. */
export function maskUrl(url: string): string {
  return url
    .split(',')
    .map((u) => u.replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`))
    .join(',');
}

/** A one-line description for logs: masked URL and the auth mode, never the secrets. */
export function describeNats(opts: NatsConnectOptions): string {
  const auth = opts.token !== undefined ? 'token auth' : opts.user !== undefined ? `user ${opts.user}` : /@/.test(opts.url) ? 'credentials in URL' : 'no auth';
  const tls = opts.tlsCa || opts.tlsCert || opts.tlsKey || /^tls:/i.test(opts.url) ? ', TLS' : '';
  return `${maskUrl(opts.url)} (${auth}${tls})`;
}

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@(.*)$/i;

/**
 * Split credentials out of the URL (a comma-separated list of servers is
 * accepted); explicit options win over the URL's.
 */
function resolveConnectOptions(opts: NatsConnectOptions): { servers: string[]; options: NodeConnectionOptions; secrets: string[] } {
  let user = opts.user;
  let pass = opts.password;
  let token = opts.token;
  const servers = opts.url.split(',').map((u) => u.trim()).filter(Boolean).map((server) => {
    const m = USERINFO.exec(server);
    if (!m) return server;
    const [, scheme = '', info = '', rest = ''] = m;
    const colon = info.indexOf(':');
    if (colon >= 0) {
      user ??= decodeURIComponent(info.slice(0, colon));
      pass ??= decodeURIComponent(info.slice(colon + 1));
    } else if (info !== '') token ??= decodeURIComponent(info);
    return scheme + rest;
  });
  if (servers.length === 0) throw new OdenessError('--nats: the NATS URL is empty');
  if (token !== undefined && (user !== undefined || pass !== undefined)) throw new OdenessError('give a NATS token or a user and password, not both');
  if ((user === undefined) !== (pass === undefined)) throw new OdenessError('give both a NATS user and a password (--user and --password)');
  const tlsFile = (flag: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      readFileSync(path);
    } catch (e) {
      throw new OdenessError(`${flag} ${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return path;
  };
  const caFile = tlsFile('--tls-ca', opts.tlsCa);
  const certFile = tlsFile('--tls-cert', opts.tlsCert);
  const keyFile = tlsFile('--tls-key', opts.tlsKey);
  if ((certFile === undefined) !== (keyFile === undefined)) throw new OdenessError('give both --tls-cert and --tls-key for a client certificate');
  const useTls = caFile !== undefined || certFile !== undefined || servers.some((u) => /^tls:\/\//i.test(u));
  const options: NodeConnectionOptions = {
    servers,
    name: opts.name ?? `odeness ${hostname()}/${process.pid}`,
    timeout: opts.timeoutMs ?? CONNECT_TIMEOUT_MS,
    // After the first connection, ride out server restarts for as long as it takes.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: false,
    ...(user !== undefined ? { user, pass: pass! } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(useTls ? { tls: { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) } } : {}),
  };
  return { servers, options, secrets: [pass, token].filter((x): x is string => !!x) };
}

function isAuthError(e: unknown): boolean {
  const text = `${(e as Error)?.name ?? ''} ${(e as Error)?.message ?? ''} ${String((e as { code?: unknown })?.code ?? '')}`.toLowerCase();
  return text.includes('authorization') || text.includes('authentication') || text.includes('auth_');
}

class NoAnswer extends Error {}

/**
 * Open a plain TCP connection and wait for the server's first bytes (its INFO
 * line). The NATS client leaves its socket open when its own handshake times
 * out, which keeps the process alive; this probe fails first and cleans up.
 */
function probe(server: string, timeoutMs: number): Promise<void> {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `nats://${server}`);
  } catch {
    return Promise.reject(new OdenessError(`not a NATS URL: ${maskUrl(server)}`));
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(u.port || 4222);
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    const done = (e?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => done(new NoAnswer()), timeoutMs);
    sock.once('data', () => done());
    sock.once('error', (e) => done(e));
    sock.once('close', () => done(new Error('the server closed the connection')));
  });
}

/** Connect, or fail within about `timeoutMs` with a message naming the (masked) URL and the cause. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const { servers, options, secrets } = resolveConnectOptions(opts);
  const where = describeNats(opts);
  const timeout = options.timeout ?? CONNECT_TIMEOUT_MS;
  const scrub = (text: string) => secrets.reduce((t, x) => t.replaceAll(x, '***'), text);
  const fail = (e: unknown): never => {
    if (e instanceof OdenessError) throw e;
    const err = e as Error & { code?: string; cause?: unknown };
    if (isAuthError(err)) {
      throw new OdenessError(`NATS server at ${where} refused the credentials (authorization violation): check --user/--password or --token`);
    }
    const cause = err.cause as (Error & { code?: string }) | undefined;
    const code = cause?.code ?? err.code;
    const reason =
      code === 'ECONNREFUSED' ? 'connection refused (is nats-server running there, started with -js?)'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
      : code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'host unreachable'
      : err instanceof NoAnswer || /timeout/i.test(`${err.name} ${err.message}`) ? `no answer within ${timeout / 1000} s`
      : scrub(cause?.message ?? err.message);
    const hint = /certificate|self[- ]signed|tls|ssl/i.test(reason) && !opts.tlsCa ? " (TLS: give the server's CA with --tls-ca)" : '';
    throw new OdenessError(`cannot connect to NATS at ${where}: ${reason}${hint}`);
  };
  // Any one server answering is enough.
  const probes = await Promise.allSettled(servers.map((s) => probe(s, timeout)));
  if (probes.every((p) => p.status === 'rejected')) fail((probes[0] as PromiseRejectedResult).reason);
  try {
    return await connect(options);
  } catch (e) {
    return fail(e);
  }
}

export interface ClusterHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  os: ObjectStore;
}

const ms2ns = (ms: number) => Math.round(ms * 1e6);

/**
 * Create (or bind to) the stream, consumer, KV bucket and object store. The
 * coordinator passes its ack wait / max deliver and updates the consumer to
 * them; workers pass nothing and leave an existing consumer as it is.
 */
export async function openCluster(nc: NatsConnection, where: string, cfg: { ackWaitMs?: number; maxDeliver?: number } = {}): Promise<ClusterHandles> {
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: JS_TIMEOUT_MS });
  } catch (e) {
    throw new OdenessError(`NATS at ${where} has no JetStream (start nats-server with -js -sd DIR): ${(e as Error).message}`);
  }
  const js = jetstream(nc, { timeout: JS_TIMEOUT_MS });
  try {
    await jsm.streams.info(STREAM);
  } catch {
    await jsm.streams
      .add({
        name: STREAM,
        subjects: [`${JOB_SUBJECT_PREFIX}*`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: ms2ns(120_000),
      })
      .catch(async (e) => {
        // A racing peer may have created it.
        await jsm.streams.info(STREAM).catch(() => {
          throw e;
        });
      });
  }
  const ackWait = ms2ns(cfg.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
  const maxDeliver = cfg.maxDeliver ?? DEFAULT_MAX_DELIVER;
  let info = await jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
  if (!info) {
    info = await jsm.consumers
      .add(STREAM, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWait,
        max_deliver: maxDeliver,
        deliver_policy: DeliverPolicy.All,
        filter_subject: `${JOB_SUBJECT_PREFIX}*`,
        max_ack_pending: 10_000,
      })
      .catch(async (e) => {
        const again = await jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
        if (!again) throw e;
        return again;
      });
  }
  if ((cfg.ackWaitMs !== undefined || cfg.maxDeliver !== undefined) && (info.config.ack_wait !== ackWait || info.config.max_deliver !== maxDeliver)) {
    await jsm.consumers.update(STREAM, CONSUMER, { ack_wait: ackWait, max_deliver: maxDeliver });
  }
  const kv = await new Kvm(js).create(RESULTS_BUCKET, { history: 1, storage: StorageType.File });
  const os = await new Objm(js).create(BUNDLES_BUCKET, { storage: StorageType.File });
  return { nc, js, jsm, kv, os };
}

/** Retry an operation that may fail while the server restarts; gives up after `forMs`. */
export async function retrying<T>(what: string, f: () => Promise<T>, opts: { forMs?: number; signal?: AbortSignal; onRetry?: (e: unknown) => void } = {}): Promise<T> {
  const until = Date.now() + (opts.forMs ?? 10 * 60_000);
  let delay = 200;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (opts.signal?.aborted || Date.now() + delay > until) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      opts.onRetry?.(e);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, delay * 2);
    }
  }
}

/**
 * Write a result to the bucket. A done result always goes in (every done
 * result of a job id is as good as any other); a failed one never replaces a
 * done result or a later attempt's failure (compare-and-set on the revision).
 */
export async function storeResult(kv: KV, msg: ResultMessage): Promise<void> {
  const id = msg.result.id;
  const data = encode(msg);
  if (msg.result.status === 'done') {
    await kv.put(id, data);
    return;
  }
  for (let tries = 0; ; tries++) {
    const entry = await kv.get(id);
    let have: ResultMessage | undefined;
    try {
      have = entry ? decodeEntry(entry) : undefined;
    } catch {
      have = undefined;
    }
    if (have && (have.result.status === 'done' || have.result.attempt > msg.result.attempt)) return;
    try {
      if (!entry || entry.operation !== 'PUT') await kv.create(id, data);
      else await kv.update(id, data, entry.revision);
      return;
    } catch (e) {
      if (tries >= 5) throw e; // lost a race to another writer: look again
    }
  }
}

export const MAX_DELIVERIES_ADVISORY = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${STREAM}.${CONSUMER}`;

/**
 * JetStream gave up on a job (every delivery timed out: its workers died or
 * hung): store a failed result for it, so the coordinator (now or after a
 * restart) records it instead of waiting forever, and drop the message.
 * Workers handle this advisory (one per queue group): it is emitted when a
 * worker pulls, so some worker is always there to see it.
 */
export async function recordGivenUp(h: Pick<ClusterHandles, 'jsm' | 'kv'>, advisory: { stream_seq: number; deliveries: number }, who: string): Promise<string | undefined> {
  const stored = await h.jsm.streams.getMessage(STREAM, { seq: advisory.stream_seq }).catch(() => null);
  if (!stored) return undefined;
  let id: string | undefined;
  try {
    const { job, attempt } = decodeJobMessage(stored.data);
    id = job.id;
    const now = new Date().toISOString();
    await storeResult(h.kv, {
      v: PROTOCOL_VERSION,
      result: {
        id: job.id, job, status: 'failed', attempt, worker: who,
        error: `delivered ${advisory.deliveries} times without a result (each worker died or stopped mid-job); rerun with --retry-failed`,
        timings: { startedAt: now, finishedAt: now, ms: 0 },
      },
    });
  } finally {
    await h.jsm.streams.deleteMessage(STREAM, advisory.stream_seq).catch(() => undefined);
  }
  return id;
}

function decodeEntry(e: KvEntry): ResultMessage | undefined {
  if (e.operation !== 'PUT' || e.length === 0) return undefined;
  return decodeResultMessage(e.value);
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
