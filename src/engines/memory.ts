/**
 * Memory-bounded evaluation: a budget in bytes for the working memory of one
 * field evaluation, and a field wrapper that evaluates a batch in chunks of
 * rows that fit it. A vector field acts on each sample independently, so
 * chunking its calls changes nothing in the solve (adaptive steps are still
 * chosen for the whole batch); only the peak memory of a call shrinks.
 *
 * Why it matters: tfjs-wasm has one linear heap of at most 4 GiB, and every
 * activation of a field evaluation lives in it until the call ends; a conv2d
 * field with 128 channels on 28×28 images needs ~0.4 MB per sample per layer,
 * so one call on a 1 024-sample batch overflowed it (`Aborted()` in Relu).
 */
import { SpecError } from '../errors.js';
import type { AsyncField, SyncField } from '../solvers/vector.js';

const MiB = 2 ** 20;

/** Default working memory of one field evaluation (`--memory`): 512 MiB. */
export const DEFAULT_MEMORY_BYTES = 512 * MiB;
/** Budgets below this make chunks of a few rows and gain nothing. */
export const MIN_MEMORY_BYTES = 16 * MiB;
/** tfjs-wasm's heap ends at 4 GiB and its pointers misbehave past 2 GiB: never plan for more there. */
export const WASM_MEMORY_CAP_BYTES = 1536 * MiB;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  kib: 2 ** 10,
  m: MiB,
  mb: MiB,
  mib: MiB,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
};

/** "512m", "2g", "1.5GiB", "300000000" → bytes (binary units). */
export function parseMemory(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new SpecError(`memory "${text}" is not a size like 512m, 2g or 1.5GiB`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < MIN_MEMORY_BYTES)
    throw new SpecError(`memory "${text}" is below the minimum of ${formatBytes(MIN_MEMORY_BYTES)}`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(bytes % 2 ** 30 === 0 ? 0 : 1)} GiB`;
  return `${Math.round(bytes / MiB)} MiB`;
}

/** Rows per chunk so that rows × bytesPerRow stays within the budget (at least 1, at most `max`). */
export function rowsWithin(budgetBytes: number, bytesPerRow: number, max = Number.MAX_SAFE_INTEGER): number {
  return Math.max(1, Math.min(max, Math.floor(budgetBytes / Math.max(1, bytesPerRow))));
}

/**
 * A field on `n` rows of `width` values each that calls `make(rows)`'s field
 * on chunks of at most `chunk` rows. With one chunk it is `make(n)` itself.
 */
export function chunkedField(
  make: (rows: number) => AsyncField<Float32Array>,
  n: number,
  width: number,
  chunk: number,
): AsyncField<Float32Array> {
  if (chunk >= n) return make(n);
  const fields = new Map<number, AsyncField<Float32Array>>();
  const fieldFor = (rows: number) => {
    let f = fields.get(rows);
    if (!f) fields.set(rows, (f = make(rows)));
    return f;
  };
  return async (t, z) => {
    const out = new Float32Array(n * width);
    for (let s = 0; s < n; s += chunk) {
      const rows = Math.min(chunk, n - s);
      out.set(await fieldFor(rows)(t, z.subarray(s * width, (s + rows) * width)), s * width);
    }
    return out;
  };
}

/** The synchronous twin of chunkedField (tfjs fields evaluated on typed arrays). */
export function chunkedSyncField(
  make: (rows: number) => SyncField<Float32Array>,
  n: number,
  width: number,
  chunk: number,
): SyncField<Float32Array> {
  if (chunk >= n) return make(n);
  return (t, z) => {
    const out = new Float32Array(n * width);
    for (let s = 0; s < n; s += chunk) {
      const rows = Math.min(chunk, n - s);
      out.set(make(rows)(t, z.subarray(s * width, (s + rows) * width)), s * width);
    }
    return out;
  };
}
