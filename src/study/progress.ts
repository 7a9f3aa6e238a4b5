/**
 * Following a study run from its events: the counts (done, running, failed,
 * pending), the ETA model, and the `--json` document gathered from the events
 * — the state a renderer (src/cli/events.ts) draws, kept out of the renderer.
 * `RunEvent` is the one event type renderers take: a training run's events
 * and a study's.
 */
import type { TrainEvent } from '../train/events.js';
import type { JobResult, StudyCounts, StudyEvent } from './types.js';

export type { TrainEvent } from '../train/events.js';

/** What renderers draw: the events of a training run (`odeness train`) or of a study run. */
export type RunEvent = TrainEvent | StudyEvent;

/**
 * Milliseconds left in a study run, or undefined before the first result:
 * mean job time × jobs left / slots (jobs running at once), a running job
 * counting half. Not finished / elapsed: the first results arrive after the
 * pool's start-up plus one job's time although every slot was busy, which made
 * the bar's early ETA 3× too long.
 */
export function studyEtaMs(p: {
  pending: number;
  running: number;
  finished: number;
  jobMsSum: number;
  slots: number;
}): number | undefined {
  if (p.pending + p.running === 0) return 0;
  if (p.finished === 0) return undefined;
  return ((p.jobMsSum / p.finished) * (p.pending + p.running / 2)) / Math.max(1, p.slots, p.running);
}

/** What `study run --json` prints: one document, when the run ends. */
export interface StudyRunDocument {
  out: string;
  plan: Omit<Extract<StudyEvent, { type: 'plan' }>, 'type'>;
  counts: StudyCounts;
  ms: number;
  interrupted: boolean;
  /** Why the run stopped early, when it did (SIGINT, SIGTERM, EPIPE: stdout closed). */
  stoppedBy?: string;
  /** Results recorded by this run, in the order they arrived. */
  results: {
    id: string;
    status: JobResult['status'];
    attempt: number;
    dataset: string;
    field: string;
    trainSolver: string;
    adapt: boolean;
    seed: number;
    worker: string;
    ms: number;
    error?: string;
  }[];
  /** Warnings and notes the run printed. */
  logs: { level: 'info' | 'warn'; message: string }[];
  report?: string;
}

/** The state of a study run as its events arrive: counts, jobs running now, the ETA, and the gathered document. */
export class StudyProgress {
  readonly counts: StudyCounts = { total: 0, done: 0, failed: 0, running: 0, pending: 0 };
  private readonly running = new Set<string>();
  private finishedNow = 0;
  private jobMsSum = 0;
  private slots = 1;
  private plan?: StudyRunDocument['plan'];
  private readonly results: StudyRunDocument['results'] = [];
  private readonly logs: StudyRunDocument['logs'] = [];

  /** Take one event; returns the counts after it. */
  apply(e: StudyEvent): StudyCounts {
    switch (e.type) {
      case 'plan': {
        const { type: _type, ...plan } = e;
        this.plan = plan;
        Object.assign(this.counts, { total: e.total, done: e.alreadyDone, failed: e.alreadyFailed });
        break;
      }
      case 'start':
      case 'progress':
        this.running.add(e.id);
        break;
      case 'result': {
        const r = e.result;
        this.running.delete(r.id);
        this.finishedNow++;
        this.jobMsSum += r.timings.ms;
        if (r.status === 'done') this.counts.done++;
        else this.counts.failed++;
        this.results.push({
          id: r.id,
          status: r.status,
          attempt: r.attempt,
          dataset: r.job.dataset,
          field: r.job.field,
          trainSolver: r.job.trainSolver,
          adapt: r.job.adapt,
          seed: r.job.seed,
          worker: r.worker,
          ms: r.timings.ms,
          ...(r.error ? { error: r.error } : {}),
        });
        break;
      }
      case 'log':
        this.logs.push({ level: e.level, message: e.message });
        break;
      case 'end':
        Object.assign(this.counts, e.counts);
        return this.counts;
    }
    this.counts.running = this.running.size;
    this.slots = Math.max(this.slots, this.running.size);
    this.counts.pending = Math.max(0, this.counts.total - this.counts.done - this.counts.failed - this.counts.running);
    return this.counts;
  }

  /** Milliseconds left (undefined before the first result). */
  etaMs(): number | undefined {
    return studyEtaMs({
      pending: this.counts.pending,
      running: this.counts.running,
      finished: this.finishedNow,
      jobMsSum: this.jobMsSum,
      slots: this.slots,
    });
  }

  /** The `--json` document of a finished run. */
  document(run: {
    out: string;
    counts: StudyCounts;
    ms: number;
    interrupted: boolean;
    stoppedBy?: string;
    report?: string;
  }): StudyRunDocument {
    return {
      out: run.out,
      plan: this.plan ?? {
        total: run.counts.total,
        toRun: 0,
        alreadyDone: run.counts.done,
        alreadyFailed: run.counts.failed,
        transport: '',
      },
      counts: run.counts,
      ms: run.ms,
      interrupted: run.interrupted,
      ...(run.stoppedBy ? { stoppedBy: run.stoppedBy } : {}),
      results: this.results,
      logs: this.logs,
      ...(run.report ? { report: run.report } : {}),
    };
  }
}
