/**
 * piscina worker-thread entry: runs one job per task through the one job path
 * (`runJob` → `executeJob`) and reports start/progress on the task's port.
 */
import { threadId, type MessagePort } from 'node:worker_threads';
import { runJob } from '../src/study/job.js';
import type { JobResult } from '../src/study/types.js';
import type { PoolTask, PoolTaskMessage } from '../src/cluster/pool.js';

export default async function runPoolTask(task: PoolTask): Promise<JobResult> {
  const worker = `${task.workerPrefix}/t${threadId}`;
  const port: MessagePort | undefined = task.port;
  const send = (m: PoolTaskMessage) => port?.postMessage(m);
  send({ kind: 'start', worker });
  try {
    return await runJob(task.job, {
      bundleDir: task.bundleDir,
      attempt: task.attempt,
      worker,
      onProgress: (progress) => send({ kind: 'progress', worker, progress }),
    });
  } finally {
    port?.close();
  }
}
