/**
 * The JetStream resources of a cluster, created by whoever comes first
 * (coordinator or worker) and bound to by the rest:
 *
 *   stream   ODENESS_JOBS      work-queue retention, subjects odeness.jobs.<id>,
 *                              msg id <id>.<attempt>.<random>: one per publish
 *                              (the coordinator looks before it publishes,
 *                              job-queue.ts, so the duplicate window never
 *                              drops a needed republish)
 *   consumer odeness-workers   durable pull consumer shared by every worker:
 *                              explicit ack, ack wait (default 30 s, kept alive
 *                              by workers with in-progress acks while the job
 *                              progresses), unlimited deliveries at the server:
 *                              the coordinator's max deliver is kept in the
 *                              consumer's description, and a worker records the
 *                              job failed past it (never a message's own limit)
 *   KV       odeness-results   key <id> → ResultMessage (the result of record),
 *                              entries expire after the retention period (set
 *                              when the buckets are made: one for every study);
 *                              create only: one message per key, the server
 *                              refuses any other put, delete or purge marker on
 *                              it (workers cannot overwrite or delete results;
 *                              only the coordinator clears a key, with the purge API)
 *   objects  odeness-bundles   name <id>.<run> → BundleArchive of one run's bundle dir,
 *                              same retention; both buckets have a size limit
 *   subject  odeness.events.<id>  start/progress from workers (core NATS, lossy)
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { OdenessError } from '../errors.js';

export const STREAM = 'ODENESS_JOBS';
export const JOB_SUBJECT_PREFIX = 'odeness.jobs.';
export const CONSUMER = 'odeness-workers';
export const RESULTS_BUCKET = 'odeness-results';
export const BUNDLES_BUCKET = 'odeness-bundles';
export const EVENT_SUBJECT_PREFIX = 'odeness.events.';
export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_MAX_DELIVER = 5;

const MAX_DELIVER_TEXT = 'odeness work queue; max deliver ';
/** The coordinator's max deliver, as kept in the consumer's description (default when absent). */
export function maxDeliverOf(config: { description?: string } | undefined): number {
  const m = new RegExp(`^${MAX_DELIVER_TEXT}(\\d{1,4})$`).exec(config?.description ?? '');
  return m ? Math.max(1, Number(m[1])) : DEFAULT_MAX_DELIVER;
}

/** How long results and bundles stay in the buckets, and how large the buckets may grow. */
export interface Retention {
  ttlMs: number;
  resultsMaxBytes: number;
  bundlesMaxBytes: number;
}

export const DEFAULT_RETENTION: Retention = {
  ttlMs: 30 * 86_400_000,
  resultsMaxBytes: 2 ** 30,
  bundlesMaxBytes: 20 * 2 ** 30,
};
/**
 * JetStream API calls: short, since every call that matters is retried (a request sent while the server
 * restarts is lost).
 */
const JS_TIMEOUT_MS = 4_000;

export interface ClusterHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  os: ObjectStore;
  /** What opening changed from what was asked, for the caller to log (a bucket made smaller than asked). */
  notices: string[];
}

const ms2ns = (ms: number) => Math.round(ms * 1e6);

/** What a coordinator asks of the cluster's resources; workers pass nothing. */
interface ClusterConfig {
  ackWaitMs?: number;
  retention?: Retention;
  maxDeliver?: number;
  ttlGiven?: boolean;
}

/**
 * Create (or bind to) the stream, consumer, KV bucket and object store. The
 * coordinator passes its ack wait and retention and updates the consumer and
 * buckets to them; workers pass nothing and leave existing ones as they are.
 */
export async function openCluster(nc: NatsConnection, where: string, cfg: ClusterConfig = {}): Promise<ClusterHandles> {
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: JS_TIMEOUT_MS });
  } catch (e) {
    throw new OdenessError(
      `NATS at ${where} has no JetStream (start nats-server with -js -sd DIR): ${(e as Error).message}`,
    );
  }
  const js = jetstream(nc, { timeout: JS_TIMEOUT_MS });
  await ensureStream(jsm);
  await ensureConsumer(jsm, cfg);
  const r = cfg.retention ?? DEFAULT_RETENTION;
  const notices: string[] = [];
  const { kv, os } = await openBuckets(js, jsm, r, where, notices);
  if (cfg.retention) await applyRetention(jsm, r, cfg.ttlGiven, where, notices);
  return { nc, js, jsm, kv, os, notices };
}

