/**
 * Validators for the records that cross a process boundary: jobs (plan.json,
 * NATS job messages, piscina tasks) and results (results.jsonl lines, the
 * NATS result bucket). Writers and readers both go through these.
 */
import type { Job, JobResult } from './types.js';

/** Throws a plain Error naming the first bad field; callers wrap it with the file/message context. */
function check(cond: boolean, what: string, v: unknown): void {
  if (!cond) throw new Error(`${what}: unexpected value ${JSON.stringify(v)?.slice(0, 80)}`);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function validateJob(v: unknown, where = 'job'): Job {
  check(isObj(v), where, v);
  const j = v as Record<string, unknown>;
  check(isStr(j.id) && /^[0-9a-f]{16}$/.test(j.id), `${where}.id`, j.id);
  for (const k of ['dataset', 'field', 'trainSolver'] as const) check(isStr(j[k]), `${where}.${k}`, j[k]);
  check(typeof j.adapt === 'boolean', `${where}.adapt`, j.adapt);
  for (const k of ['seed', 'iterations', 'batchSize', 'lr'] as const) check(isNum(j[k]), `${where}.${k}`, j[k]);
  check(Array.isArray(j.testSolvers) && j.testSolvers.every(isStr), `${where}.testSolvers`, j.testSolvers);
  check(isObj(j.audit) && typeof j.audit.crossing === 'boolean' && typeof j.audit.fan === 'boolean', `${where}.audit`, j.audit);
  check(j.engine === 'auto' || j.engine === 'tfjs' || j.engine === 'ort', `${where}.engine`, j.engine);
  return v as Job;
}

export function validateResult(v: unknown, where = 'result'): JobResult {
  check(isObj(v), where, v);
  const r = v as Record<string, unknown>;
  check(isStr(r.id), `${where}.id`, r.id);
  check(r.status === 'done' || r.status === 'failed', `${where}.status`, r.status);
  validateJob(r.job, `${where}.job`);
  check((r.job as Job).id === r.id, `${where}.job.id`, (r.job as Job).id);
  check(r.metrics === undefined || isObj(r.metrics), `${where}.metrics`, r.metrics);
  check(r.error === undefined || isStr(r.error), `${where}.error`, r.error);
  check(r.status !== 'failed' || isStr(r.error), `${where}.error`, r.error);
  const t = r.timings as Record<string, unknown>;
  check(isObj(t) && isStr(t.startedAt) && isStr(t.finishedAt) && isNum(t.ms), `${where}.timings`, t);
  check(isStr(r.worker), `${where}.worker`, r.worker);
  check(isNum(r.attempt) && Number.isInteger(r.attempt) && (r.attempt as number) >= 1, `${where}.attempt`, r.attempt);
  return v as JobResult;
}
