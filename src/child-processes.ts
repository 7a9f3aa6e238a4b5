/**
 * What the modules that start processes and threads of their own share: where a worker entry lies, and how
 * a child is set below the work that must keep answering (a study's control loop, a worker's NATS connection).
 */
import { setPriority } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type WorkerEntry = 'job-process' | 'pool-worker' | 'report-render';

/** `workers/NAME.ts` under tsx, `dist/workers/NAME.js` compiled: beside src/ either way. */
export function workerFile(name: WorkerEntry): string {
  const here = fileURLToPath(import.meta.url);
  return resolve(dirname(here), '..', 'workers', `${name}${extname(here)}`);
}

/** Lower a child's CPU priority to `nice`; where that is not permitted (a container without CAP_SYS_NICE), ours. */
export function lowerPriority(pid: number | undefined, nice: number): void {
  if (pid === undefined || nice === 0) return;
  try {
    setPriority(pid, nice);
  } catch {
    /* not permitted here */
  }
}
