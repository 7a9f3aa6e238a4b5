/**
 * What the study layer asks of a transport. A transport moves jobs to
 * wherever `executeJob` runs and brings results back; it knows nothing about
 * the result store or the CLI. The study owns this interface and receives a
 * transport (runStudy's `transport` option); the implementations live below
 * it in src/cluster: `LocalTransport` (a piscina pool of worker threads) and
 * `NatsTransport` (a NATS JetStream work queue served by `odeness worker`).
 */
import type { Job, JobProgress, JobResult } from './types.js';

export interface PendingJob {
  job: Job;
  /** 1 for a first run; a `--retry-failed` rerun of a failed job counts up. */
  attempt: number;
  /** Where the job's field file lies on this machine (an `onnx:` field, named in the job by its hash). */
  fieldFile?: string;
}

/** Where a transport reports to (implemented by runStudy over the result store). */
export interface JobSink {
  /** A fresh empty directory for one job's bundle, inside the study's output directory. */
  tempBundleDir(id: string): Promise<string>;
  discard(dir: string): Promise<void>;
  started(id: string, worker: string): void;
  progress(id: string, worker: string, p: JobProgress): void;
  /**
   * Record a result; a done result's bundle is in `bundleTmp` (`bundleSynced` when its files and directories
   * were fsync'd as they were written). Later duplicates of an id are ignored.
   */
  finished(result: JobResult, bundleTmp?: string, bundleSynced?: boolean): Promise<void>;
  log(level: 'info' | 'warn', message: string): void;
}

/** runStudy closes the transport it was given when the run ends (or fails). */
export interface Transport {
  /** For logs and events: `local (4 threads)`, `nats nats://***@host:4222`. */
  readonly description: string;
  /** Resolves once every job has a result, or soon after `signal` aborts. */
  run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
