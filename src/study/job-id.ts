/**
 * A job's id: the first 16 hex digits of sha256(canonicalJson(job minus id)). Canonical JSON sorts object keys at
 * every level, so the id does not depend on the key order of the study file, on the job's position in the plan, or
 * on the machine that planned it. Kept apart from plan.ts so that readers of results (records, reports, the
 * report's child process) do not load the planner's registries (tfjs, onnxruntime): that cost a second per render.
 */
import { createHash } from 'node:crypto';
import type { Job } from './types.js';

/** JSON with object keys sorted at every level; throws on values JSON cannot represent faithfully. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: non-finite number ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(o[k])).join(',') + '}';
  }
  throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
}

export const JOB_ID_LENGTH = 16;

/** What a job computes: every field but its id and what is derived from the rest (its memory estimate). */
export function jobConfig<J extends Omit<Job, 'id'>>(job: J): Omit<J, 'id' | 'memory'> {
  const { id: _id, memory: _memory, ...config } = job as J & { id?: string };
  return config;
}

/**
 * Version of what a job computes. Part of every id, so results stored by an
 * older executor (e.g. in a long-lived NATS result bucket) are never mistaken
 * for current ones; bump it when executeJob's metrics change meaning.
 */
export const JOB_FORMAT = 'odeness-job/1';

export function jobId(config: Omit<Job, 'id'> & { id?: string }): string {
  return createHash('sha256')
    .update(JOB_FORMAT + '\n' + canonicalJson(jobConfig(config)))
    .digest('hex')
    .slice(0, JOB_ID_LENGTH);
}
