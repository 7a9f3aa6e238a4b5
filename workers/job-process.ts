/**
 * Child-process entry of a NATS worker's job (src/cluster/process-pool.ts):
 * runs one job at a time through the one job path (runJobToResult → executeJob) and
 * reports over IPC. A fatal error here ends this process only. (The fault
 * tests inject aborts and stalls from outside: test/helpers/job-hooks.mjs.)
 */
import '../src/no-telemetry.js'; // first: before anything loads onnxruntime
import { runJobToResult } from '../src/study/job.js';
import { createTrainSessionCache } from '../src/train/ort-engine.js';
import type { ProcessControl, ProcessReport } from '../src/cluster/protocol.js';

const send = (m: ProcessReport) => process.send?.(m);
/** This process's training sessions, kept between its jobs (trimmed by runJobToResult after each). */
const sessions = createTrainSessionCache();

process.on('message', (m: ProcessControl) => {
  if (m?.kind !== 'run') return;
  void (async () => {
    send({ kind: 'start' });
    const result = await runJobToResult(m.job, {
      bundleDir: m.bundleDir,
      attempt: m.attempt,
      worker: m.worker,
      ...(m.dataRoot !== undefined ? { dataRoot: m.dataRoot } : {}),
      ...(m.fieldFiles ? { fieldFiles: m.fieldFiles } : {}),
      onProgress: (progress) => send({ kind: 'progress', progress }),
      sessions,
    });
    send({ kind: 'result', result });
  })();
});
// The parent going away (a SIGKILLed worker) must not leave this job running.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready' });
