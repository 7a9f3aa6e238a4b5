/**
 * A study report written by a short-lived child process (workers/report-render.ts): what the live report
 * of a running study uses. The render reads and holds every result; in the coordinator's own heap that
 * grew its RSS by ~35 KB per result recorded (V8 keeps the heap a render grew) and blocked its event loop
 * for the render's seconds. The child runs at a lower CPU priority than the study's own loops.
 */
import { fork } from 'node:child_process';
import { lowerPriority, workerFile } from '../child-processes.js';
import type { StudyReportOptions } from './study.js';

export interface RenderRequest {
  readonly dir: string;
  readonly options: StudyReportOptions;
}

export type RenderReply = { ok: true; htmlPath: string } | { ok: false; error: string };

/** Nice value of a render: below a study's control loops, level with NATS job processes. */
const RENDER_NICE = 10;
const STDERR_TAIL = 2048;

/**
 * Write DIR's study report in a child process; rejects with the child's error (or how it died). `signal`
 * stops the child (a live page about to be replaced by the final one need not be finished).
 */
export function writeStudyReportInChild(
  dir: string,
  options: StudyReportOptions = {},
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((res, rej) => {
    const child = fork(workerFile('report-render'), [], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    lowerPriority(child.pid, RENDER_NICE);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_TAIL)));
    let reply: RenderReply | undefined;
    child.once('message', (m: RenderReply) => (reply = m));
    child.once('error', rej);
    child.once('exit', (code, signal) => {
      if (reply?.ok) return res(reply.htmlPath);
      if (reply) return rej(new Error(reply.error));
      const tail = stderr.trim().split('\n').slice(-2).join(' | ');
      rej(new Error(`the report process died (${signal ?? `exit code ${code}`})${tail ? `: ${tail}` : ''}`));
    });
    const stop = () => child.kill('SIGKILL');
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
    child.once('exit', () => signal?.removeEventListener('abort', stop));
    if (child.connected) child.send({ dir, options } satisfies RenderRequest);
  });
}
