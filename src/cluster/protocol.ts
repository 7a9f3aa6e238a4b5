/**
 * Every message the transports exchange, as schemas (zod) with the TypeScript
 * types derived from them — the one definition of each message.
 *
 *   NATS (msgpack, see codec.ts; everything from the network is untrusted):
 *     job      coordinator → work queue → worker        JobMessage
 *     result   worker → KV bucket (key = job id)        ResultMessage
 *     event    worker → core subject (fire and forget)  EventMessage (start / progress)
 *     bundle   worker → object store (name = run name)  BundleArchive (a directory's files), or a small one
 *              inside its result message (bundleData)
 *   (the local pool's thread messages are src/study/local-messages.ts)
 */
import { z } from 'zod';
import { JOB_LIMITS, JobResultSchema, JobSchema } from '../formats/index.js';
import { JobProgressSchema } from '../study/local-messages.js';
import type { Job } from '../study/types.js';

/** Bumped when a message changes shape; a message of another version gets a clear failure, never silence. */
export const PROTOCOL_VERSION = 3;

/** Largest bundle archive a result message may carry itself (bundleData): NATS's default max payload. */
export const MAX_INLINE_BUNDLE_BYTES = 2 ** 20;

/** Jobs and results are the formats of src/formats (bounded before anything is allocated). */
const jobSchema = JobSchema;
const resultSchema = JobResultSchema;

const version = z.literal(PROTOCOL_VERSION);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const attempt = z.number().int().min(1).max(JOB_LIMITS.attempt);

export const JobMessageSchema = z.object({
  v: version,
  job: jobSchema,
  /** Which run of this job id this is (1 = first; `--retry-failed` counts up). */
  attempt,
  /** Deliveries before a worker records the job as failed (the delivery count comes from JetStream's metadata). */
  maxDeliver: z.number().int().min(1).max(1000),
  /** HMAC-SHA256 (hex) over the rest of the message, with the key shared by coordinator and workers (optional). */
  sig: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

export const ResultMessageSchema = z.object({
  v: version,
  result: resultSchema,
  /** Object-store name of the bundle archive of a done result: `<id>.<run>`, one name per run. */
  bundle: z
    .string()
    .regex(/^[0-9a-f]{16}\.[0-9a-f]{16}$/)
    .optional(),
  /** Set on the failure a worker records when a job's deliveries ran out: a later genuine done supersedes it. */
  exhausted: z.boolean().optional(),
  /** The bundle archive as uploaded: its SHA-256 (hex), size and object-store id (chunks subject), sealed below. */
  bundleDigest: hex64.optional(),
  bundleBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  bundleNuid: z
    .string()
    .regex(/^[A-Za-z0-9]{1,64}$/)
    .optional(),
  /**
   * A small bundle's archive itself, instead of an object-store upload (no object-store round trips per job).
   * Outside the seal: bundleDigest and bundleBytes are sealed, and these bytes must match them (bundle-fetch.ts).
   */
  bundleData: z
    .custom<Uint8Array>((b) => b instanceof Uint8Array && b.length <= MAX_INLINE_BUNDLE_BYTES, {
      message: `expected at most ${MAX_INLINE_BUNDLE_BYTES} bytes`,
    })
    .optional(),
  /** HMAC-SHA256 (hex) over the rest, when the cluster signs jobs (result-auth.ts). */
  mac: hex64.optional(),
});
export type ResultMessage = z.infer<typeof ResultMessageSchema>;

export const EventMessageSchema = z.object({
  v: version,
  /**
   * `storage`: the worker cannot store this job's bundle or result, the server's JetStream storage is full
   * (storage-full.ts).
   */
  kind: z.enum(['start', 'progress', 'storage']),
  id: z.string().regex(/^[0-9a-f]{16}$/),
  worker: z.string().max(500),
  progress: JobProgressSchema.optional(),
  error: z.string().max(2000).optional(),
  /** Send time (ms since the epoch) and seal, when the cluster signs jobs: spoofed and replayed events are ignored. */
  at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  mac: hex64.optional(),
});
export type EventMessage = z.infer<typeof EventMessageSchema>;

export const BundleArchiveSchema = z.object({
  v: version,
  files: z.array(z.object({ path: z.string().min(1).max(1000), data: z.instanceof(Uint8Array) })).max(10_000),
});
export type BundleArchive = z.infer<typeof BundleArchiveSchema>;

/*
 * Job processes (process-pool.ts ↔ workers/job-process.ts, node IPC with the
 * `advanced` serialization): the worker sends one `run` at a time; the child
 * answers `ready` once loaded, then `start`, `progress`…, and one `result`.
 */
export type ProcessControl = {
  kind: 'run';
  job: Job;
  attempt: number;
  bundleDir: string;
  worker: string;
  dataRoot?: string;
  /** The job's field file in the worker's temp dir, by hash (field-store.ts). */
  fieldFiles?: Readonly<Record<string, string>>;
};

export const ProcessReportSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ready') }),
  z.object({ kind: z.literal('start') }),
  z.object({ kind: z.literal('progress'), progress: JobProgressSchema }),
  z.object({ kind: z.literal('result'), result: resultSchema }),
]);
export type ProcessReport = z.input<typeof ProcessReportSchema>;