/** The smallest size limit a bucket is made with when the server cannot reserve what was asked. */
export const MIN_BUCKET_BYTES = 64 * 2 ** 20;

/** The server refused to reserve a stream's size limit (JetStream error 10047). */
function isReservationRefused(e: unknown): boolean {
  const err = e as { message?: string; api_error?: { err_code?: number } } | undefined;
  return err?.api_error?.err_code === 10047 || /insufficient storage resources/i.test(err?.message ?? '');
}

const gib = (n: number) => (n >= 2 ** 30 ? `${+(n / 2 ** 30).toFixed(2)} GiB` : `${+(n / 2 ** 20).toFixed(1)} MiB`);

/**
 * Make (or grow) a bucket with the largest size limit up to `want` that the server can reserve, halving
 * down to `floor` (tried last). JetStream reserves a bucket's whole limit when it is made, against the server's
 * max_file_store (by default 75 % of the disk free when nats-server started), so the 20 GiB default does
 * not fit a server on a small disk; the cluster still runs, with a smaller bucket, and says so.
 */
async function fitting<T>(
  what: string,
  want: number,
  floor: number,
  attempt: (maxBytes: number) => Promise<T>,
  where: string,
  notices: string[],
): Promise<T> {
  for (let bytes = want; ; bytes = Math.max(floor, Math.floor(bytes / 2))) {
    try {
      const made = await attempt(bytes);
      if (bytes < want)
        notices.push(
          `the NATS server at ${where} cannot reserve ${gib(want)} for the ${what} (its JetStream storage, ` +
            'max_file_store, by default 75 % of the disk free when nats-server started, has less room): ' +
            `its limit is ${gib(bytes)}. When it is full, workers keep their jobs queued until ` +
            '`odeness study clean` of old studies makes room; give nats-server more storage for more',
        );
      return made;
    } catch (e) {
      if (!isReservationRefused(e) || bytes <= floor) throw e;
    }
  }
}

async function ensureStream(jsm: JetStreamManager): Promise<void> {
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
}

