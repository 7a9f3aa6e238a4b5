/**
 * Child-process entry of a NATS worker's job (src/cluster/process-pool.ts):
 * runs one job at a time through the one job path (runJob → executeJob) and
 * reports over IPC. A fatal error here ends this process only.
 *
 * Test-only hooks (environment, read nowhere else): ODENESS_TEST_ABORT_JOB=<id>
 * aborts the process when that job starts (a V8-level abort, like a
 * "Fatal JavaScript invalid size error"); ODENESS_TEST_STALL_JOB=<id>:<ms>
 * sleeps that long, reporting no progress, before running it.
 */
import '../src/no-telemetry.js'; // first: before anything loads onnxruntime
import { runJob } from '../src/study/job.js';
import { createTrainSessionCache } from '../src/train/ort-engine.js';
import type { ProcessControl, ProcessReport } from '../src/cluster/protocol.js';

const send = (m: ProcessReport) => process.send?.(m);
/** This process's training sessions, kept between its jobs (trimmed by runJob after each). */
const sessions = createTrainSessionCache();

process.on('message', (m: ProcessControl) => {
  if (m?.kind !== 'run') return;
  void (async () => {
    send({ kind: 'start' });
    if (process.env.ODENESS_TEST_ABORT_JOB === m.job.id) process.abort();
    const [stallId, stallMs] = (process.env.ODENESS_TEST_STALL_JOB ?? '').split(':');
    if (stallId === m.job.id) await new Promise((r) => setTimeout(r, Number(stallMs)));
    const result = await runJob(m.job, {
      bundleDir: m.bundleDir,
      attempt: m.attempt,
      worker: m.worker,
      ...(m.dataRoot !== undefined ? { dataRoot: m.dataRoot } : {}),
      onProgress: (progress) => send({ kind: 'progress', progress }),
      sessions,
    });
    send({ kind: 'result', result });
  })();
});
// The parent going away (a SIGKILLed worker) must not leave this job running.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready' });
