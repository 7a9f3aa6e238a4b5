/**
 * studyStatus: the counts of a study output directory, read from its files
 * only (plan.json, results.jsonl, and state.json while a run holds the lock).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../errors.js';
import { PLAN_FILE, readLock, readPlan, readResults, readState, RESULTS_FILE } from './store.js';
import type { JobResult, StudyCounts } from './types.js';

export interface StudyStatus extends StudyCounts {
  dir: string;
  name?: string;
  /** A live run holds the directory (its pid/host), else undefined. */
  activeRun?: { pid: number; host: string; startedAt: string };
  /** Failed jobs: id and error. */
  failures: { id: string; error: string; attempt: number }[];
  /** Result lines that did not parse (a torn last line after a crash counts here). */
  invalidLines: number;
  /** Result lines for job ids that already had a final result. */
  duplicateLines: number;
  /** Final results for ids that are no longer in the plan. */
  extraResults: number;
}

export function studyStatus(dir: string): StudyStatus {
  const plan = readPlan(dir);
  if (!plan) {
    const what = existsSync(dir) ? `has no ${PLAN_FILE}` : 'does not exist';
    throw new FileFormatError(join(dir, PLAN_FILE), `not a study output directory (${dir} ${what}; run \`odeness study run FILE --out ${dir}\` first)`);
  }
  const read = readResults(dir);
  const lock = readLock(dir);
  const state = lock ? readState(dir) : undefined;
  const ids = new Set(plan.jobs.map((j) => j.id));
  // Running per the live run's state file; a failed job being retried counts as running.
  const running = new Set((state?.running ?? []).map((r) => r.id).filter((id) => ids.has(id) && read.final.get(id)?.status !== 'done'));
  let done = 0;
  const failures: StudyStatus['failures'] = [];
  for (const id of ids) {
    const r: JobResult | undefined = read.final.get(id);
    if (r?.status === 'done') done++;
    else if (r?.status === 'failed' && !running.has(id)) failures.push({ id, error: r.error ?? '', attempt: r.attempt });
  }
  const total = ids.size;
  let extra = 0;
  for (const id of read.final.keys()) if (!ids.has(id)) extra++;
  return {
    dir,
    ...(plan.name !== undefined ? { name: plan.name } : {}),
    total, done, failed: failures.length, running: running.size,
    pending: total - done - failures.length - running.size,
    ...(lock ? { activeRun: lock } : {}),
    failures,
    invalidLines: read.invalid,
    duplicateLines: read.duplicates,
    extraResults: extra,
  };
}

export { RESULTS_FILE };
