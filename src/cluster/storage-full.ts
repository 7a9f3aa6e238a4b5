/**
 * A JetStream store that is full: the server refuses writes ("maximum bytes
 * exceeded" when a bucket reached its size limit, "insufficient storage
 * resources" when the server's own storage — its store directory, `-sd`, or
 * `max_file_store` — has no room). Workers cannot store a bundle or result
 * then: they keep the job (it is not acked, nothing is lost) and tell the
 * coordinator with a `storage` event; the coordinator stops waiting and says
 * what is full and how to make room, instead of "no worker is pulling jobs".
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { OdenessError } from '../errors.js';
import { BUNDLES_BUCKET, RESULTS_BUCKET } from './nats-resources.js';

/** Whether the server refused a write for lack of storage. */
export function isStorageFull(e: unknown): boolean {
  const err = e as { message?: string; code?: unknown; api_error?: { err_code?: number }; cause?: unknown };
  const text = `${err?.message ?? ''} ${String((err?.cause as Error | undefined)?.message ?? '')}`;
  const code = err?.api_error?.err_code ?? Number(err?.code);
  if ([10047, 10077, 10023].includes(code)) return true;
  return /maximum bytes exceeded|insufficient (storage )?resources|no space left/i.test(text);
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** How full the buckets are, e.g. "bundles bucket odeness-bundles 19.9 MiB of 20.0 MiB". */
async function fill(jsm: JetStreamManager): Promise<string> {
  const parts: string[] = [];
  const buckets = [
    ['results bucket', RESULTS_BUCKET, `KV_${RESULTS_BUCKET}`],
    ['bundles bucket', BUNDLES_BUCKET, `OBJ_${BUNDLES_BUCKET}`],
  ] as const;
  for (const [what, name, stream] of buckets) {
    const si = await jsm.streams.info(stream).catch(() => undefined);
    if (!si) continue;
    const limit = si.config.max_bytes > 0 ? ` of ${mib(si.config.max_bytes)}` : '';
    parts.push(`${what} ${name} holds ${mib(si.state.bytes)}${limit}`);
  }
  return parts.join(', ');
}

/** The coordinator's error for a full store; `detail` is what the server or a worker said. */
export async function storageFullError(
  jsm: JetStreamManager | undefined,
  where: string,
  detail: string,
): Promise<OdenessError> {
  const buckets = jsm ? await fill(jsm).catch(() => '') : '';
  return new OdenessError(
    `the NATS server at ${where} has no room left in its JetStream storage ` +
      `(${detail}${buckets ? `; ${buckets}` : ''}): ` +
      'nothing is lost (stored results stay in the bucket, unfinished jobs stay queued); ' +
      'make room — `odeness study clean` of old studies, a shorter --keep-days, ' +
      'or more storage for nats-server (its store directory -sd, max_file_store) — then rerun the same command',
  );
}
