/**
 * Run one job and turn whatever happens into a JobResult: `runJobToResult`
 * never throws (a failure is a `failed` result with its reason), while
 * `executeJob` (execute.ts) does the work and throws on failure. Both
 * transports' job entries (a pool thread, a NATS job process) call this one.
 */
import { isOdenessError } from '../errors.js';
import { loadConfinedDataset } from '../data/confined.js';
import { executeJob } from './execute.js';
import type { TrainSessionCache } from '../train/ort-engine.js';
import type { Job, JobProgress, JobResult } from './types.js';

export interface RunJobToResultOptions {
  bundleDir: string;
  attempt: number;
  worker: string;
  onProgress?: (p: JobProgress) => void;
  signal?: AbortSignal;
  /** The worker's training sessions, kept between its jobs (trimmed to one idle session after each). */
  sessions?: TrainSessionCache;
  /**
   * Untrusted jobs (NATS workers): files are read only under this directory, never followed out of it
   * (data/confined.ts).
   */
  dataRoot?: string;
}

/** A failure message for a result: user errors as their message, bugs with their kind and first stack frame. */
export function describeError(e: unknown): string {
  if (isOdenessError(e)) return e.message;
  if (e instanceof Error) {
    const frame = e.stack
      ?.split('\n')
      .find((l) => l.trim().startsWith('at '))
      ?.trim();
    return `${e.name}: ${e.message}${frame ? ` (${frame})` : ''}`;
  }
  return `non-error thrown: ${String(e)}`;
}

/** executeJob, its outcome or failure as a JobResult with timings, worker and attempt. */
export async function runJobToResult(job: Job, opts: RunJobToResultOptions): Promise<JobResult> {
  const start = Date.now();
  const base = { id: job.id, job, worker: opts.worker, attempt: opts.attempt };
  const timings = () => {
    const end = Date.now();
    return { startedAt: new Date(start).toISOString(), finishedAt: new Date(end).toISOString(), ms: end - start };
  };
  try {
    const dataset =
      opts.dataRoot !== undefined ? await loadConfinedDataset(job.dataset, job.seed, opts.dataRoot) : undefined;
    const outcome = await executeJob(job, {
      bundleDir: opts.bundleDir,
      ...(dataset ? { dataset } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.sessions ? { sessions: opts.sessions } : {}),
    });
    return { ...base, status: 'done', metrics: outcome.metrics, timings: timings() };
  } catch (e) {
    return { ...base, status: 'failed', error: describeError(e), timings: timings() };
  } finally {
    // One idle training session stays (the next job is often the same configuration with the next seed).
    await opts.sessions?.trim(1).catch(() => undefined);
  }
}
