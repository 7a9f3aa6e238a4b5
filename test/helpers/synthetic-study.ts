/**
 * A planned study with results whose numbers are chosen, so the report tests
 * can assert values (means over seeds, critical steps, Table 1) that the code
 * could get wrong:
 *
 *  - euler at h = 0.5 / 0.25 / 0.1 (2 seeds): h = 0.5 collapses under finer
 *    test solvers (0.55), the others hold → critical step 0.25;
 *  - dopri5 at tol 1e-2 / 1e-4: both hold → critical tolerance ≥ 1e-2 (censored);
 *  - one adaptation run per method and seed (Hairer's step for euler, 1e-6 for dopri5);
 *  - crossings and folds on h = 0.5 (proof: not an ODE flow), none on the others; a fan per class;
 *  - one failed job, and one result from another study (not in the plan).
 */
import { planStudy, type StudyPlan } from '../../src/study/plan.js';
import type { AdaptDecision } from '../../src/train/adapt.js';
import type { EvalRow, Job, JobMetrics, JobResult } from '../../src/study/types.js';
import { done, failed, metrics, nfe } from './metrics.js';

export const SYNTHETIC_STUDY = {
  name: 'synthetic <study> & co',
  datasets: ['spheres:dupont2019:dim=2'],
  field: 'mlp:width=8',
  grid: [
    { solver: 'euler', steps: [0.5, 0.25, 0.1] },
    { solver: 'dopri5', tols: [1e-2, 1e-4] },
  ],
  adapt: 'both',
  seeds: 2,
  iterations: 100,
  testSolvers: ['paper', 'dopri5:1e-6'],
  audits: { crossing: true, fan: true },
};

export const FAILED_ERROR = 'loss became NaN at <iteration 12> & "stopped"';
/** The euler adaptation run of seed 0 ends at this (unrounded) step. */
export const ADAPT_FINAL_H = 0.07671544199101527;

function evalRow(spec: string, accuracy: number): EvalRow {
  const [solver, rest] = spec.split(':') as [string, string];
  if (rest.startsWith('steps=')) {
    const steps = Number(rest.slice(6));
    return { spec, solver, param: 1 / steps, steps, accuracy, nfe: steps, accepted: steps, rejected: 0 };
  }
  return { spec, solver, param: Number(rest), accuracy, nfe: 50, accepted: 8, rejected: 0 };
}

const fanOf = (solver: string, scale: number): NonNullable<JobMetrics['audits']>['fan'] => ({
  solver,
  reference: 'dopri5:rtol=1e-8,atol=1e-10',
  points: 100,
  final: {
    mean: 3 * scale,
    max: 8 * scale,
    perClass: [
      { label: 0, count: 50, mean: 2 * scale, std: scale, max: 5 * scale },
      { label: 1, count: 50, mean: 4 * scale, std: scale, max: 8 * scale },
    ],
  },
  series: {
    times: [0, 0.5, 1],
    perClass: [
      { label: 0, mean: [0, scale, 2 * scale], std: [0, 0, 0] },
      { label: 1, mean: [0, 2 * scale, 4 * scale], std: [0, 0, 0] },
    ],
  },
});

function gridMetrics(job: Job): JobMetrics {
  const seedAcc = job.seed === 0 ? 0.97 : 0.95;
  const h = Number(job.trainSolver.split(':')[1]);
  if (job.trainSolver.startsWith('euler')) {
    const steps = Math.round(1 / h);
    const bad = h === 0.5;
    return metrics({
      trainSolver: job.trainSolver,
      trainAccuracy: seedAcc,
      nfe: nfe(job.iterations * 2 * steps),
      evals: job.testSolvers.map((s) => evalRow(s, bad ? 0.55 : seedAcc - 0.01)),
      audits: {
        crossing: {
          solver: job.trainSolver,
          points: 100,
          d: 2,
          crossings: bad ? 12 : 0,
          pairsChecked: 4950,
          firstStep: bad ? 1 : null,
          projected: false,
          note: 'exact: 2-D segment intersections over the same step',
          folded: bad ? 3 : 0,
          foldStates: 200,
          minDet: bad ? -0.2 : 0.3,
        },
        fan: fanOf(job.trainSolver, h / 10),
      },
    });
  }
  return metrics({
    trainSolver: job.trainSolver,
    trainAccuracy: 0.9,
    nfe: nfe(job.iterations * (h > 1e-3 ? 40 : 80)),
    evals: job.testSolvers.map((s) => evalRow(s, 0.9 - 0.005)),
  });
}

/** Adaptation decisions from 0.25 down to h (two checks). */
function trace(h: number): AdaptDecision[] {
  const d = (iteration: number, before: number, after: number): AdaptDecision => ({
    iteration,
    before: `euler:${before}`,
    after: `euler:${after}`,
    paramBefore: before,
    paramAfter: after,
    trainAccuracy: 0.9,
    testAccuracy: 0.7,
    testSolver: 'midpoint:0.1',
    action: 'shrink',
    trainNfe: 4,
    testNfe: 8,
  });
  return [d(50, 0.25, 0.125), d(100, 0.125, h)];
}

function adaptMetrics(job: Job): JobMetrics {
  if (job.trainSolver.startsWith('euler')) {
    const final = job.seed === 0 ? `euler:${ADAPT_FINAL_H}` : 'euler:0.16';
    return metrics({
      trainSolver: final,
      trainAccuracy: job.seed === 0 ? 0.965 : 0.955,
      nfe: nfe(job.seed === 0 ? 1500 : 1700, 100),
      evals: [evalRow('midpoint:steps=20', 0.96)],
      adaptation: { decisions: 2, final, trace: trace(job.seed === 0 ? ADAPT_FINAL_H : 0.16) },
    });
  }
  return metrics({
    trainSolver: 'dopri5:0.00003',
    trainAccuracy: 0.91,
    nfe: nfe(9000, 500),
    evals: [evalRow('dopri5:0.000003', 0.91)],
    adaptation: { decisions: 2, final: 'dopri5:0.00003', trace: [] },
  });
}

export interface SyntheticStudy {
  readonly plan: StudyPlan;
  readonly results: JobResult[];
  readonly failedJob: Job;
  readonly foreign: JobResult;
}

export function syntheticStudy(): SyntheticStudy {
  const plan = planStudy(SYNTHETIC_STUDY);
  const failedJob = plan.jobs.find((j) => j.trainSolver === 'dopri5:0.0001' && j.seed === 1)!;
  const results = plan.jobs.map((j) =>
    j === failedJob ? failed(j, FAILED_ERROR) : done(j, j.adapt ? adaptMetrics(j) : gridMetrics(j)),
  );
  // A result of an edited study (other iterations) left in the same directory.
  const other = planStudy({ ...SYNTHETIC_STUDY, iterations: 50, adapt: false, seeds: 1 }).jobs[0]!;
  const foreign = done(other, gridMetrics(other));
  return { plan, results: [...results, foreign], failedJob, foreign };
}
