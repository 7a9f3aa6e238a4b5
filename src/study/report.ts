/**
 * `odeness study report DIR`: the study's results.jsonl turned into the
 * self-contained HTML report (figures, critical step per dataset, job table,
 * grid vs adaptation cost).
 */
import path from 'node:path';
import { SpecError } from '../errors.js';
import { renderStudyReport, type ReportJob } from '../audit/report-html.js';
import { parseSolverSpec } from '../solvers/spec.js';
import { readPlan, readResults } from './store.js';
import type { JobResult } from './types.js';

export function reportJob(r: JobResult): ReportJob {
  const m = r.metrics;
  const base = { id: r.id, dataset: r.job.dataset, trainSpec: r.job.trainSolver, seed: r.job.seed, adapt: r.job.adapt, status: r.status };
  if (r.status === 'failed' || !m) return { ...base, error: r.error };
  const final = m.adaptation ? parseSolverSpec(m.adaptation.final) : undefined;
  return {
    ...base,
    trainAccuracy: m.trainAccuracy,
    totalNfe: m.nfe.total,
    evals: m.evals.map((e) => ({ spec: e.spec, solver: e.solver, param: e.param, ...(e.steps !== undefined ? { steps: e.steps } : {}), accuracy: e.accuracy, nfe: e.nfe })),
    ...(m.adaptation && final
      ? {
          adaptation: {
            kind: final.kind === 'fixed' ? ('step' as const) : ('tol' as const),
            finalParam: final.kind === 'fixed' ? (final.h ?? 1 / final.steps!) : final.rtol,
            trace: m.adaptation.trace.map((d) => ({ iteration: d.iteration, param: d.paramAfter, trainAccuracy: d.trainAccuracy, testAccuracy: d.testAccuracy })),
          },
        }
      : {}),
  };
}

export async function writeStudyReport(dir: string, options: { threshold?: number; png?: boolean } = {}) {
  const { final: results } = readResults(dir);
  if (results.size === 0) throw new SpecError(`${path.join(dir, 'results.jsonl')}: no results yet; run \`odeness study run\` first`);
  const plan = readPlan(dir);
  const jobs = [...results.values()].map(reportJob);
  const planned = plan?.jobs.length;
  return renderStudyReport(
    {
      title: `odeness study${plan?.name ? `: ${plan.name}` : ''}`,
      subtitle: new Date().toISOString(),
      threshold: options.threshold,
      notes: [`${jobs.filter((j) => j.status === 'done').length} done, ${jobs.filter((j) => j.status === 'failed').length} failed${planned !== undefined ? ` of ${planned} planned jobs` : ''}.`],
      jobs,
    },
    dir,
    { png: options.png },
  );
}
