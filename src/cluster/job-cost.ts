/**
 * A per-job cost bound for untrusted jobs, checked by a NATS worker before
 * anything is allocated or trained. Each of a job's sizes is bounded on its
 * own (job-checks.ts, the job format); their product is not, and a job with
 * every size in bounds can still need many GB or years. Bounded here, from
 * the job alone (no I/O):
 *
 *   memory ≈ 4 B × (train + test samples) × state values          (the data)
 *          + 4 B × 2 × batch × hidden values × training NFE/step  (the training tape)
 *   work   ≈ iterations × batch × hidden values × training NFE/step
 *          + test samples × hidden values × Σ NFE of the test solvers
 *
 * with hidden values per sample from the field registry. Adaptive solvers
 * are priced at ADAPTIVE_STEPS steps (their real count is unknown before
 * the run). Over-estimates on purpose (no micro-batching, no chunking).
 */
import { parseDatasetSpec } from '../data/spec.js';
import { DEFAULT_SPHERES_TEST, DEFAULT_SPHERES_TRAIN } from '../data/spheres.js';
import type { DatasetSpec } from '../data/format.js';
import { fieldKind } from '../models/fields/index.js';
import { parseFieldSpec } from '../models/spec.js';
import { DEFAULT_SOLVER_LIMITS, fixedStepCount, parseSolverSpec } from '../solvers/spec.js';
import { getTableau } from '../solvers/tableau.js';
import { PAPER_TEST_SET } from '../formats/index.js';
import type { Job } from '../study/types.js';

/**
 * Memory bound of one job (bytes). The estimate ignores micro-batching, so
 * it is generous: the paper's largest job (paper-mnist, conv2d:channels=128,
 * batch 256, dopri5) is priced at 27 GiB and runs in far less.
 */
export const MAX_JOB_BYTES = 256 * 2 ** 30;
/** Multiply-adds of one job: 300× the paper's largest (3e13). */
export const MAX_JOB_WORK = 1e16;
const ADAPTIVE_STEPS = 20;
/** The paper's test set: at most this many solvers around the training step (src/study/paper.ts). */
const PAPER_SOLVERS = 12;

export interface JobCost {
  bytes: number;
  work: number;
}

function shapeAndSamples(d: DatasetSpec): { shape?: number[]; samples: number } {
  switch (d.kind) {
    case 'spheres':
      return { shape: [d.dim], samples: (d.n ?? DEFAULT_SPHERES_TRAIN) + (d.testN ?? DEFAULT_SPHERES_TEST) };
    case 'mnist':
      return { shape: [1, d.size ?? 28, d.size ?? 28], samples: (d.n ?? 8000) + (d.testN ?? 2000) };
    case 'cifar10':
      return { shape: [3, 32, 32], samples: (d.limit ?? 50_000) + (d.testN ?? 10_000) };
    case 'json':
      // The file's size is bounded by the worker (--max-dataset-mb); its shape only when given.
      return { ...(d.shape ? { shape: [...d.shape] } : {}), samples: 0 };
  }
}

function nfePerSolve(spec: string, job: Job): number {
  const s = parseSolverSpec(spec, job.solverLimits ?? DEFAULT_SOLVER_LIMITS);
  const stages = getTableau(s.method).c.length;
  return stages * (s.kind === 'fixed' ? fixedStepCount(s) : ADAPTIVE_STEPS);
}

export function jobCost(job: Job): JobCost {
  const { shape, samples } = shapeAndSamples(parseDatasetSpec(job.dataset));
  const state = shape ? shape.reduce((a, b) => a * b, 1) : 1;
  const field = parseFieldSpec(job.field);
  const hiddenRaw = shape ? fieldKind(field).hiddenValues(field, shape) : 0;
  const hidden = Number.isFinite(hiddenRaw) && hiddenRaw > 0 ? hiddenRaw : state;
  const trainNfe = nfePerSolve(job.trainSolver, job);
  const testNfe =
    job.testSolvers.reduce(
      (sum, t) => sum + (t === PAPER_TEST_SET ? PAPER_SOLVERS * trainNfe : nfePerSolve(t, job)),
      0,
    ) + trainNfe;
  const bytes = 4 * samples * state + 8 * job.batchSize * hidden * trainNfe;
  const work = job.iterations * job.batchSize * hidden * trainNfe + samples * hidden * testNfe;
  return { bytes, work };
}

/** Why the job costs more than this worker takes, or undefined. */
export function costRefusal(job: Job, maxBytes = MAX_JOB_BYTES): string | undefined {
  const { bytes, work } = jobCost(job);
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (bytes > maxBytes) {
    const what = `about ${gib(bytes)} (data and training tape)`;
    return `the job needs ${what}, more than the ${gib(maxBytes)} a worker allows per job`;
  }
  if (work > MAX_JOB_WORK) {
    const what = `about ${work.toExponential(1)} multiply-adds`;
    return `the job needs ${what}, more than the ${MAX_JOB_WORK.toExponential(0)} a worker allows per job`;
  }
  return undefined;
}
