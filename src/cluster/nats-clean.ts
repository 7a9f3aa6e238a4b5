/**
 * `odeness study clean FILE --nats URL`: remove one study's traces from a
 * cluster — its results (KV, small bundles inside them), every bundle of
 * every run of its jobs (object store) and its queued job messages — without touching other studies.
 * Buckets also expire entries on their own (retention, nats-resources.ts).
 */
import type { KvEntry } from '@nats-io/kv';
import type { Job } from '../study/types.js';
import { connectNats, describeNats, type NatsConnectOptions } from './nats-connect.js';
import { JOB_SUBJECT_PREFIX, openCluster, STREAM } from './nats-resources.js';
import { decodeEntry, purgeResult } from './nats-results.js';

export interface CleanSummary {
  jobs: number;
  results: number;
  bundles: number;
  queued: number;
}

function carriesBundle(e: KvEntry): boolean {
  try {
    return decodeEntry(e)?.bundleData !== undefined;
  } catch {
    return false;
  }
}

export async function cleanStudy(jobs: readonly Job[], opts: NatsConnectOptions): Promise<CleanSummary> {
  const nc = await connectNats(opts);
  try {
    const { kv, os, jsm } = await openCluster(nc, describeNats(opts));
    const ids = new Set(jobs.map((j) => j.id));
    const summary: CleanSummary = { jobs: ids.size, results: 0, bundles: 0, queued: 0 };
    for (const info of await os.list()) {
      if (ids.has(info.name.split('.')[0]!)) {
        await os.delete(info.name);
        summary.bundles++;
      }
    }
    for (const id of ids) {
      const e = await kv.get(id);
      if (e && e.operation === 'PUT') {
        await purgeResult(jsm, id); // the bucket is create only: no purge marker, the purge API
        summary.results++;
        if (carriesBundle(e)) summary.bundles++; // a small bundle rides inside its result
      }
      const r = await jsm.streams.purge(STREAM, { filter: `${JOB_SUBJECT_PREFIX}${id}` });
      summary.queued += r.purged;
    }
    return summary;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
