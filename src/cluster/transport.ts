/**
 * A transport moves jobs to wherever `executeJob` runs and brings results
 * back; it knows nothing about the result store or the CLI. Local runs use a
 * piscina pool of worker threads (pool.ts), cluster runs a NATS JetStream
 * work queue served by `odeness worker` processes (nats.ts).
 */
import type { Job, JobProgress, JobResult } from '../study/types.js';

export interface PendingJob {
  job: Job;
  /** 1 for a first run; a `--retry-failed` rerun of a failed job counts up. */
  attempt: number;
}

/** Where a transport reports to (implemented by runStudy over the result store). */
export interface JobSink {
  /** A fresh empty directory for one job's bundle, inside the study's output directory. */
  tempBundleDir(id: string): Promise<string>;
  discard(dir: string): Promise<void>;
  started(id: string, worker: string): void;
  progress(id: string, worker: string, p: JobProgress): void;
  /** Record a result; a done result's bundle is in `bundleTmp`. Later duplicates of an id are ignored. */
  finished(result: JobResult, bundleTmp?: string): Promise<void>;
  log(level: 'info' | 'warn', message: string): void;
}

export interface Transport {
  /** For logs and events: `local (4 threads)`, `nats nats://***@host:4222`. */
  readonly description: string;
  /** Resolves once every job has a result, or soon after `signal` aborts. */
  run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
