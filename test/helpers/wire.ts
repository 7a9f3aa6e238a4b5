/**
 * What an attacker on the wire does in the cluster security tests: publish
 * raw job messages, write results and object metadata straight into the
 * buckets, and read what the workers stored.
 */
import { Packr } from 'msgpackr';
import { decodeResultMessage } from '../../src/cluster/codec.js';
import { BUNDLES_BUCKET, JOB_SUBJECT_PREFIX, type ClusterHandles } from '../../src/cluster/nats-resources.js';
import { PROTOCOL_VERSION, type ResultMessage } from '../../src/cluster/protocol.js';
import { jobId } from '../../src/study/plan.js';
import type { Job, JobMetrics } from '../../src/study/types.js';
import { TINY_DATASET } from './procs.js';

export const BASE_JOB: Omit<Job, 'id'> = {
  dataset: TINY_DATASET,
  field: 'mlp:width=8',
  trainSolver: 'euler:0.5',
  adapt: false,
  seed: 1,
  iterations: 20,
  batchSize: 32,
  lr: 0.01,
  testSolvers: ['rk4:0.1'],
  audit: { crossing: false, fan: false },
  engine: 'auto',
};

export function job(over: Partial<Omit<Job, 'id'>>): Job {
  const j = { ...BASE_JOB, ...over };
  return { id: jobId(j), ...j };
}

/** Well-formed metrics claiming a perfect model (a forger can write any). */
export const FORGED_METRICS: JobMetrics = {
  trainSolver: 'euler:0.5',
  initialSolver: 'euler:0.5',
  trainAccuracy: 1,
  trainNfe: 2,
  iterations: 1,
  nfe: { forward: 1, backward: 1, checks: 0, total: 2 },
  evals: [],
  backend: 'wasm',
  engine: 'tfjs',
  trainMs: 1,
  evalMs: 1,
};

const packr = new Packr({ useRecords: false, moreTypes: true });
export const pack = (v: unknown): Uint8Array => packr.pack(v);

export async function publishJob(h: ClusterHandles, msg: Record<string, unknown>, id: string): Promise<void> {
  await h.js.publish(`${JOB_SUBJECT_PREFIX}${id}`, pack(msg));
}

/** The result stored under `id`, once there is one. */
export async function resultOf(h: ClusterHandles, id: string, ms = 30_000): Promise<ResultMessage> {
  const end = Date.now() + ms;
  for (;;) {
    const e = await h.kv.get(id);
    if (e && e.operation === 'PUT') return decodeResultMessage(e.value);
    if (Date.now() > end) throw new Error(`no result for ${id} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A forged done result of `j` naming bundle `<id>.<run>`. */
export function forgedDone(j: Job, run: string, over: Partial<ResultMessage['result']> = {}): ResultMessage {
  const now = new Date().toISOString();
  return {
    v: PROTOCOL_VERSION,
    result: {
      id: j.id,
      job: j,
      status: 'done',
      attempt: 1,
      worker: 'mallory',
      metrics: FORGED_METRICS,
      timings: { startedAt: now, finishedAt: now, ms: 1 },
      ...over,
    },
    bundle: `${j.id}.${run}`,
  } as ResultMessage;
}

/** Object-store metadata written by hand (as anyone allowed to upload bundles can); the last one on its subject counts. */
export function publishObjectMeta(h: ClusterHandles, name: string, meta: Record<string, unknown>): Promise<unknown> {
  const subject = `$O.${BUNDLES_BUCKET}.M.${Buffer.from(name).toString('base64url')}`;
  return h.js.publish(subject, new TextEncoder().encode(JSON.stringify({ name, bucket: BUNDLES_BUCKET, ...meta })));
}
