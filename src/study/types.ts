/**
 * The job/result/event types shared by the planner, the result store, both
 * transports (piscina worker threads and NATS workers) and the CLI.
 *
 * A job is a pure function of its config: its id is a content hash of every
 * other field (see plan.ts), so the same job planned on any machine, from a
 * study file with its keys in any order, has the same id.
 */

import type { TrainSessionCache } from '../train/ort-engine.js';
import type { JobMetrics, JobResult } from '../formats/index.js';
import type { Dataset } from '../data/types.js';

/** Formats (defined once in src/formats, types derived from the schemas). */
export type {
  AdaptStart,
  CrossingMetrics,
  EvalRow,
  FanMetrics,
  Job,
  JobMetrics,
  JobResult,
  JobStatus,
} from '../formats/index.js';

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
  /** Training sessions shared between the jobs of one worker (its policy: the worker trims after each job). */
  sessions?: TrainSessionCache;
  /** The job's dataset, already built (a NATS job's files confined to the worker's data root); default: load it. */
  dataset?: Dataset;
}

export interface JobOutcome {
  metrics: JobMetrics;
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
