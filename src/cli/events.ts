/**
 * Renderers of run events (src/study/progress.ts `RunEvent`): a training run
 * (`odeness train`) and a study run (`study run`). Text on a terminal is a
 * cli-progress bar on stderr with lines above it; off a terminal, plain
 * lines; `--events` prints JSON Lines; `--json` gathers one document.
 * The state they draw (counts, ETA) lives in the library.
 */
import { displaySpec } from '../solvers/spec.js';
import type { Placement } from '../onnx/runtime/placement.js';
import { terminalSafe } from './terminal.js';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { StudyProgress, type StudyRunDocument } from '../study/progress.js';
import type { Job, StudyCounts, StudyEvent } from '../study/types.js';
import { trainHooks, type TrainEvent } from '../train/events.js';
import { formatNumber, plural, progress, workProgress } from './output.js';

/** ", placed: WebGpuExecutionProvider 230, CPUExecutionProvider 4 (2 copies)" for --verbose. */
function placementText(p: Placement | undefined): string {
  if (!p) return '';
  const nodes = Object.entries(p.nodes)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const cpu = p.cpuOps
    ? `; on the CPU: ${Object.entries(p.cpuOps)
        .map(([op, n]) => `${op} ×${n}`)
        .join(', ')}`
    : '';
  return `; nodes run by ${nodes || 'none'}${p.copies > 0 ? ` (${p.copies} host-device copies)` : ''}${cpu}`;
}

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function countsLine(c: StudyCounts): string {
  return `${c.done}/${c.total} done, ${c.running} running, ${c.failed} failed, ${c.pending} pending`;
}

/** How a job trains, in a plan listing: the spec, or the adaptation and where it starts. */
export function jobSolverText(j: Job): string {
  if (!j.adapt) return j.trainSolver;
  return `${j.trainSolver.split(':')[0]} adapt (start: ${j.adaptStart === 'spec' ? j.trainSolver : "Hairer's step"})`;
}

/**
 * `odeness train`'s events: a bar of iterations on a terminal, log lines
 * (plain off it), then the final evaluation's progress; with --json the
 * log, graph builds and adaptation decisions are gathered for the summary.
 */
export function trainEventPrinter(o: { json: boolean; tty: boolean; iterations: number; startAt: number }) {
  const bar = progress(o.iterations, 'train', !o.json && o.tty);
  if (o.startAt > 0) bar.update(o.startAt);
  let evaluation: ReturnType<typeof workProgress> | undefined;
  const events: { log: unknown[]; graphs: unknown[]; adaptation: unknown[] } = { log: [], graphs: [], adaptation: [] };
  const onEvent = (e: TrainEvent): void => {
    const { type: _type, ...payload } = e;
    switch (e.type) {
      case 'iteration':
        return bar.update(e.iteration);
      case 'train-log':
        if (o.json) events.log.push(payload);
        else
          bar.log(
            `iter ${String(e.iteration).padStart(6)}  loss ${formatNumber(e.loss)}  acc ` +
              `${formatNumber(e.accuracy)}  nfe ${e.nfeForward}+${e.nfeBackward}  ${displaySpec(e.solver)}  ` +
              `${(e.wallMs / 1000).toFixed(1)}s`,
          );
        return;
      case 'graph':
        if (o.json) events.graphs.push(payload);
        else if (!e.cached)
          bar.log(
            `graph ${e.solver}: ${e.nodes} nodes, built in ${(e.graphMs + e.sessionMs).toFixed(0)} ms (graph ` +
              `${e.graphMs.toFixed(0)} ms, session ${e.sessionMs.toFixed(0)} ms)${placementText(e.placement)}`,
          );
        return;
      case 'adapt':
        if (o.json) events.adaptation.push(payload);
        else
          bar.log(
            `adapt ${String(e.iteration).padStart(5)}  ${e.action.padEnd(6)} ${displaySpec(e.before)} → ` +
              `${displaySpec(e.after)}  train acc ${formatNumber(e.trainAccuracy)}  test acc ` +
              `${formatNumber(e.testAccuracy)} (${displaySpec(e.testSolver)})  nfe ` +
              `${e.trainNfe}/${e.testNfe}${e.folded !== undefined ? `  folded ${e.folded}/${e.foldStates}` : ''}`,
          );
        return;
      case 'evaluation':
        if (!evaluation) {
          bar.stop();
          evaluation = workProgress('train: final test evaluation', { quiet: o.json, tty: o.tty });
        }
        evaluation.update('field calls', e.calls, e.total);
        return;
    }
  };
  return {
    hooks: trainHooks(onEvent),
    note: (line: string) => bar.log(line),
    gathered: () => events,
    stop: () => {
      bar.stop();
      evaluation?.stop();
    },
  };
}

