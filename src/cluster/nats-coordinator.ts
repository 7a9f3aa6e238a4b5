/**
 * The NATS transport, coordinator side: connects, creates or binds to the
 * cluster's resources (nats-resources.ts), and runs a study's jobs on them —
 * each run publishes the jobs to the work queue, watches the result bucket,
 * downloads bundles and hands results to the study's sink (nats-study-run.ts).
 */
import { hostname } from 'node:os';
import { OdenessError } from '../errors.js';
import type { JobSink, PendingJob, Transport } from '../study/transport.js';
import { pendingFieldFiles, uploadFieldFiles } from './field-store.js';
import { connectNats, describeNats } from './nats-connect.js';
import {
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_MAX_DELIVER,
  DEFAULT_RETENTION,
  openCluster,
  type ClusterHandles,
} from './nats-resources.js';
import { isStorageFull, storageFullError } from './storage-full.js';
import { StudyRun, type NatsStudyOptions } from './nats-study-run.js';

export { DEFAULT_REFUSAL_GRACE_MS, type NatsStudyOptions } from './nats-study-run.js';

/**
 * The coordinator: publishes the study's jobs to the work queue, watches the
 * result bucket, downloads bundles and hands results to the sink.
 */
export class NatsTransport implements Transport {
  readonly description: string;
  private readonly closers: (() => Promise<void> | void)[] = [];

  private constructor(
    private readonly h: ClusterHandles,
    private readonly opts: NatsStudyOptions,
  ) {
    this.description = `nats ${describeNats(opts)}`;
  }

  static async connect(opts: NatsStudyOptions): Promise<NatsTransport> {
    if (opts.ackWaitMs !== undefined && !(opts.ackWaitMs >= 1000))
      throw new OdenessError(`NATS ack wait must be at least 1000 ms, got ${opts.ackWaitMs}`);
    if (opts.maxDeliver !== undefined && !(Number.isInteger(opts.maxDeliver) && opts.maxDeliver >= 1))
      throw new OdenessError(`NATS max deliver must be a positive integer, got ${opts.maxDeliver}`);
    const nc = await connectNats({ ...opts, name: opts.name ?? `odeness coordinator ${hostname()}/${process.pid}` });
    try {
      const h = await openCluster(nc, describeNats(opts), {
        ackWaitMs: opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS,
        maxDeliver: opts.maxDeliver ?? DEFAULT_MAX_DELIVER,
        retention: { ...DEFAULT_RETENTION, ...opts.retention },
        ttlGiven: opts.retention?.ttlMs !== undefined,
      });
      return new NatsTransport(h, opts);
    } catch (e) {
      await nc.close().catch(() => undefined);
      // No room for the buckets' size limits (the server's max_file_store, or its disk).
      if (isStorageFull(e))
        throw await storageFullError(undefined, describeNats(opts), `creating the buckets: ${(e as Error).message}`);
      throw e;
    }
  }

  async run(jobs: readonly PendingJob[], sink: JobSink, signal: AbortSignal): Promise<void> {
    for (const notice of this.h.notices.splice(0)) sink.log('warn', notice);
    // onnx: fields: workers fetch the files' bytes from the object store by hash (field-store.ts).
    await uploadFieldFiles(this.h.os, pendingFieldFiles(jobs), {
      signal,
      onUpload: (file, bytes) => sink.log('info', `field file ${file} (${bytes} bytes) put into the object store`),
    });
    return new StudyRun(this.h, this.opts, this.description, jobs, sink, signal, this.closers).execute();
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0)) await Promise.resolve(c()).catch(() => undefined);
    await this.h.nc.drain().catch(() => this.h.nc.close());
  }
}
