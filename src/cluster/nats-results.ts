/**
 * The result protocol on the KV bucket (key = job id). The bucket is create
 * only (one message per key, new ones refused by the server: see
 * nats-resources.ts), so of two runs of one job the first result stays and
 * the later one is refused (its bundle, named per run, is left to expire).
 * Only the coordinator clears a key (purgeResult) for what may be replaced:
 *
 *   nothing, a deleted key                             → anything
 *   an unreadable or unauthenticated entry, one for
 *   another job or naming another job's bundle         → cleared, then anything (a forged or stale entry)
 *   a failure recorded when deliveries ran out         → cleared while held, so a late genuine done can land
 *   a failure of an earlier attempt                    → cleared before a --retry-failed rerun
 *   failed (this attempt or later), done               → nothing (first result wins)
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { canonicalJson, jobConfig } from '../study/plan.js';
import type { Job } from '../study/types.js';
import { decodeResultMessage, encode } from './codec.js';
import { RESULTS_BUCKET } from './nats-resources.js';
import type { ResultMessage } from './protocol.js';

/** The same job: the same id and config (a memory estimate, derived from the config, may differ or be absent). */
export function sameJob(a: Job, b: Job): boolean {
  return a.id === b.id && canonicalJson(jobConfig(a)) === canonicalJson(jobConfig(b));
}

/** The result stored under an entry, or undefined for a deleted key; throws on an unreadable one. */
export function decodeEntry(e: KvEntry): ResultMessage | undefined {
  if (e.operation !== 'PUT' || e.length === 0) return undefined;
  return decodeResultMessage(e.value);
}

/**
 * Whether a stored result can be the result of record of `job`: the same job, and a done one names a bundle
 * of that job's runs.
 */
export function answers(have: ResultMessage, job: Job, authentic?: (m: ResultMessage) => boolean): boolean {
  if (authentic && !authentic(have)) return false;
  return (
    sameJob(have.result.job, job) &&
    have.result.id === job.id &&
    (have.result.status === 'failed' || !!have.bundle?.startsWith(`${job.id}.`))
  );
}

/**
 * Whether the stored result `have` (of the same job) stays when `msg` is
 * offered: the first result of an attempt wins. The server enforces it too:
 * the result bucket takes one message per key (create only, see
 * nats-resources.ts); only the coordinator clears a key (purgeResult), for a
 * held exhausted failure, a stale attempt or a forged entry.
 */
export function keepsStored(have: ResultMessage, msg: ResultMessage): boolean {
  if (have.result.status === 'done') return true;
  return have.result.attempt >= msg.result.attempt && !have.exhausted;
}

/** The keys the result bucket holds a message for, in one request (paged by the client). */
export async function resultKeys(jsm: JetStreamManager): Promise<Set<string>> {
  const prefix = `$KV.${RESULTS_BUCKET}.`;
  const si = await jsm.streams.info(`KV_${RESULTS_BUCKET}`, { subjects_filter: `${prefix}>` });
  return new Set(Object.keys(si.state.subjects ?? {}).map((s) => s.slice(prefix.length)));
}

/** Clear a job's key in the result bucket (coordinator only: workers may not purge). */
export async function purgeResult(jsm: JetStreamManager, id: string): Promise<void> {
  await jsm.streams.purge(`KV_${RESULTS_BUCKET}`, { filter: `$KV.${RESULTS_BUCKET}.${id}` });
}

/** A result of record for `job` already in the bucket (done, or failed at `attempt` or later), if any. */
export function standingResult(
  entry: KvEntry | null,
  job: Job,
  attempt: number,
  authentic?: (m: ResultMessage) => boolean,
): ResultMessage | undefined {
  if (!entry) return undefined;
  let have: ResultMessage | undefined;
  try {
    have = decodeEntry(entry);
  } catch {
    return undefined;
  }
  if (!have || !answers(have, job, authentic)) return undefined;
  // An exhausted failure does not stand: its coordinator may queue the job afresh (deliveries that were refusals).
  return have.result.status === 'done' || (have.result.attempt >= attempt && !have.exhausted) ? have : undefined;
}

/**
 * Offer a result; returns 'stored', or 'kept' when the stored result stays
 * (another run's done won). Retries lost races a few times, then throws.
 */
export async function storeResult(
  kv: KV,
  msg: ResultMessage,
  authentic?: (m: ResultMessage) => boolean,
): Promise<'stored' | 'kept'> {
  const id = msg.result.id;
  const data = encode(msg);
  // The common case, a key nobody wrote: one round trip. The server refuses it when the key holds a message
  // (create only); then look at what is stored, as below.
  try {
    await kv.create(id, data);
    return 'stored';
  } catch {
    /* taken (or connection trouble): look */
  }
  for (let tries = 0; ; tries++) {
    const entry = await kv.get(id);
    // Our own message (a create whose reply was lost): stored, not another run's.
    if (entry?.operation === 'PUT' && Buffer.from(entry.value).equals(data)) return 'stored';
    let have: ResultMessage | undefined;
    try {
      have = entry ? decodeEntry(entry) : undefined;
    } catch {
      have = undefined; // unreadable: replace it
    }
    if (have && answers(have, msg.result.job, authentic) && keepsStored(have, msg)) return 'kept';
    try {
      if (!entry || entry.operation !== 'PUT') await kv.create(id, data);
      else await kv.update(id, data, entry.revision);
      return 'stored';
    } catch (e) {
      if (tries >= 8) throw e; // lost a race to another writer: look again
    }
  }
}
