/**
 * The report layer: a pure model of a study's results (model.ts) and its
 * renderings — HTML (html.ts, sections.ts), vega-lite figures (figures.ts,
 * vega.ts) and report.json.
 */
export {
  buildReportModel,
  type ReportModel,
  type ReportInput,
  type ReportOptions,
  type ReportPlan,
  type MethodSection,
  type Section,
  type ConfigSummary,
  type CriticalSummary,
  type Comparison,
} from './model.js';
export { writeReport, FIGURE_DIR, REPORT_JSON, type RenderOptions, type WrittenReport } from './html.js';
export { writeStudyReport, type StudyReportOptions, type StudyReport } from './study.js';
export { spread, type Spread } from './stats.js';
export * from './figures.js';
