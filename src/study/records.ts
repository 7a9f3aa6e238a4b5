/**
 * Readers of the records that cross a process boundary: jobs (plan.json, NATS
 * job messages, piscina tasks) and results (results.jsonl lines, the NATS
 * result bucket). The formats are src/formats/job.ts and result.ts; writers
 * and readers both go through these.
 */
import { describeIssue, JobResultSchema, JobSchema, parseWith } from '../formats/index.js';
import { RecordError } from '../errors.js';
import { jobId } from './job-id.js';
import type { Job, JobResult } from './types.js';

export { RecordError } from '../errors.js';

const prefixed = (where: string, path: string) => (path ? `${where}.${path}`.replace('.[', '[') : where);

export function validateJob(v: unknown, where = 'job'): Job {
  return parseWith(JobSchema, v, (i) => new RecordError(describeIssue({ ...i, path: prefixed(where, i.path) })));
}

export function validateResult(v: unknown, where = 'result'): JobResult {
  return parseWith(JobResultSchema, v, (i) => new RecordError(describeIssue({ ...i, path: prefixed(where, i.path) })));
}

/**
 * An untrusted job (a NATS message, a file from elsewhere): its format and
 * bounds are checked before anything is allocated for it, and its id must be
 * the content hash of the rest, so a job cannot claim another job's results.
 */
export function parseJob(untrusted: unknown, where = 'job'): Job {
  const job = validateJob(untrusted, where);
  const expected = jobId(job);
  if (job.id !== expected)
    throw new RecordError(`${where}.id: expected the content hash of the job (${expected}), got "${job.id}"`);
  return job;
}
