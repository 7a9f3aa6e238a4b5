/**
 * The coordinator's side of the work queue, one job id at a time. A job is
 * published only when the stream does not already hold this coordinator's
 * message for it (same job, attempt and signature): then a restarted
 * coordinator queues nothing twice, and a message of someone else's (another
 * version, another job key, a forgery) is purged and replaced. Every publish
 * has its own message id (`<id>.<attempt>.<random>`): a retried publish is
 * caught by the look before it (its first try's message is there), and the
 * republish of a job whose message `study clean` removed, or that another
 * coordinator queued, is never dropped by JetStream's 2-minute duplicate
 * window (it used to be, silently, and the coordinator waited for ever).
 */
import { randomBytes } from 'node:crypto';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { ClusterHandles } from './nats-resources.js';
import { JOB_SUBJECT_PREFIX, STREAM } from './nats-resources.js';
import { decodeJobMessage, encode } from './codec.js';
import { checkJobSignature, signJob } from './job-checks.js';
import { PROTOCOL_VERSION, type JobMessage } from './protocol.js';
import { sameJob } from './nats-results.js';
import type { Job } from '../study/types.js';

export interface QueueOptions {
  maxDeliver: number;
  jobKey?: Buffer;
  /** Look for a message already queued first (default); false only when the caller has just seen none. */
  look?: boolean;
}

/** The message the stream holds for a job id (queued or delivered and not yet acked), if any. */
export async function queuedMessage(jsm: JetStreamManager, id: string): Promise<Uint8Array | undefined> {
  const m = await jsm.streams.getMessage(STREAM, { last_by_subj: `${JOB_SUBJECT_PREFIX}${id}` });
  return m ? m.data : undefined;
}

/**
 * The ids of every job the stream holds a message for (queued or delivered and not yet acked), in one request
 * (paged by the client past the server's page size) instead of one per job.
 */
export async function queuedJobIds(jsm: JetStreamManager): Promise<Set<string>> {
  const si = await jsm.streams.info(STREAM, { subjects_filter: `${JOB_SUBJECT_PREFIX}*` });
  return new Set(Object.keys(si.state.subjects ?? {}).map((s) => s.slice(JOB_SUBJECT_PREFIX.length)));
}

/** Whether queued bytes are this coordinator's message for `job` at `attempt`. */
export function isOwnMessage(bytes: Uint8Array, job: Job, attempt: number, key?: Buffer): boolean {
  try {
    const m = decodeJobMessage(bytes);
    if (!sameJob(m.job, job) || m.attempt !== attempt) return false;
    if (!key) return m.sig === undefined;
    checkJobSignature(key, m);
    return true;
  } catch {
    return false; // another version, another key, unreadable: not ours
  }
}

/** Remove every queued message of a job id; returns how many. */
export async function purgeJob(jsm: JetStreamManager, id: string): Promise<number> {
  return (await jsm.streams.purge(STREAM, { filter: `${JOB_SUBJECT_PREFIX}${id}` })).purged;
}

/**
 * Queue `job` unless the stream already holds this coordinator's message for
 * it; a foreign message under its subject is purged first. Returns what it did.
 */
export async function enqueueJob(
  h: Pick<ClusterHandles, 'js' | 'jsm'>,
  job: Job,
  attempt: number,
  opts: QueueOptions,
): Promise<'queued' | 'already-queued' | 'replaced'> {
  const held = opts.look === false ? undefined : await queuedMessage(h.jsm, job.id);
  if (held && isOwnMessage(held, job, attempt, opts.jobKey)) return 'already-queued';
  if (held) await purgeJob(h.jsm, job.id);
  const body: Omit<JobMessage, 'sig'> = { v: PROTOCOL_VERSION, job, attempt, maxDeliver: opts.maxDeliver };
  const msg: JobMessage = opts.jobKey ? { ...body, sig: signJob(opts.jobKey, body) } : body;
  const msgID = `${job.id}.${attempt}.${randomBytes(6).toString('hex')}`;
  await h.js.publish(`${JOB_SUBJECT_PREFIX}${job.id}`, encode(msg), { msgID });
  return held ? 'replaced' : 'queued';
}
