/**
 * piscina worker-thread entry: runs one job per task through the one job path
 * (`runJobToResult` → `executeJob`), reports start/progress on the task's port, and
 * stops the job when the main thread posts `cancel` on it.
 */
import '../src/no-telemetry.js'; // first: before anything loads onnxruntime
import { threadId, type MessagePort } from 'node:worker_threads';
import { runJobToResult } from '../src/study/job.js';
import { createTrainSessionCache } from '../src/train/ort-engine.js';
import type { JobResult } from '../src/study/types.js';
import type { PoolControlMessage, PoolTask, PoolTaskMessage } from '../src/study/local-messages.js';

/** This thread's training sessions, kept between its jobs (the jobs of a study often share an architecture). */
const sessions = createTrainSessionCache();

export default async function runPoolTask(task: PoolTask): Promise<JobResult> {
  const worker = `${task.workerPrefix}/t${threadId}`;
  const port: MessagePort | undefined = task.port;
  const send = (m: PoolTaskMessage) => port?.postMessage(m);
  const cancel = new AbortController();
  port?.on('message', (m: PoolControlMessage) => {
    if (m?.kind === 'cancel') cancel.abort();
  });
  send({ kind: 'start', worker });
  try {
    return await runJobToResult(task.job, {
      bundleDir: task.bundleDir,
      attempt: task.attempt,
      worker,
      onProgress: (progress) => send({ kind: 'progress', worker, progress }),
      signal: cancel.signal,
      sessions,
      ...(task.fieldFiles ? { fieldFiles: task.fieldFiles } : {}),
    });
  } finally {
    port?.close();
  }
}
