/**
 * runStudy: plan → skip what the output directory already has → run the rest
 * on the transport it is given (`LocalTransport` in src/study, a piscina pool;
 * `NatsTransport` in src/cluster, a NATS work queue) → record each result in the store as it
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
  const { plan, store } = await openRun(source, opts);
  const emit = (e: StudyEvent) => opts.onEvent?.(e);
  const signal = opts.signal ?? new AbortController().signal;
  const tracker = new RunTracker(plan, store, transport, emit);
  const watch = watchDir(store, signal);
  let interrupted = false;
  try {
    await store.writePlan(plan, opts.binding);
    const { todo, alreadyDone, alreadyFailed } = pendingJobs(plan, store, !!opts.retryFailed);
    emit({
      type: 'plan',
      total: plan.jobs.length,
      toRun: todo.length,
      alreadyDone,
      alreadyFailed,
      transport: transport.description,
    });
    tracker.writeState();
    if (todo.length > 0) await transport.run(todo, tracker.sink, watch.signal);
    interrupted = signal.aborted && tracker.counts().pending + tracker.counts().running > 0;
  } finally {
    watch.dispose();
    tracker.dispose();
    await transport.close();
    await store.close();
    if (watch.error()) await store.dropLeftovers();
  }
  if (watch.error()) throw watch.error();
  const ms = Date.now() - t0;
  const final = tracker.counts();
  emit({ type: 'end', counts: final, ms });
  return { out: opts.out, counts: final, recorded: tracker.recorded, interrupted, ms };
}

/** Check the options, plan the study and open its store; the transport is closed if any of it fails. */
async function openRun(
  source: string | StudyDocument | StudyPlan,
  opts: RunStudyOptions,
): Promise<{ plan: StudyPlan; store: ResultStore }> {
  const transport = opts.transport;
  if (typeof transport?.run !== 'function')
    throw new OdenessError('runStudy: options.transport must be a Transport (LocalTransport or NatsTransport)');
  if (typeof opts.out !== 'string' || opts.out === '') {
    await transport.close();
    throw new OdenessError('runStudy: options.out must name an output directory');
  }
  try {
    const plan =
      typeof source === 'object' && 'jobs' in source && 'spec' in source
        ? (source as StudyPlan)
        : planStudy(source as string | StudyDocument);
    return { plan, store: await ResultStore.open(opts.out) };
  } catch (e) {
    await transport.close();
    throw e;
  }
}

/** The plan's jobs without a result to keep (failed ones too with retryFailed), each with its next attempt. */
function pendingJobs(
  plan: StudyPlan,
  store: ResultStore,
  retryFailed: boolean,
): { todo: PendingJob[]; alreadyDone: number; alreadyFailed: number } {
  const todo: PendingJob[] = [];
  // Where the study's field files lie here: a job names its file by hash (models/field-files.ts).
  const files = studyFieldFiles(plan.spec);
  let alreadyDone = 0;
  let alreadyFailed = 0;
  for (const job of plan.jobs) {
    const prev = store.standings.get(job.id);
    if (prev?.status === 'done') alreadyDone++;
    else if (prev?.status === 'failed' && !retryFailed) alreadyFailed++;
    else {
      const fieldFile = fieldFileOf(job.field, files);
      const attempt = prev ? Math.min(prev.attempt + 1, JOB_LIMITS.attempt) : 1;
      todo.push({ job, attempt, ...(fieldFile !== undefined ? { fieldFile } : {}) });
    }
  }
  return { todo, alreadyDone, alreadyFailed };
}

/**
 * The study directory is the truth: if --out vanishes or is replaced while jobs run, stop scheduling
 * at once (not only when the next result arrives) and end with the store's error naming it.
 * `signal` aborts on the caller's signal or on the directory's first error.
 */
function watchDir(store: ResultStore, outer: AbortSignal): { signal: AbortSignal; error(): unknown; dispose(): void } {
  const stop = new AbortController();
  const forward = () => stop.abort();
  if (outer.aborted) stop.abort();
  else outer.addEventListener('abort', forward, { once: true });
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
  return {
    signal: stop.signal,
    error: () => dirError,
    dispose() {
      closing = true;
      clearInterval(dirTimer);
      outer.removeEventListener('abort', forward);
    },
  };
}

/** One run's view of its jobs: which run where, the counts, the state file, and the sink the transport reports to. */
class RunTracker {
  private readonly ids: Set<string>;
  private readonly running = new Map<string, { worker: string; since: string }>();
  private readonly finishedNow = new Set<string>();
  private stateTimer: NodeJS.Timeout | undefined;
  private stateDirty = false;
  /** Results recorded by this run. */
  recorded = 0;
  readonly sink: JobSink;

  constructor(
    plan: StudyPlan,
    private readonly store: ResultStore,
    private readonly transport: Transport,
    emit: (e: StudyEvent) => void,
  ) {
    this.ids = new Set(plan.jobs.map((j) => j.id));
    const { ids, running, finishedNow } = this;
    const sink: JobSink = {
      tempBundleDir: (id) => store.tempBundleDir(id),
      discard: (dir) => store.discard(dir),
      started: (id, worker) => {
        // Late or duplicate start/progress messages (another delivery of a finished job) change nothing.
        if (!ids.has(id) || finishedNow.has(id) || store.standings.get(id)?.status === 'done') return;
        running.set(id, { worker, since: new Date().toISOString() });
        this.touchState();
        emit({ type: 'start', id, worker });
      },
      progress: (id, worker, progress) => {
        if (!ids.has(id) || finishedNow.has(id)) return;
        if (!running.has(id)) sink.started(id, worker);
        emit({ type: 'progress', id, worker, progress });
      },
      finished: async (result: JobResult, bundleTmp?: string, bundleSynced?: boolean) => {
        const fresh = await store.commit(result, bundleTmp, bundleSynced);
        finishedNow.add(result.id);
        running.delete(result.id);
        this.touchState();
        if (fresh) {
          this.recorded++;
          emit({ type: 'result', result });
        }
      },
      log: (level, message) => emit({ type: 'log', level, message }),
    };
    this.sink = sink;
  }

  counts(): StudyCounts {
    let done = 0;
    let failed = 0;
    for (const id of this.ids) {
      const r = this.store.standings.get(id);
      if (r?.status === 'done') done++;
      else if (r?.status === 'failed') failed++;
    }
    const total = this.ids.size;
    const running = this.running.size;
    return { total, done, failed, running, pending: total - done - failed - running };
  }

  writeState(): void {
    this.stateDirty = false;
    void this.store
      .writeState({
        transport: this.transport.description,
        running: [...this.running].map(([id, r]) => ({ id, ...r })),
      })
      .catch(() => undefined);
  }

  /** Write the state file at most every STATE_EVERY_MS. */
  private touchState(): void {
    this.stateDirty = true;
    if (this.stateTimer) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      if (this.stateDirty) this.writeState();
    }, STATE_EVERY_MS);
    this.stateTimer.unref();
  }

  dispose(): void {
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.running.clear();
  }
}
