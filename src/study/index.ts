/**
 * Studies: plan grids of training jobs, run them on a transport (the local
 * pool of worker threads here, local.ts, or a NATS cluster, src/cluster),
 * keep results resumable on disk.
 */
export type {
  Job,
  JobContext,
  JobMetrics,
  JobOutcome,
  JobProgress,
  JobResult,
  JobStatus,
  StudyCounts,
  StudyEvent,
} from './types.js';
export {
  validateStudy,
  loadStudyFile,
  parseStudyText,
  StudyFileError,
  STUDY_DEFAULTS,
  ENGINES,
  type StudySpec,
  type GridEntry,
  type Engine,
} from './schema.js';
export { planStudy, planSpec, jobId, canonicalJson, type StudyPlan, type StudyDocument } from './plan.js';
export { paperTestSolvers } from './paper.js';
export { runStudy, type RunStudyOptions, type RunStudyResult } from './run.js';
export type { Transport, JobSink, PendingJob } from './transport.js';
export { studyStatus, type StudyStatus } from './status.js';
export { readResults, readPlan, ResultStore, RESULTS_FILE, PLAN_FILE, MODELS_DIR } from './store.js';
export { validateJob, validateResult, parseJob, RecordError } from './records.js';
export { executeJob } from './execute.js';
export { LocalTransport, JobPool, defaultThreads, capThreads, type JobPoolOptions } from './local.js';
