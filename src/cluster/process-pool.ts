/**
 * Jobs in child processes, one job per process at a time: what a NATS worker
 * runs its (untrusted) jobs in. A worker thread cannot contain a V8 fatal
 * error — `scripts/poison-isolation.mjs` grows an array past V8's limit
 * ("Fatal JavaScript invalid size error"): inside a worker thread with
 * resourceLimits the whole process died (exit 133), inside a child process
 * only the child did (SIGTRAP) — so here a poison job takes down its own
 * process and nothing else, and becomes a failed result. Processes are
 * reused across jobs; one that dies is replaced for the next job. A running
 * job can be stopped at once (SIGKILL: safe for a process, unlike
 * terminating a thread that runs onnxruntime), for shutdown or its deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { lowerPriority, workerFile } from '../child-processes.js';
import { describeError } from '../study/job.js';
import type { Job, JobProgress, JobResult } from '../study/types.js';
import { ProcessReportSchema, type ProcessControl } from './protocol.js';
import { jobProcessEnv } from './job-env.js';

export interface ProcessRunHooks {
  onStart?: () => void;
  onProgress?: (p: JobProgress) => void;
  /** Abort to stop the job now (its process is killed); `run` then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Wall-clock limit of the job; past it the process is killed and the job fails. */
  deadlineMs?: number;
  /** The field file the job names, fetched and verified by this worker (field-store.ts), by hash. */
  fieldFiles?: Readonly<Record<string, string>>;
}

export interface ProcessPoolOptions {
  /** Heap limit of each job process (node's --max-old-space-size), MB. */
  memoryMb?: number;
  /** Jobs read files only under this directory (the worker's --data-root, see data/confined.ts). */
  dataRoot?: string;
  /** Nice value of the job processes (default DEFAULT_JOB_NICE; 0 keeps the worker's priority). */
  nice?: number;
  /** Environment of the job processes (default: this process's), less any credentials (job-env.ts). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Jobs compute at a lower CPU priority than the control loops beside them (this worker's acks, alive
 * notices and events; a coordinator or nats-server on the same machine): on 2 cores with 16 workers the
 * coordinator, at an equal share, recorded results a minute behind the jobs that made them.
 */
export const DEFAULT_JOB_NICE = 10;

/** Kept of a job process's stderr, for the failure message when it dies. */
const STDERR_TAIL = 4096;
const START_TIMEOUT_MS = 120_000;

export function abortError(): Error {
  const e = new Error('the job was cancelled');
  e.name = 'AbortError';
  return e;
}

class JobProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail = '';
  alive = true;

