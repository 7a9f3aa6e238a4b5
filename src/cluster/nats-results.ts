/**
 * The result protocol on the KV bucket: who may write a job's result of
 * record, and when a stored result replaces another.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { decodeJobMessage, decodeResultMessage, encode } from './codec.js';
import { PROTOCOL_VERSION, type ResultMessage } from './protocol.js';
import { CONSUMER, STREAM } from './nats-resources.js';

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
export async function recordGivenUp(h: { jsm: JetStreamManager; kv: KV }, advisory: { stream_seq: number; deliveries: number }, who: string): Promise<string | undefined> {
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

export function decodeEntry(e: KvEntry): ResultMessage | undefined {
  if (e.operation !== 'PUT' || e.length === 0) return undefined;
  return decodeResultMessage(e.value);
}

