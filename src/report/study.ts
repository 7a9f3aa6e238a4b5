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

/**
 * The report model of the results as the report can take them: a schema-valid result the model cannot read
 * (say, an evaluation spec this version cannot parse, from a cluster or another version) is listed as a
 * failed job naming why, and the rest of the study renders. Checked one by one only when the whole set fails
 * (the model is built once otherwise: at 20 000 results a second build was half a second).
 */
function readableModel(
  input: Parameters<typeof buildReportModel>[0],
  opts: Parameters<typeof buildReportModel>[1],
): ReportModel {
  try {
    return buildReportModel(input, opts);
  } catch {
    const results = input.results.map((r) => {
      try {
        buildReportModel({ results: [r] }, opts);
        return r;
      } catch (e) {
        const { metrics: _unread, ...rest } = r;
        return {
          ...rest,
          status: 'failed' as const,
          error: `unreadable result, not analysed: ${(e as Error).message}`,
        };
      }
    });
    return buildReportModel({ ...input, results }, opts);
  }
}
const optionalDeadRun = (d: ReturnType<typeof deadRun>) => (d ? { deadRun: d } : {});

export async function writeStudyReport(dir: string, options: StudyReportOptions = {}): Promise<StudyReport> {
  const plan = readPlan(dir);
  const { final } = readResults(dir);
  if (final.size === 0 && !options.live && !options.allowEmpty)
    throw new SpecError(`${path.join(dir, 'results.jsonl')}: no results yet; run \`odeness study run\` first`);
  const model = readableModel(
    {
      results: [...final.values()],
      ...(plan
        ? {
            plan: {
              jobs: plan.jobs,
              ...(plan.name !== undefined ? { name: plan.name } : {}),
              ...(plan.studyHash ? { studyHash: plan.studyHash } : {}),
              ...overridesOf(plan),
            },
          }
        : {}),
      ...(options.live ? { live: options.live } : {}),
      // A page written after the run died (study report, study status) says so, from the lock's liveness.
      ...(options.live ? {} : optionalDeadRun(deadRun(dir))),
    },
    { ...(options.threshold !== undefined ? { threshold: options.threshold } : {}) },
  );
  const critical = model.sections.flatMap((s) =>
    s.methods.flatMap((m) =>
      m.critical ? [{ dataset: s.dataset, field: s.field, trainSolver: m.method, ...m.critical }] : [],
    ),
  );
  return { model, critical, ...(await writeReport(model, dir, options)) };
}
