/**
 * studyStatus: the counts of a study output directory, read from its files
 * only (plan.json, results.jsonl, and state.json while a run holds the lock).
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, pidAlive } from './lock.js';
import { FileFormatError } from '../errors.js';
import { PLAN_FILE, readLock, readPlan, readResults, readState, RESULTS_FILE } from './store.js';
import type { JobResult, StudyCounts } from './types.js';

export interface StudyStatus extends StudyCounts {
  dir: string;
  name?: string;
  /** A live run holds the directory (its pid/host), else undefined. */
  activeRun?: { pid: number; host: string; startedAt: string };
  /** The run whose lock is still there though its process is gone (killed, e.g. kill -9): it died. */
  deadRun?: DeadRun;
  /** Failed jobs: id and error. */
  failures: { id: string; error: string; attempt: number }[];
  /** Result lines that did not parse (a torn last line after a crash counts here). */
  invalidLines: number;
  /** Result lines for job ids that already had a final result. */
  duplicateLines: number;
  /** Final results for ids that are no longer in the plan. */
  extraResults: number;
}

export interface DeadRun {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/**
 * The run that died holding DIR: a lock file left behind by a process on this
 * host that no longer exists (a clean end, even Ctrl-C, removes the lock).
 * Another host's process cannot be checked from here: never called dead.
 */
export function deadRun(dir: string): DeadRun | undefined {
  let info: { pid?: unknown; host?: unknown; startedAt?: unknown };
  try {
    info = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as typeof info;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(info.pid) || info.host !== hostname() || pidAlive(info.pid as number)) return undefined;
  const startedAt = typeof info.startedAt === 'string' ? info.startedAt : '';
  return { pid: info.pid as number, host: info.host, startedAt };
}

export function studyStatus(dir: string): StudyStatus {
  const plan = readPlan(dir);
  if (!plan) {
    const what = existsSync(dir) ? `has no ${PLAN_FILE}` : 'does not exist';
    throw new FileFormatError(
      join(dir, PLAN_FILE),
      `not a study output directory (${dir} ${what}; run \`odeness study run FILE --out ${dir}\` first)`,
    );
  }
  const read = readResults(dir);
  const lock = readLock(dir);
  const state = lock ? readState(dir) : undefined;
  const ids = new Set(plan.jobs.map((j) => j.id));
  // Running per the live run's state file; a failed job being retried counts as running.
  const running = new Set(
    (state?.running ?? []).map((r) => r.id).filter((id) => ids.has(id) && read.final.get(id)?.status !== 'done'),
  );
  let done = 0;
  const failures: StudyStatus['failures'] = [];
  for (const id of ids) {
    const r: JobResult | undefined = read.final.get(id);
    if (r?.status === 'done') done++;
    else if (r?.status === 'failed' && !running.has(id))
      failures.push({ id, error: r.error ?? '', attempt: r.attempt });
  }
  const total = ids.size;
  let extra = 0;
  for (const id of read.final.keys()) if (!ids.has(id)) extra++;
  return {
    dir,
    ...(plan.name !== undefined ? { name: plan.name } : {}),
    total,
    done,
    failed: failures.length,
    running: running.size,
    pending: total - done - failures.length - running.size,
    ...(lock ? { activeRun: lock } : {}),
    ...optionalDead(lock ? undefined : deadRun(dir)),
    failures,
    invalidLines: read.invalid,
    duplicateLines: read.duplicates,
    extraResults: extra,
  };
}

const optionalDead = (d: DeadRun | undefined) => (d ? { deadRun: d } : {});

export { RESULTS_FILE };
