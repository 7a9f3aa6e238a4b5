/** Terminal rendering shared by the commands: tables, progress, numbers. */
import cliProgress from 'cli-progress';
import type { SolverLabel } from '../solvers/spec.js';

export function formatNumber(v: number | undefined, digits = 4): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

/** A plain aligned text table. */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : (c ?? '-'))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export interface Progress {
  update(value: number, fields?: Record<string, string | number>): void;
  log(line: string): void;
  stop(): void;
}

/**
 * A progress bar on an interactive terminal (stderr); otherwise nothing but
 * the log lines, so pipes and CI logs stay readable.
 */
export function progress(total: number, label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) {
    return { update() {}, log: (line) => process.stderr.write(line + '\n'), stop() {} };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {status}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { status: '' });
  return {
    update: (value, fields) =>
      bar.update(value, {
        status: fields
          ? Object.entries(fields)
              .map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`)
              .join(' ')
          : '',
      }),
    log: (line) => {
      // Print above the bar without tearing it.
      process.stderr.write('\r\x1b[K' + line + '\n');
    },
    stop: () => bar.stop(),
  };
}

/** Off a terminal: the first progress line after 2 s of work, then at most one per phase every 10 s. */
const PLAIN_AFTER_MS = 2_000;
const PLAIN_EVERY_MS = 10_000;

export interface WorkProgress {
  /** Where the work stands: a phase, and its count of `total` when known. */
  update(phase: string, done: number, total?: number): void;
  /** A line that stays (a finished row). */
  log(line: string): void;
  stop(): void;
}

/**
 * Progress of a long command (evaluate, the audits, solve, training's final
 * evaluation): a bar on a terminal; off it, plain lines on stderr once the
 * work has run 2 s (a phase's start, then at most every 10 s); nothing with `quiet` (--json).
 */
export function workProgress(label: string, options: { tty?: boolean; quiet?: boolean } = {}): WorkProgress {
  if (options.quiet) return { update() {}, log() {}, stop() {} };
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  if (!(options.tty ?? process.stderr.isTTY === true)) {
    let last = { phase: '', at: 0 };
    // Work done within a couple of seconds needs no progress: quick commands keep a quiet stderr.
    const quiet = () => Date.now() - started < PLAIN_AFTER_MS;
    return {
      update(phase, done, total) {
        const now = Date.now();
        if (quiet() || (phase === last.phase && now - last.at < PLAIN_EVERY_MS)) return;
        last = { phase, at: now };
        process.stderr.write(
          `${label}: ${phase}${total !== undefined ? ` ${done}/${total}` : done > 0 ? ` ${done}` : ''} ` +
            `(${elapsed()})\n`,
        );
      },
      log: (line) => {
        if (!quiet()) process.stderr.write(`${label}: ${line}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} | {phase} | {elapsed}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { phase: 'starting', elapsed: '0.0 s' });
  return {
    update(phase, done, total) {
      if (total !== undefined) bar.setTotal(total);
      bar.update(done, { phase, elapsed: elapsed() });
    },
    log: (line) => process.stderr.write(`\r\x1b[K${label}: ${line}\n`),
    stop: () => bar.stop(),
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** Cross-solver rows as a table, or as {"results": [...]} with --json. */
export function printEvalRows(
  rows: readonly (SolverLabel & { accuracy: number; nfe: number })[],
  json: boolean,
  extra: Record<string, unknown> = {},
): void {
  if (json) {
    printJson({
      ...extra,
      results: rows.map((r) => ({
        solver: r.solver,
        param: r.param,
        spec: r.spec,
        ...(r.steps !== undefined ? { steps: r.steps } : {}),
        accuracy: r.accuracy,
        nfe: r.nfe,
      })),
    });
    return;
  }
  process.stdout.write(
    table(
      ['solver', 'param', 'steps', 'accuracy', 'nfe'],
      rows.map((r) => [r.spec, r.param, r.steps, r.accuracy, r.nfe]),
    ) + '\n',
  );
}

/** "1 job", "2 jobs": a count with its noun. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
