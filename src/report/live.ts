/**
 * The live report of a running study: DIR/report.html is rewritten as results
 * arrive — at most every `minIntervalMs`, and never more than a tenth of the
 * time (a big study's page takes seconds to render, and at a third of the time
 * the renders slowed the recording of 20 000 results) — so a browser tab shows
 * progress, accuracies and figures while the study runs. The page reloads
 * itself until the final rewrite at the end of the run, which drops the reload.
 */
import { hostname } from 'node:os';
import type { StudyEvent } from '../study/types.js';
import { writeStudyReport } from './study.js';

/** A rewrite every this many times its own duration at most: a tenth of the run's time. */
const RENDER_SHARE_INVERSE = 10;

export interface LiveReportOptions {
  /** Least milliseconds between two rewrites (default 5000). */
  readonly minIntervalMs?: number;
  /** Seconds between reloads of the page in the browser (default: the interval, at least 2). */
  readonly refreshSeconds?: number;
  readonly threshold?: number;
  /** A failed rewrite (e.g. disk full) is reported here and does not stop the study. */
  readonly onError?: (e: unknown) => void;
}

export class LiveReport {
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private rendering: Promise<void> = Promise.resolve();
  private lastStart = 0;
  private lastMs = 0;
  private dirty = false;
  private finished = false;
  private startedAt = new Date().toISOString();
  /** Completed rewrites (live and final). */
  renders = 0;

  constructor(
    readonly dir: string,
    private readonly options: LiveReportOptions = {},
  ) {}

  private get interval(): number {
    return Math.max(this.options.minIntervalMs ?? 5000, RENDER_SHARE_INVERSE * this.lastMs);
  }

  /** Feed every event of the run. */
  onEvent = (e: StudyEvent): void => {
    if (this.finished) return;
    switch (e.type) {
      case 'plan':
        this.startedAt = new Date().toISOString();
        this.schedule(0);
        return;
      case 'start':
        this.running.add(e.id);
        return;
      case 'result':
        this.running.delete(e.result.id);
        this.schedule(Math.max(0, this.lastStart + this.interval - Date.now()));
        return;
      default:
        return;
    }
  };

  private schedule(delayMs: number): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dirty && !this.finished) this.rendering = this.rendering.then(() => this.render(true));
    }, delayMs);
    this.timer.unref();
  }

  private async render(live: boolean): Promise<void> {
    this.dirty = false;
    this.lastStart = Date.now();
    try {
      await writeStudyReport(this.dir, {
        allowEmpty: true,
        ...(this.options.threshold !== undefined ? { threshold: this.options.threshold } : {}),
        ...(live
          ? {
              live: this.liveState(),
              refreshSeconds:
                this.options.refreshSeconds ?? Math.max(2, Math.round((this.options.minIntervalMs ?? 5000) / 1000)),
            }
          : {}),
      });
      this.renders++;
    } catch (e) {
      this.options.onError?.(e);
    }
    this.lastMs = Date.now() - this.lastStart;
  }

  private liveState() {
    return { running: this.running.size, startedAt: this.startedAt, pid: process.pid, host: hostname() };
  }

  /** The run ended: wait for a rewrite in flight, then write the final page (no reload). */
  async finish(): Promise<void> {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.rendering;
    await this.render(false);
  }
}
