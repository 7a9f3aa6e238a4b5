/**
 * The messages of the local transport (src/study/local.ts ↔
 * workers/pool-worker.ts, structured clone within one process):
 *     task     main → thread                            PoolTask
 *     report   thread → main, on the task's port        PoolTaskMessage
 *     control  main → thread, on the task's port        PoolControlMessage
 * and a job's progress report, which the NATS messages carry too.
 */
import type { MessagePort } from 'node:worker_threads';
import { z } from 'zod';
import type { Job, JobProgress } from './types.js';

export const JobProgressSchema = z.object({
  iteration: z.number().int().nonnegative(),
  iterations: z.number().int().nonnegative(),
  loss: z.number().optional(),
  accuracy: z.number().optional(),
}) satisfies z.ZodType<JobProgress>;

/** What the main thread sends a worker thread (the port is transferred, not cloned). */
export interface PoolTask {
  job: Job;
  attempt: number;
  bundleDir: string;
  workerPrefix: string;
  port?: MessagePort;
  /** Where the study's field files lie, by hash (models/field-files.ts). */
  fieldFiles?: Readonly<Record<string, string>>;
}

export const PoolTaskMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start'), worker: z.string() }),
  z.object({ kind: z.literal('progress'), worker: z.string(), progress: JobProgressSchema }),
]);
/** What a worker thread posts back on the task's port while the task runs. */
export type PoolTaskMessage = z.infer<typeof PoolTaskMessageSchema>;

export const PoolControlMessageSchema = z.object({ kind: z.literal('cancel') });
/** What the main thread posts to a running task on its port: stop at the next safe point. */
export type PoolControlMessage = z.infer<typeof PoolControlMessageSchema>;
