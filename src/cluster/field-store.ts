/**
 * The bytes of `onnx:` field files on a NATS cluster. A job names its field file by name and SHA-256
 * (models/field-files.ts), inside the signed job; the bytes travel through the object store, never a path:
 *   - the coordinator puts each study's field files into the bundles bucket as `field.<sha256>`, once per
 *     study run however many jobs name them (always put, never trusting an object already there: anyone
 *     who may upload bundles could have planted one with the right metadata over other bytes);
 *   - a worker fetches the object as untrusted data (bundle-fetch.ts: no link followed, size, chunk count and
 *     digest checked before reading, at most ONNX_FIELD_MAX_BYTES), verifies the SHA-256 of what arrived
 *     against the job's, and keeps it in its own temporary directory for its job processes.
 * A missing object, another digest or an oversized object is a FieldFileRefused: the job's failed result.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { FileFormatError } from '../errors.js';
import { fieldFileDigest, fieldFilesFor, type FieldFiles } from '../models/field-files.js';
import type { PendingJob } from '../study/transport.js';
import { JobRefused } from './job-checks.js';
import { ONNX_FIELD_MAX_BYTES } from '../models/fields/onnx.js';
import { BundleRefused, fetchBundle } from './bundle-fetch.js';
import { retrying } from './nats-resources.js';

/** A field file a worker will not take: the reason becomes the job's failed result (a JobRefused to record). */
export class FieldFileRefused extends JobRefused {
  constructor(message: string) {
    super(message, true);
  }
}

/** Where the pending jobs' field files lie on the coordinator, by hash (what uploadFieldFiles puts). */
export function pendingFieldFiles(jobs: readonly PendingJob[]): FieldFiles {
  const out: Record<string, string> = {};
  for (const p of jobs) Object.assign(out, p.fieldFile !== undefined ? fieldFilesFor(p.job.field, p.fieldFile) : {});
  return out;
}

/** The object-store name of the field file with this SHA-256 (hex). */
export const fieldObjectName = (sha256: string) => `field.${sha256}`;

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Coordinator: put every field file the jobs name (SHA-256 → local path) into the object store; each must
 * still have its hash.
 */
export async function uploadFieldFiles(
  os: ObjectStore,
  files: FieldFiles,
  opts: { signal?: AbortSignal; onUpload?: (file: string, bytes: number) => void } = {},
): Promise<void> {
  for (const [sha, file] of Object.entries(files)) {
    const name = fieldObjectName(sha);
    const size = (await stat(file)).size;
    if (size > ONNX_FIELD_MAX_BYTES)
      throw new FileFormatError(file, `has ${size} bytes, more than the limit of ${ONNX_FIELD_MAX_BYTES}`);
    const bytes = await readFile(file);
    if (sha256Hex(bytes) !== sha)
      throw new FileFormatError(
        file,
        `changed since the study was planned (sha256 ${sha256Hex(bytes)}, planned ${sha})`,
      );
    await retrying(`upload field file ${file}`, () => os.putBlob({ name }, bytes), retryOpts(opts.signal));
    opts.onUpload?.(file, bytes.length);
  }
}

const retryOpts = (signal?: AbortSignal) => ({ forMs: 60_000, ...(signal ? { signal } : {}) });

/**
 * Worker: the field file a job's canonical field names, as FieldFiles for the job (empty for other kinds):
 * from `cacheDir` when fetched before, else fetched, checked and written there (a temporary name renamed
 * into place, so a job process never sees part of a file). Throws FieldFileRefused naming the reason.
 */
export async function fetchFieldFile(
  h: { js: JetStreamClient; jsm: JetStreamManager; os: ObjectStore },
  field: string,
  cacheDir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FieldFiles> {
  const sha = fieldFileDigest(field);
  if (sha === undefined) return {};
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new FieldFileRefused(`field "${field}": sha256 is not 64 hex digits`);
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const file = join(cacheDir, `${sha}.onnx`);
  if (
    await stat(file).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return { [sha]: file };
  let bytes: Uint8Array;
  try {
    bytes = await fetchBundle(
      h,
      { name: fieldObjectName(sha), label: `field file ${fieldObjectName(sha)}`, digest: sha },
      { maxBytes: ONNX_FIELD_MAX_BYTES, cap: 'the field file limit', ...(opts.signal ? { signal: opts.signal } : {}) },
    );
  } catch (e) {
    if (e instanceof BundleRefused) throw new FieldFileRefused(e.message);
    throw e;
  }
  // fetchBundle checked the bytes against the digest it was given: checked again here, where the file is written.
  if (sha256Hex(bytes) !== sha) throw new FieldFileRefused(`field file ${fieldObjectName(sha)}: SHA-256 mismatch`);
  const part = `${file}.${process.pid}.${Date.now()}.part`;
  await writeFile(part, bytes, { mode: 0o600 });
  await rename(part, file);
  return { [sha]: file };
}