/** Create the consumer if missing; a coordinator (ack wait given) updates it to its ack wait and max deliver. */
async function ensureConsumer(jsm: JetStreamManager, cfg: ClusterConfig): Promise<void> {
  const ackWait = ms2ns(cfg.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
  const maxDeliver = -1; // enforced by workers from each message's own limit and delivery count
  let info = await jsm.consumers.info(STREAM, CONSUMER).catch(() => undefined);
  if (!info) {
    info = await jsm.consumers
      .add(STREAM, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWait,
        max_deliver: maxDeliver,
        ...(cfg.maxDeliver !== undefined ? { description: `${MAX_DELIVER_TEXT}${cfg.maxDeliver}` } : {}),
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
  const description = cfg.maxDeliver !== undefined ? `${MAX_DELIVER_TEXT}${cfg.maxDeliver}` : info.config.description;
  if (
    cfg.ackWaitMs !== undefined &&
    (info.config.ack_wait !== ackWait ||
      info.config.max_deliver !== maxDeliver ||
      info.config.description !== description)
  ) {
    await jsm.consumers.update(STREAM, CONSUMER, {
      ack_wait: ackWait,
      max_deliver: maxDeliver,
      ...(description !== undefined ? { description } : {}),
    });
  }
}

/** Bind to the buckets, creating those that do not exist yet. */
async function openBuckets(
  js: JetStreamClient,
  jsm: JetStreamManager,
  r: Retention,
  where: string,
  notices: string[],
): Promise<{ kv: KV; os: ObjectStore }> {
  // Workers bind to buckets that exist (a least-privilege worker may only read their info, see examples/nats/).
  const exists = async (stream: string) => (await jsm.streams.info(stream).catch(() => undefined)) !== undefined;
  // Made as large as the server can reserve; a peer may make it meanwhile (with another size limit where the
  // server's room changed): bind to that one.
  const bucket = async <T>(
    what: string,
    stream: string,
    maxBytes: number,
    open: () => Promise<T>,
    create: (maxBytes: number) => Promise<T>,
  ) =>
    (await exists(stream))
      ? open()
      : fitting(what, maxBytes, Math.min(MIN_BUCKET_BYTES, maxBytes), create, where, notices).catch(async (e) =>
          (await exists(stream)) ? open() : Promise.reject(e),
        );
  const kvm = new Kvm(js);
  const kv = await bucket(
    `results bucket ${RESULTS_BUCKET}`,
    `KV_${RESULTS_BUCKET}`,
    r.resultsMaxBytes,
    () => kvm.open(RESULTS_BUCKET),
    (max_bytes) => kvm.create(RESULTS_BUCKET, { history: 1, storage: StorageType.File, ttl: r.ttlMs, max_bytes }),
  );
  const objm = new Objm(js);
  const os = await bucket(
    `bundles bucket ${BUNDLES_BUCKET}`,
    `OBJ_${BUNDLES_BUCKET}`,
    r.bundlesMaxBytes,
    () => objm.open(BUNDLES_BUCKET),
    (max_bytes) => objm.create(BUNDLES_BUCKET, { storage: StorageType.File, ttl: ms2ns(r.ttlMs), max_bytes }),
  );
  return { kv, os };
}

/**
 * Buckets made earlier (or by an older odeness) get the coordinator's size limits. Their age limit is
 * every study's on this cluster (JetStream 2.9 has no per-entry age): it is set when the buckets are
 * made, and a coordinator that asks for another one is refused rather than change other studies'.
 */
async function applyRetention(
  jsm: JetStreamManager,
  r: Retention,
  ttlGiven: boolean | undefined,
  where: string,
  notices: string[],
): Promise<void> {
  for (const [what, stream, maxBytes] of [
    [`results bucket ${RESULTS_BUCKET}`, `KV_${RESULTS_BUCKET}`, r.resultsMaxBytes],
    [`bundles bucket ${BUNDLES_BUCKET}`, `OBJ_${BUNDLES_BUCKET}`, r.bundlesMaxBytes],
  ] as const) {
    const si = await jsm.streams.info(stream);
    if (si.config.max_age !== ms2ns(r.ttlMs) && ttlGiven) throw retentionRefusal(si.config.max_age, r.ttlMs);
    // The result bucket is create only (one message per key, see above).
    const createOnly = stream.startsWith('KV_') ? { discard_new_per_subject: true, max_msgs_per_subject: 1 } : {};
    const stale = Object.entries(createOnly).some(
      ([k, v]) => (si.config as unknown as Record<string, unknown>)[k] !== v,
    );
    const have = si.config.max_bytes;
    if (have === maxBytes && !stale) continue;
    const update = (max_bytes: number) => jsm.streams.update(stream, { ...si.config, max_bytes, ...createOnly });
    // Growing a bucket the server made smaller (no room then) goes only as far as the server has room now.
    if (have > 0 && have < maxBytes) await fitting(what, maxBytes, have, update, where, notices);
    else await update(maxBytes);
  }
}

function retentionRefusal(haveNs: number, wantMs: number): OdenessError {
  const days = (ms: number) => `${+(ms / 86_400_000).toFixed(3)} day(s)`;
  const have = haveNs > 0 ? `keep entries ${days(haveNs / 1e6)}` : 'keep entries for ever';
  return new OdenessError(
    `--keep-days ${+(wantMs / 86_400_000).toFixed(3)}: this cluster's result and bundle buckets ${have}, ` +
      "for every study on it; changing it would change every other study's retention too. " +
      "Omit --keep-days (this study's entries then keep as long), " +
      "or remove a study's entries when done with it (odeness study clean)",
  );
}

/** A request the server refused for lack of permissions (a least-privilege account). */
export function isPermissionError(e: unknown): boolean {
  const err = e as (Error & { cause?: Error }) | undefined;
  const text = `${err?.name ?? ''} ${err?.message ?? ''} ${String(err?.cause?.message ?? '')}`;
  return /permission|authorization/i.test(text);
}

/** Retry an operation that may fail while the server restarts; gives up after `forMs`. */
export async function retrying<T>(
  what: string,
  f: () => Promise<T>,
  opts: {
    forMs?: number;
    signal?: AbortSignal;
    onRetry?: (e: unknown) => void;
    retryIf?: (e: unknown) => boolean;
  } = {},
): Promise<T> {
  const until = Date.now() + (opts.forMs ?? 10 * 60_000);
  let delay = 200;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (opts.signal?.aborted || opts.retryIf?.(e) === false || Date.now() + delay > until)
        throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      opts.onRetry?.(e);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, delay * 2);
    }
  }
}
