/**
 * Job metrics and results for the store, status and report tests: real
 * planned jobs with numbers the test chooses (so assertions can check values
 * the code could get wrong).
 */
import type { Job, JobMetrics, JobResult } from '../../src/formats/index.js';

/** Metrics of a done job as executeJob records them (values made up, the shape real), for store and report tests. */
export function sampleMetrics(trainAccuracy = 0.9): JobMetrics {
  return {
    trainSolver: 'euler:0.5',
    initialSolver: 'euler:0.5',
    trainAccuracy,
    trainNfe: 2,
    finalLoss: 0.3,
    finalBatchAccuracy: trainAccuracy,
    iterations: 10,
    nfe: { forward: 20, backward: 20, checks: 0, total: 40 },
    evals: [
      {
        solver: 'rk4',
        param: 0.25,
        spec: 'rk4:0.25',
        steps: 4,
        accuracy: trainAccuracy,
        nfe: 16,
        accepted: 4,
        rejected: 0,
      },
    ],
    backend: 'wasm',
    engine: 'tfjs',
    trainMs: 1,
    evalMs: 1,
  };
}

/** Metrics with the given solver and accuracy, everything else neutral. */
export function metrics(m: Partial<JobMetrics> & Pick<JobMetrics, 'trainSolver' | 'trainAccuracy'>): JobMetrics {
  return {
    initialSolver: m.trainSolver,
    trainNfe: 0,
    iterations: 100,
    nfe: { forward: 0, backward: 0, checks: 0, total: 0 },
    evals: [],
    backend: 'test',
    engine: 'test',
    trainMs: 1,
    evalMs: 1,
    ...m,
  };
}

/** Training NFE split as forward = backward (checks for adaptation runs on top). */
export function nfe(total: number, checks = 0): JobMetrics['nfe'] {
  const half = (total - checks) / 2;
  return { forward: half, backward: half, checks, total };
}

export function done(job: Job, m: JobMetrics, attempt = 1): JobResult {
  return {
    id: job.id,
    job,
    status: 'done',
    metrics: m,
    attempt,
    worker: 'test',
    timings: { startedAt: '2026-11-29T00:00:00.000Z', finishedAt: '2026-11-29T00:00:01.000Z', ms: 1000 },
  };
}

export function failed(job: Job, error: string, attempt = 1): JobResult {
  return {
    id: job.id,
    job,
    status: 'failed',
    error,
    attempt,
    worker: 'test',
    timings: { startedAt: '2026-11-29T00:00:00.000Z', finishedAt: '2026-11-29T00:00:01.000Z', ms: 1000 },
  };
}
