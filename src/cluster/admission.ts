/**
 * A NATS worker's side of memory admission (study/admission.ts): a job that
 * fits the worker's budget but not beside its running jobs waits here for
 * room, its delivery kept alive meanwhile (in-progress acks), so it is neither
 * redelivered to another worker nor counted as another delivery. A job bigger
 * than the whole budget never gets here: checkJobMemory leaves it for a
 * bigger worker (refusals.ts).
 */
import type { MemoryAdmission, MemoryGrant } from '../study/admission.js';
import { jobMemory } from '../study/job-memory.js';
import { formatBytes } from '../engines/memory.js';
import type { Job } from '../study/types.js';
import type { FieldFiles } from '../models/field-files.js';

/**
 * Room for `job` in the budget, or undefined when `signal` aborts first; `keepAlive` runs every `everyMs`
 * while it waits, and `onWait` hears once that it waits.
 */
export async function admitDelivery(
  admission: MemoryAdmission,
  job: Job,
  files: FieldFiles,
  keepAlive: () => void,
  signal: AbortSignal,
  everyMs: number,
  onWait?: (line: string) => void,
): Promise<MemoryGrant | undefined> {
  const needs = jobMemory(job, files);
  if (admission.fitsNow(needs)) return admission.acquire(needs);
  onWait?.(`job ${job.id} needs about ${formatBytes(needs)}: it waits for room (${admission.describe()}; --memory)`);
  const timer = setInterval(keepAlive, everyMs);
  try {
    return await admission.acquire(needs, signal);
  } catch (e) {
    if ((e as Error).name === 'AbortError') return undefined;
    throw e;
  } finally {
    clearInterval(timer);
  }
}
