/**
 * `odeness study report DIR` and the live report of `study run`: a study
 * directory's plan and results → the report model → report.html, report.json
 * and figures/.
 */
import path from 'node:path';
import { SpecError } from '../errors.js';
import { readPlan, readResults } from '../study/store.js';
import { deadRun } from '../study/status.js';
import { planFileOverrides, type PlanFile } from '../formats/index.js';

const overridesOf = (plan: PlanFile) => {
  const overrides = planFileOverrides(plan);
  return overrides ? { overrides } : {};
};
import { writeReport, type RenderOptions, type WrittenReport } from './html.js';
import { buildReportModel, type CriticalSummary, type ReportLive, type ReportModel } from './model.js';

export interface StudyReportOptions extends RenderOptions {
  readonly threshold?: number;
  /** The study is still running: the page says so and reloads itself. */
  readonly live?: ReportLive;
  /** Write a page even before the first result (the live report of a run does). */
  readonly allowEmpty?: boolean;
}

/** The critical value of one (dataset, field, training method). */
export interface StudyCritical extends CriticalSummary {
  readonly dataset: string;
  readonly field: string;
  readonly trainSolver: string;
}

export interface StudyReport extends WrittenReport {
  readonly model: ReportModel;
  readonly critical: StudyCritical[];
}

const optionalDeadRun = (d: ReturnType<typeof deadRun>) => (d ? { deadRun: d } : {});

export async function writeStudyReport(dir: string, options: StudyReportOptions = {}): Promise<StudyReport> {
  const plan = readPlan(dir);
  const { final } = readResults(dir);
  if (final.size === 0 && !options.live && !options.allowEmpty) throw new SpecError(`${path.join(dir, 'results.jsonl')}: no results yet; run \`odeness study run\` first`);
  const model = buildReportModel(
    {
      results: [...final.values()],
      ...(plan ? { plan: { jobs: plan.jobs, ...(plan.name !== undefined ? { name: plan.name } : {}), ...(plan.studyHash ? { studyHash: plan.studyHash } : {}), ...overridesOf(plan) } } : {}),
      ...(options.live ? { live: options.live } : {}),
      // A page written after the run died (study report, study status) says so, from the lock's liveness.
      ...(options.live ? {} : optionalDeadRun(deadRun(dir))),
    },
    { ...(options.threshold !== undefined ? { threshold: options.threshold } : {}) },
  );
  const critical = model.sections.flatMap((s) => s.methods.flatMap((m) => (m.critical ? [{ dataset: s.dataset, field: s.field, trainSolver: m.method, ...m.critical }] : [])));
  return { model, critical, ...(await writeReport(model, dir, options)) };
}
