/**
 * odeness as a library: the same functions the CLI calls.
 *
 *   import { runStudy, trainRun, evaluate, openModelSource, parseSolverSpec } from 'odeness';
 */
import './no-telemetry.js'; // first: before anything loads onnxruntime
export * from './errors.js';

// Solvers and numeric engines
export { getTableau, METHODS, FIXED_METHODS, ADAPTIVE_METHODS, type Tableau } from './solvers/tableau.js';
export {
  parseSolverSpec,
  parseSolverList,
  DEFAULT_SOLVER_LIMITS,
  type SolverLimits,
  formatSolverSpec,
  solverParam,
  solverLabel,
  fixedStepCount,
  type SolverSpec,
  type FixedSolverSpec,
  type AdaptiveSolverSpec,
  type SolverLabel,
} from './solvers/spec.js';
export {
  solve,
  solveAsync,
  fixedGrid,
  type SolveOptions,
  type SolveResult,
  type SolveStats,
  type Trajectory,
} from './solvers/integrate.js';
export {
  parseSolver,
  resolveSolver,
  withStep,
  withTolerance,
  type Solver,
  type FixedSolver,
  type AdaptiveSolver,
} from './solvers/solver.js';
export { ConstantStepSize, PIDController, type StepController, type StepDecision } from './solvers/controller.js';
export { initialStep, type Norm } from './solvers/initial-step.js';
export type { VectorOps, SyncField, AsyncField, FieldCall } from './solvers/vector.js';
export { float32Ops, float64Ops } from './engines/typed.js';
export { tensorOps } from './engines/tensor.js';
export { initBackend, type BackendInfo } from './engines/backend.js';

// Data and models
export {
  loadDataset,
  parseDatasetSpec,
  formatDatasetSpec,
  makeSpheres,
  loadMnist,
  loadCifar10,
  readJsonData,
  Rng,
  DATA_LIMITS,
  checkLabelsFitModel,
  type Dataset,
  type Split,
} from './data/index.js';
export { parseFieldSpec, formatFieldSpec } from './models/spec.js';
export { initParams, paramShapes } from './models/params.js';
export { saveModel, loadModel, type SavedModel, type TrainingInfo } from './models/io.js';
export type { Model, ModelConfig, FieldSpec, Params } from './models/types.js';

// Training
export { train, type TrainOptions, type TrainResult, type TrainLogEntry } from './train/train.js';
export { trainRun, type TrainRunSpec, type TrainRunResult } from './train/run.js';
export { DEFAULT_ADAPT, type AdaptOptions, type AdaptDecision } from './train/adapt.js';

// ONNX
export { writeBundle, writeEffective, readBundle, type Bundle, type BundleManifest } from './onnx/bundle.js';
export {
  evaluate,
  evaluateBundle,
  solveField,
  type EvalData,
  type EvalRow,
  type EvaluateOptions,
} from './onnx/evaluate.js';
export { effectiveModelGraph } from './onnx/lower/model-graphs.js';
export { createSession, SessionCache, resolveDevice, DEVICE_CHOICES } from './onnx/runtime/index.js';
export type { Device, DeviceChoice } from './onnx/runtime/index.js';
export { runtimeReport, type RuntimeReport } from './onnx/runtime/adapters.js';

// Audits
export { paperTestSolvers } from './solvers/test-set.js';
export { openModelSource, memorySource, type ModelSource } from './onnx/source.js';
export { auditData } from './audit/source.js';
export { crossingAudit, fanAudit, trajectories, type CrossingAudit, type FanAudit } from './audit/audits.js';
export {
  crossingVerdict,
  type Verdict,
  type VerdictConclusion,
  type VerdictProof,
  type VerdictInput,
} from './audit/verdict.js';
export { countCrossings } from './audit/crossing.js';
export { refineCrossings, type Refinement } from './audit/refine.js';
export { foldCheck } from './audit/fold.js';
export { fanStats } from './audit/fan.js';
export { criticalStep } from './audit/critical.js';
export { criticalFromModels } from './audit/critical-models.js';
export { compareGridAdaptation } from './audit/compare.js';

// Studies
export {
  planStudy,
  runStudy,
  studyStatus,
  executeJob,
  validateStudy,
  parseJob,
  type Job,
  type JobResult,
  type JobMetrics,
  type StudyEvent,
  type StudySpec,
  type Transport,
  type JobSink,
  type PendingJob,
} from './study/index.js';
export { LocalTransport } from './study/index.js';
export {
  NatsTransport,
  runWorker,
  maskUrl,
  type NatsConnectOptions,
  type NatsStudyOptions,
  type WorkerOptions,
  type WorkerSummary,
} from './cluster/index.js';

// Formats: the schema of every file and message, and their limits
export {
  JobSchema,
  JobResultSchema,
  JobMetricsSchema,
  BundleManifestSchema,
  ModelFileSchema,
  PlanFileSchema,
  JOB_LIMITS,
  ENGINE_CHOICES,
  parseWith,
  type FormatIssue,
} from './formats/index.js';
export { writeStudyReport, buildReportModel, type ReportModel } from './report/index.js';
