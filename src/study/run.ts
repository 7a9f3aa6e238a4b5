/**
 * runStudy: plan → skip what the output directory already has → run the rest
 * on the transport it is given (src/cluster: `LocalTransport`, a piscina pool;
 * `NatsTransport`, a NATS work queue) → record each result in the store as it
 * arrives. Rerunning the same call after a crash, SIGKILL or Ctrl-C runs only
 * the jobs without a `done` result (failed ones too with `retryFailed`).
 */
import { OdenessError } from '../errors.js';
import { JOB_LIMITS } from '../formats/index.js';
import type { JobSink, PendingJob, Transport } from './transport.js';
import { planStudy, studyFieldFiles, type StudyDocument, type StudyPlan } from './plan.js';
import { fieldFileOf } from '../models/field-files.js';
import { ResultStore, type StudyBinding } from './store.js';
import type { JobResult, StudyCounts, StudyEvent } from './types.js';

export interface RunStudyOptions {
  /** Output directory (created if missing). */
  out: string;
  /**
   * Where the jobs run: `new LocalTransport({ threads })` or
   * `await NatsTransport.connect({ url })` (src/cluster). Connect before
   * calling, so an unreachable cluster fails before the directory is touched.
   * runStudy closes it when the run ends.
   */
  transport: Transport;
  /** Also rerun jobs whose last result is `failed`. */
  retryFailed?: boolean;
  /**
   * The output directory belongs to another study: 'check' (default) stops
   * with StudyMismatchError; 'extend' adds this study's jobs; 'replace' makes
   * it this study's (earlier results stay, outside the plan).
   */
  binding?: StudyBinding;
  onEvent?: (e: StudyEvent) => void;
  /** Abort to stop early (Ctrl-C): running jobs are dropped, recorded results stay. */
  signal?: AbortSignal;
}

export interface RunStudyResult {
  out: string;
  counts: StudyCounts;
  /** Results recorded by this call. */
  recorded: number;
  interrupted: boolean;
  ms: number;
}

const STATE_EVERY_MS = 1000;
/** How often a run looks at its output directory between results (a job may run for hours). */
const DIR_CHECK_EVERY_MS = 5000;

export async function runStudy(
  source: string | StudyDocument | StudyPlan,
  opts: RunStudyOptions,
): Promise<RunStudyResult> {
  const t0 = Date.now();
  const transport = opts.transport;
  if (typeof transport?.run !== 'function')
    throw new OdenessError('runStudy: options.transport must be a Transport (LocalTransport or NatsTransport)');
  if (typeof opts.out !== 'string' || opts.out === '') {
    await transport.close();
    throw new OdenessError('runStudy: options.out must name an output directory');
  }
  let plan: StudyPlan;
  try {
    plan =
      typeof source === 'object' && 'jobs' in source && 'spec' in source
        ? (source as StudyPlan)
        : planStudy(source as string | StudyDocument);
  } catch (e) {
    await transport.close();
    throw e;
  }
  const emit = (e: StudyEvent) => opts.onEvent?.(e);
  const signal = opts.signal ?? new AbortController().signal;

  let store: ResultStore;
  try {
    store = await ResultStore.open(opts.out);
  } catch (e) {
    await transport.close();
    throw e;
  }

  const ids = new Set(plan.jobs.map((j) => j.id));
  const running = new Map<string, { worker: string; since: string }>();
  const finishedNow = new Set<string>();
  let recorded = 0;
  const counts = (): StudyCounts => {
    let done = 0;
    let failed = 0;
    for (const id of ids) {
      const r = store.final.get(id);
      if (r?.status === 'done') done++;
      else if (r?.status === 'failed') failed++;
    }
    const total = ids.size;
    return { total, done, failed, running: running.size, pending: total - done - failed - running.size };
  };

  let stateTimer: NodeJS.Timeout | undefined;
  let stateDirty = false;
  const writeState = () => {
    stateDirty = false;
    void store
      .writeState({ transport: transport.description, running: [...running].map(([id, r]) => ({ id, ...r })) })
      .catch(() => undefined);
  };
  const touchState = () => {
    stateDirty = true;
    if (stateTimer) return;
    stateTimer = setTimeout(() => {
      stateTimer = undefined;
      if (stateDirty) writeState();
    }, STATE_EVERY_MS);
    stateTimer.unref();
  };

  const sink: JobSink = {
    tempBundleDir: (id) => store.tempBundleDir(id),
    discard: (dir) => store.discard(dir),
    started(id, worker) {
      // Late or duplicate start/progress messages (another delivery of a finished job) change nothing.
      if (!ids.has(id) || finishedNow.has(id) || store.final.get(id)?.status === 'done') return;
      running.set(id, { worker, since: new Date().toISOString() });
      touchState();
      emit({ type: 'start', id, worker });
    },
    progress(id, worker, progress) {
      if (!ids.has(id) || finishedNow.has(id)) return;
      if (!running.has(id)) sink.started(id, worker);
      emit({ type: 'progress', id, worker, progress });
    },
    async finished(result: JobResult, bundleTmp?: string) {
      const fresh = await store.commit(result, bundleTmp);
      finishedNow.add(result.id);
      running.delete(result.id);
      touchState();
      if (fresh) {
        recorded++;
        emit({ type: 'result', result });
      }
    },
    log: (level, message) => emit({ type: 'log', level, message }),
  };

  // The study directory is the truth: if --out vanishes or is replaced while jobs run, stop scheduling
  // at once (not only when the next result arrives) and end with the store's error naming it.
  const stop = new AbortController();
  const forward = () => stop.abort();
  if (signal.aborted) stop.abort();
  else signal.addEventListener('abort', forward, { once: true });
  let dirError: unknown;
  let closing = false;
  const dirTimer = setInterval(() => {
    void store.checkDir().catch((e: unknown) => {
      if (closing) return;
      dirError ??= e;
      stop.abort();
    });
  }, DIR_CHECK_EVERY_MS);
  dirTimer.unref();

  let interrupted = false;
  try {
    await store.writePlan(plan, opts.binding);
    const todo: PendingJob[] = [];
    const files = studyFieldFiles(plan.spec);
    let alreadyDone = 0;
    let alreadyFailed = 0;
    for (const job of plan.jobs) {
      const prev = store.final.get(job.id);
      if (prev?.status === 'done') alreadyDone++;
      else if (prev?.status === 'failed' && !opts.retryFailed) alreadyFailed++;
      else {
        const fieldFile = fieldFileOf(job.field, files);
        const attempt = prev ? Math.min(prev.attempt + 1, JOB_LIMITS.attempt) : 1;
        todo.push({ job, attempt, ...(fieldFile !== undefined ? { fieldFile } : {}) });
      }
    }
    emit({
      type: 'plan',
      total: plan.jobs.length,
      toRun: todo.length,
      alreadyDone,
      alreadyFailed,
      transport: transport.description,
    });
    writeState();
    if (todo.length > 0) await transport.run(todo, sink, stop.signal);
    interrupted = signal.aborted && counts().pending + counts().running > 0;
  } finally {
    closing = true;
    clearInterval(dirTimer);
    signal.removeEventListener('abort', forward);
    if (stateTimer) clearTimeout(stateTimer);
    running.clear();
    await transport.close();
    await store.close();
    if (dirError) await store.dropLeftovers();
  }
  if (dirError) throw dirError;
  const ms = Date.now() - t0;
  const final = counts();
  emit({ type: 'end', counts: final, ms });
  return { out: opts.out, counts: final, recorded, interrupted, ms };
}
