/**
 * The live report of a running study: DIR/report.html is rewritten as results
 * arrive — at most every `minIntervalMs`, and never more than a tenth of the
 * time (a big study's page takes seconds to render, and at a third of the time
 * the renders slowed the recording of 20 000 results) — so a browser tab shows
 * progress, accuracies and figures while the study runs. The page reloads
 * itself until the final rewrite at the end of the run, which drops the reload.
 * Live rewrites of a big study run in a child process (render-process.ts):
 * a render holds every result, and in the run's own process that memory stayed.
 */
import { hostname } from 'node:os';
import type { StudyEvent } from '../study/types.js';
import { writeStudyReportInChild } from './render-process.js';
import { writeStudyReport, type StudyReportOptions } from './study.js';

/** A rewrite every this many times its own duration at most: a tenth of the run's time. */
const RENDER_SHARE_INVERSE = 10;
/**
 * From this many results on, pages are rendered in a child process: a render holds every result, and
 * in the run's own process V8 kept the heap it grew (~35 KB per result recorded). Below it a render is small
 * and quick here, where a child would add a second of start-up (and the first page would come late).
 */
const CHILD_RENDER_FROM_RESULTS = 1000;

/** Least milliseconds between two rewrites when the run does not say (`study run --report-interval`). */
export const DEFAULT_REPORT_INTERVAL_MS = 5000;

/** Milliseconds a figure of a page takes (vega-lite compiled and rendered to SVG), idle, on the development machine. */
const FIGURE_MS = 60;

/**
 * Milliseconds one page of `results` results with `figures` figures takes, idle (measured on the 2-core development
 * machine): in the run's own process ~60 ms + 0.15 ms a result once warm, plus ~60 ms a figure (paper-spheres' 32
 * took most of its 2.7 s page); a child process adds its start (node and the report's modules, ~0.75 s) and parses
 * every result cold (0.3 ms each).
 */
export function pageMs(results: number, figures = 0, childFromResults = CHILD_RENDER_FROM_RESULTS): number {
  const base = results >= childFromResults ? 750 + 0.3 * results : 60 + 0.15 * results;
  return base + FIGURE_MS * figures;
}

/**
 * What the live report adds to the wall time of a run of `results` new results with `figures` figures at its end,
 * whose jobs take `runMs` on `workers` workers of a `cores`-core machine: the final page (written after the last
 * result), and the live pages written during the run on this class's schedule (results and figures arriving at an
 * even pace), which take cores from the workers when these keep every core busy. `study plan` prices it so that its
 * estimate is the wall time of `study run` as it runs.
 */
export function liveReportMs(
  results: number,
  runMs: number,
  workers: number,
  cores: number,
  figures = 0,
  minIntervalMs = DEFAULT_REPORT_INTERVAL_MS,
): number {
  let liveMs = 0;
  for (let t = 0; t < runMs; ) {
    const page = pageMs(Math.round((results * t) / runMs), (figures * t) / runMs);
    liveMs += page;
    t += Math.max(minIntervalMs, RENDER_SHARE_INVERSE * page);
  }
  return pageMs(results, figures) + (workers >= cores ? liveMs / cores : 0);
}

export interface LiveReportOptions {
  /** Least milliseconds between two rewrites (default 5000). */
  readonly minIntervalMs?: number;
  /** Seconds between reloads of the page in the browser (default: the interval, at least 2). */
  readonly refreshSeconds?: number;
  readonly threshold?: number;
  /** Results from which live pages are rendered in a child process (default CHILD_RENDER_FROM_RESULTS). */
  readonly childFromResults?: number;
  /** A failed rewrite (e.g. disk full) is reported here and does not stop the study. */
  readonly onError?: (e: unknown) => void;
}

export class LiveReport {
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private rendering: Promise<void> = Promise.resolve();
  private inFlight = false;
  /** Stops a live page being written by a child: the final page replaces it. */
  private readonly stopLive = new AbortController();
  private lastStart = 0;
  private lastMs = 0;
  private dirty = false;
  private finished = false;
  private results = 0;
  private startedAt = new Date().toISOString();
  /** Completed rewrites (live and final). */
  renders = 0;
  /** Of those, the ones a child process wrote. */
  childRenders = 0;

  constructor(
    readonly dir: string,
    private readonly options: LiveReportOptions = {},
  ) {}

  private get interval(): number {
    return Math.max(this.options.minIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS, RENDER_SHARE_INVERSE * this.lastMs);
  }

  /** Feed every event of the run. */
  onEvent = (e: StudyEvent): void => {
    if (this.finished) return;
    switch (e.type) {
      case 'plan':
        this.results = e.alreadyDone + e.alreadyFailed;
        this.startedAt = new Date().toISOString();
        this.schedule(0);
        return;
      case 'start':
        this.running.add(e.id);
        return;
      case 'result':
        this.results++;
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
      // One rewrite at a time: one still going (a child's takes seconds) schedules the next when it ends. Queued
      // behind it, rewrites piled up and the run waited for all of them at its end (19 for 1 100 results).
      if (!this.dirty || this.finished || this.inFlight) return;
      this.inFlight = true;
      this.rendering = this.render(true).finally(() => {
        this.inFlight = false;
        if (this.dirty && !this.finished) this.schedule(Math.max(0, this.lastStart + this.interval - Date.now()));
      });
    }, delayMs);
    this.timer.unref();
  }

  private async render(live: boolean): Promise<void> {
    this.dirty = false;
    this.lastStart = Date.now();
    try {
      const options: StudyReportOptions = {
        allowEmpty: true,
        ...(this.options.threshold !== undefined ? { threshold: this.options.threshold } : {}),
        ...(live
          ? {
              live: this.liveState(),
              refreshSeconds:
                this.options.refreshSeconds ??
                Math.max(2, Math.round((this.options.minIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS) / 1000)),
            }
          : {}),
      };
      // A big study's pages in a child process: the run's memory stays flat to its end.
      const inChild = this.results >= (this.options.childFromResults ?? CHILD_RENDER_FROM_RESULTS);
      if (!inChild) await writeStudyReport(this.dir, options);
      else if (live) await writeStudyReportInChild(this.dir, options, this.stopLive.signal);
      // The final page is the one users keep: written here if the child could not (say, no process to spare).
      else await writeStudyReportInChild(this.dir, options).catch(() => writeStudyReport(this.dir, options));
      this.renders++;
      if (inChild) this.childRenders++;
    } catch (e) {
      // A live page stopped for the final one is no failure.
      if (!(live && this.stopLive.signal.aborted)) this.options.onError?.(e);
    }
    this.lastMs = Date.now() - this.lastStart;
  }

  private liveState() {
    return { running: this.running.size, startedAt: this.startedAt, pid: process.pid, host: hostname() };
  }

  /** The run ended: stop a child's rewrite in flight (or wait for one here), then write the final page (no reload). */
  async finish(): Promise<void> {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A live page still being written by a child is not waited for: the run's end waited seconds for it.
    this.stopLive.abort();
    await this.rendering;
    await this.render(false);
  }
}
