/**
 * A NATS worker treats every job message as untrusted input. Before anything
 * is allocated or opened, a job must:
 *   - carry the coordinator's signature, when the worker has a job key (HMAC-SHA256);
 *   - have the content hash of its fields as its id;
 *   - have spec strings within the bounds of the registries that own them (checkJobSpecs);
 *   - fit the worker's memory budget (checkJobMemory; else it is left for a bigger worker);
 *   - read files only under the worker's `--data-root` (regular files, size checked first).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { OdenessError } from '../errors.js';
import { parseDatasetSpec } from '../data/spec.js';
import { canonicalJson, jobId } from '../study/plan.js';
import type { Job } from '../study/types.js';
import { checkJobSpecs } from '../study/job-specs.js';
import { locateField, type FieldFiles } from '../models/field-files.js';
import { jobMemory } from '../study/job-memory.js';
import type { JobMessage } from './protocol.js';
import type { RefusalKind } from './refusals.js';
import { costRefusal } from './job-cost.js';

/**
 * A job this worker will not run. `record`: a failed result is stored for it
 * (its id is genuine and no worker could run it); `leave`: the reason is this
 * worker's own (another job key, a size it cannot hold), so the job is left
 * on the queue for another worker (refusals.ts); otherwise it is dropped.
 */
export class JobRefused extends Error {
  constructor(
    message: string,
    readonly record: boolean,
    readonly leave?: RefusalKind,
    /** Kind `memory`: what the job needs and this worker's whole budget, bytes (told to the coordinator). */
    readonly memory?: { needs: number; offers: number },
  ) {
    super(message);
  }
}

/**
 * A job whose estimated peak memory (Job.memory, bounded by the job format; estimated here when absent or
 * smaller, study/job-memory.ts) is more than this worker's whole `--memory` is left for a bigger worker.
 */
export function checkJobMemory(job: Job, budget: number, files: FieldFiles = {}): void {
  const needs = jobMemory(job, files);
  if (needs <= budget) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  throw new JobRefused(`memory: needs ${gib(needs)}, this worker offers ${gib(budget)} (--memory)`, false, 'memory', {
    needs,
    offers: budget,
  });
}

/**
 * A job's spec strings within the bounds of the registries that own them
 * (checkJobSpecs: the field registry's option ranges, the solver limits the
 * job carries, the dataset parser's sizes) — the same check the planner's
 * output passes; throws JobRefused naming the first one out of bounds.
 * `files`: the field files this worker fetched and verified, by hash.
 */
export function checkJobBounds(job: Job, files: FieldFiles = {}): void {
  try {
    // An imported field is read from this worker's verified copy (field-store.ts), never from a path in the job.
    checkJobSpecs(job, files);
    // Each size in bounds is not enough: their product too (job-cost.ts).
    const tooCostly = costRefusal({ ...job, field: locateField(job.field, files) });
    if (tooCostly) throw new JobRefused(tooCostly, true);
  } catch (e) {
    throw new JobRefused((e as Error).message, true);
  }
}

/** The id must be the content hash of the job: a job cannot pose as another. */
export function checkJobId(job: Job): void {
  const want = jobId(job);
  if (job.id !== want) throw new JobRefused(`job id ${job.id} is not the content hash of the job (${want})`, false);
}

export interface DataRootOptions {
  /** Directory file datasets must lie under; without it, jobs reading files are refused. */
  dataRoot?: string;
  /** Largest dataset file accepted (bytes). */
  maxDatasetBytes?: number;
}

export const DEFAULT_MAX_DATASET_BYTES = 2 ** 30;

async function checkFile(p: string, maxBytes: number): Promise<void> {
  const s = await stat(p);
  if (!s.isFile()) throw new JobRefused(`dataset path ${p} is not a regular file`, true);
  if (s.size > maxBytes)
    throw new JobRefused(
      `dataset file ${p} has ${s.size} bytes, more than the ${maxBytes} this worker accepts (--max-dataset-mb)`,
      true,
    );
}

/**
 * File datasets only under the data root (after resolving symbolic links),
 * regular files only, each no larger than the limit — checked with stat,
 * before anything is read.
 */
export async function checkDatasetFiles(job: Job, opts: DataRootOptions): Promise<void> {
  const spec = parseDatasetSpec(job.dataset);
  if (spec.kind !== 'json' && spec.kind !== 'cifar10') return;
  const given = spec.kind === 'json' ? spec.file : spec.dir;
  if (opts.dataRoot === undefined) {
    throw new JobRefused(`dataset ${job.dataset} reads files, and this worker was started without --data-root`, true);
  }
  const root = await realpath(opts.dataRoot);
  let real: string;
  try {
    real = await realpath(resolve(root, given));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      const lexical = resolve(root, given);
      const rel = relative(root, lexical);
      if (rel.startsWith('..') || isAbsolute(rel))
        throw new JobRefused(`dataset path ${given} is outside this worker's --data-root`, true);
      throw new JobRefused(`${given}: file not found`, true);
    }
    throw new JobRefused(`dataset path ${given}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, true);
  }
  const rel = relative(root, real);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new JobRefused(`dataset path ${given} is outside this worker's --data-root`, true);
  const maxBytes = opts.maxDatasetBytes ?? DEFAULT_MAX_DATASET_BYTES;
  if (spec.kind === 'json') return checkFile(real, maxBytes);
  const s = await stat(real);
  if (!s.isDirectory()) throw new JobRefused(`dataset path ${given} is not a directory`, true);
  for (const e of await readdir(real, { withFileTypes: true })) {
    if (!e.isDirectory()) await checkFile(join(real, e.name), maxBytes);
  }
}

/** The bytes a job message is signed over: everything but the signature, canonically. */
function signedText(m: Omit<JobMessage, 'sig'>): string {
  const { sig: _ignored, ...rest } = m as JobMessage;
  return canonicalJson(rest);
}

export function signJob(key: Buffer, m: Omit<JobMessage, 'sig'>): string {
  return createHmac('sha256', key).update(signedText(m)).digest('hex');
}

export function checkJobSignature(key: Buffer | undefined, m: JobMessage): void {
  if (!key) return;
  if (m.sig === undefined)
    throw new JobRefused(
      'the job message is not signed, and this worker requires signed jobs (--job-key-file)',
      false,
      'signature',
    );
  const want = Buffer.from(signJob(key, m), 'hex');
  const got = Buffer.from(m.sig, 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want))
    throw new JobRefused('the job message has a wrong signature (another --job-key-file?)', false, 'signature');
}

/** Read a shared job key file (at least 16 bytes; surrounding whitespace ignored). */
export function readKeyFile(flag: string, file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new OdenessError(
      `${flag} ${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  if (Buffer.byteLength(text) < 16) throw new OdenessError(`${flag} ${file}: the key must be at least 16 characters`);
  return Buffer.from(text);
}