/**
 * How `study run` shows its events: text (a bar on a TTY), `--events` (JSON
 * Lines as they happen), `--json` (one document at the end).
 */
export type EventFormat = 'text' | 'events' | 'json';

/**
 * Renders study events: a cli-progress bar on a TTY (stderr), plain lines
 * otherwise; with `events`, one JSON object per line as they happen (progress
 * ticks omitted); with `json`, nothing until `document()` gathers the run.
 */
/** "study: 12 jobs, 4 to run (8 already done, 0 already failed) on …": the first line of a run. */
function planLine(e: Extract<StudyEvent, { type: 'plan' }>): string {
  const skipped = e.alreadyDone + e.alreadyFailed;
  return (
    `study: ${plural(e.total, 'job')}, ${e.toRun} to run` +
    `${skipped ? ` (${e.alreadyDone} already done, ${e.alreadyFailed} already failed)` : ''} on ${e.transport}`
  );
}

export function studyEventPrinter(opts: {
  format: EventFormat;
  tty: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}) {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const state = new StudyProgress();
  const counts = state.counts;
  let multibar: MultiBar | undefined;
  let bar: SingleBar | undefined;
  const eta = (): string => {
    const ms = state.etaMs();
    return ms === undefined ? '…' : fmtDuration(ms);
  };
  const payload = () => ({ doneN: counts.done, runningN: counts.running, failedN: counts.failed, etaText: eta() });
  // Text mode: results, worker names and log lines may come from the cluster (terminal.ts).
  const line = (s: string) => {
    if (multibar) multibar.log(terminalSafe(s) + '\n');
    else out.write(terminalSafe(s) + '\n');
  };
  const startBar = (e: Extract<StudyEvent, { type: 'plan' }>) => {
    out.write(terminalSafe(planLine(e)) + '\n');
    if (!opts.tty || e.toRun === 0) return;
    multibar = new MultiBar(
      {
        stream: err,
        format: 'study [{bar}] {doneN}/{total} done | {runningN} running | {failedN} failed | ETA {etaText}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      },
      Presets.shades_classic,
    );
    bar = multibar.create(e.total, counts.done + counts.failed, payload());
  };
  const stop = () => {
    multibar?.stop();
    multibar = undefined;
    bar = undefined;
  };

  const onEvent = (e: StudyEvent): void => {
    state.apply(e);
    if (opts.format === 'json') return;
    if (opts.format === 'events') {
      if (e.type !== 'progress') out.write(JSON.stringify(e) + '\n');
      return;
    }
    if (e.type === 'plan') startBar(e);
    else if (e.type === 'result') {
      const r = e.result;
      const what = `${r.job.dataset} ${r.job.field} ${jobSolverText(r.job)} seed ${r.job.seed}`;
      if (!opts.tty || r.status === 'failed') {
        line(
          `[${counts.done + counts.failed}/${counts.total}] ${r.status} ${r.id} ${what} ` +
            `(${fmtDuration(r.timings.ms)} on ${r.worker})${r.error ? `: ${r.error}` : ''}`,
        );
      }
    } else if (e.type === 'log') line(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
    else if (e.type === 'end') {
      bar?.update(e.counts.done + e.counts.failed, payload());
      stop();
      out.write(`study: ${countsLine(e.counts)} (${fmtDuration(e.ms)})\n`);
      return;
    }
    bar?.update(counts.done + counts.failed, payload());
  };
  return {
    onEvent,
    stop,
    document: (run: Parameters<StudyProgress['document']>[0]): StudyRunDocument => state.document(run),
  };
}