  constructor(opts: ProcessPoolOptions) {
    this.child = fork(workerFile('job-process'), [], {
      execArgv: [...process.execArgv, ...(opts.memoryMb ? [`--max-old-space-size=${opts.memoryMb}`] : [])],
      env: jobProcessEnv(opts.env ?? process.env),
      serialization: 'advanced', // typed arrays in metrics survive
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    lowerPriority(this.child.pid, opts.nice ?? DEFAULT_JOB_NICE);
    this.child.stderr!.on('data', (d: Buffer) => {
      process.stderr.write(d);
      this.stderrTail = (this.stderrTail + d.toString()).slice(-STDERR_TAIL);
    });
    this.exited = new Promise((res) =>
      this.child.once('exit', (code, signal) => ((this.alive = false), res({ code, signal }))),
    );
    this.ready = new Promise((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`job process did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      const onMessage = (m: unknown) => {
        if ((m as { kind?: string })?.kind !== 'ready') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        res();
      };
      this.child.on('message', onMessage);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        const tail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
        rej(new Error(`job process exited during start-up (${signal ?? `exit code ${code}`}): ${tail}`));
      });
    });
    this.ready.catch(() => undefined);
  }

  /** Why the process ended, with the last lines of its stderr that name an error. */
  deathMessage(code: number | null, signal: NodeJS.Signals | null): string {
    const why = this.stderrTail
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /fatal|error|abort/i.test(l))
      .slice(-2)
      .join(' | ');
    return `job process died (${signal ? `signal ${signal}` : `exit code ${code}`})${why ? `: ${why}` : ''}`;
  }

  send(m: ProcessControl): void {
    this.child.send(m);
  }

  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A failed result of a job run by `worker` since `started`. */
function failedResult(job: Job, attempt: number, worker: string, started: number, error: string): JobResult {
  const end = Date.now();
  return {
    id: job.id,
    job,
    status: 'failed',
    attempt,
    worker,
    error,
    timings: {
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(end).toISOString(),
      ms: end - started,
    },
  };
}

type RunOutcome = { result: JobResult } | { died: string } | { aborted: true } | { deadline: true };

/** Send one job to a (starting or idle) process and wait for whichever ends it first. */
async function runIn(proc: JobProcess, control: ProcessControl, hooks: ProcessRunHooks): Promise<RunOutcome> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<RunOutcome>((res) => {
      proc.ready.then(
        () => {
          if (!proc.alive) return;
          proc.child.on('message', (raw: unknown) => {
            const m = ProcessReportSchema.safeParse(raw);
            if (!m.success) return;
            if (m.data.kind === 'start') hooks.onStart?.();
            else if (m.data.kind === 'progress') hooks.onProgress?.(m.data.progress);
            else if (m.data.kind === 'result') res({ result: m.data.result });
          });
          proc.send(control);
        },
        (e: Error) => res({ died: e.message }),
      );
      void proc.exited.then(({ code, signal }) => res({ died: proc.deathMessage(code, signal) }));
      onAbort = () => res({ aborted: true });
      hooks.signal?.addEventListener('abort', onAbort, { once: true });
      if (hooks.deadlineMs !== undefined) timer = setTimeout(() => res({ deadline: true }), hooks.deadlineMs);
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) hooks.signal?.removeEventListener('abort', onAbort);
  }
}

/** At most `slots` jobs at once, each in its own child process. */
export class ProcessPool {
  private readonly idle: JobProcess[] = [];
  private readonly all = new Set<JobProcess>();
  private closed = false;

  constructor(private readonly opts: ProcessPoolOptions = {}) {}

  /**
   * Start `n` job processes now and wait until they can take jobs: a standing worker pays the processes'
   * start-up (~2 s of CPU each: onnxruntime and the job path loaded) once, not at its first study's jobs.
   * A process that fails to start is dropped; the first job then starts its own and reports why.
   */
  async warm(n: number): Promise<void> {
    const starting = Array.from({ length: Math.max(0, n - this.all.size) }, () => this.spawn());
    await Promise.all(
      starting.map((p) =>
        p.ready.then(
          () => void (!this.closed && p.alive && this.idle.push(p)),
          () => this.retire(p),
        ),
      ),
    );
  }

  /**
   * Run one job in a child process. Whatever happens inside it — an
   * exception, a V8 abort, the deadline — ends as a JobResult; only
   * `signal` makes this reject (AbortError).
   */
  async run(
    job: Job,
    attempt: number,
    bundleDir: string,
    worker: string,
    hooks: ProcessRunHooks = {},
  ): Promise<JobResult> {
    if (this.closed) throw new Error('ProcessPool is closed');
    if (hooks.signal?.aborted) throw abortError();
    const started = Date.now();
    const failed = (error: string) => failedResult(job, attempt, worker, started, error);
    const proc = this.idle.pop() ?? this.spawn();
    const control: ProcessControl = {
      kind: 'run',
      job,
      attempt,
      bundleDir,
      worker,
      ...(this.opts.dataRoot !== undefined ? { dataRoot: this.opts.dataRoot } : {}),
      ...(hooks.fieldFiles ? { fieldFiles: hooks.fieldFiles } : {}),
    };
    let keep = false;
    try {
      const outcome = await runIn(proc, control, hooks);
      if ('aborted' in outcome) throw abortError();
      if ('deadline' in outcome)
        return failed(
          `stopped after the per-job deadline of ${Math.round(hooks.deadlineMs! / 1000)} s (worker --job-timeout)`,
        );
      if ('died' in outcome) return failed(outcome.died);
      keep = true;
      return outcome.result;
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      return failed(`job process failed: ${describeError(e)}`);
    } finally {
      proc.child.removeAllListeners('message');
      if (keep && proc.alive && !this.closed) this.idle.push(proc);
      else await this.retire(proc);
    }
  }

  private spawn(): JobProcess {
    const p = new JobProcess(this.opts);
    this.all.add(p);
    return p;
  }

  private async retire(p: JobProcess): Promise<void> {
    this.all.delete(p);
    await p.kill();
  }

  /** Kill every job process (running jobs included). */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((p) => this.retire(p)));
  }
}
