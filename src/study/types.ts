/**
 * The job/result/event types shared by the planner, the result store, both
 * transports (piscina worker threads and NATS workers) and the CLI.
 *
 * A job is a pure function of its config: its id is a content hash of every
 * other field (see plan.ts), so the same job planned on any machine, from a
 * study file with its keys in any order, has the same id.
 */

export interface Job {
  /** Content hash of the other fields (16 hex digits of sha256, see `jobId`). */
  id: string;
  /** Dataset spec string, e.g. `spheres:dupont2019:dim=2`. */
  dataset: string;
  /** Field spec string, e.g. `mlp:width=32`. */
  field: string;
  /** Canonical solver spec string (formatSolverSpec), e.g. `euler:0.25`, `rk4:steps=10`, `dopri5:0.001`. */
  trainSolver: string;
  /** Step-size / tolerance adaptation during training (the grid value is then the initial step/tol). */
  adapt: boolean;
  seed: number;
  iterations: number;
  batchSize: number;
  lr: number;
  /** Canonical solver spec strings the trained model is re-evaluated under. */
  testSolvers: string[];
  audit: { crossing: boolean; fan: boolean };
  engine: 'auto' | 'tfjs' | 'ort';
}

export interface JobProgress {
  iteration: number;
  iterations: number;
  loss?: number;
  accuracy?: number;
}

export interface JobContext {
  /** An empty directory the job writes its ONNX bundle (and anything else to keep) into. */
  bundleDir: string;
  onProgress?: (p: JobProgress) => void;
  signal?: AbortSignal;
}

export interface JobOutcome {
  metrics: Record<string, unknown>;
}

export type JobStatus = 'done' | 'failed';

export interface JobResult {
  id: string;
  status: JobStatus;
  job: Job;
  metrics?: Record<string, unknown>;
  error?: string;
  timings: { startedAt: string; finishedAt: string; ms: number };
  /** Who ran it: `local/<host>/<pid>/t<thread>` or `nats/<host>/<pid>/<slot>`. */
  worker: string;
  /** 1 for the first run of a job id; a `--retry-failed` rerun counts up. */
  attempt: number;
}

/** Counts shared by `study status`, the progress bar and `runStudy`'s return value. */
export interface StudyCounts {
  total: number;
  done: number;
  failed: number;
  running: number;
  pending: number;
}

/**
 * The one progress interface of a study run: the CLI renders it as a bar or
 * as lines, the NATS transport forwards worker progress into it.
 */
export type StudyEvent =
  | { type: 'plan'; total: number; toRun: number; alreadyDone: number; alreadyFailed: number; transport: string }
  | { type: 'start'; id: string; worker: string }
  | { type: 'progress'; id: string; worker: string; progress: JobProgress }
  | { type: 'result'; result: JobResult }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'end'; counts: StudyCounts; ms: number };
