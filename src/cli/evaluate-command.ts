/**
 * `odeness evaluate`: one model source (model directory, bundle or effective
 * model) evaluated under test solvers, with progress, and on Ctrl-C the rows
 * finished so far printed (marked interrupted in --json) before exit 130.
 */
import type { Device } from '../onnx/runtime/device.js';
import { SpecError } from '../errors.js';
import { auditData } from '../audit/source.js';
import { evaluate, type EvalRow } from '../onnx/evaluate.js';
import { openModelSource, type ModelSource } from '../onnx/source.js';
import { resolveTestSolvers } from '../solvers/test-set.js';
import { displaySpec, formatSolverSpec, parseSolverList, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { formatNumber, printEvalRows, workProgress } from './output.js';
import { abortOnSignals, isStop, stopExitCode } from './signals.js';

export interface EvaluateFlags {
  model?: string;
  bundle?: string;
  dataset?: string;
  solvers?: string;
  threads?: number;
  device?: Device;
  memory?: number;
  json?: boolean;
  plot?: string;
}

/** The note for a bundle whose manifest records no file hashes (written before they were recorded). */
export function unverifiedNote(source: ModelSource): void {
  if (!source.verified)
    process.stderr.write(
      `odeness: note: ${source.dir} records no file hashes (an older export): its files are not verified; ` +
        `re-export to record them\n`,
    );
}

function testSolvers(source: ModelSource, list: string | undefined): SolverSpec[] {
  if (source.kind !== 'effective') return resolveTestSolvers(list, source.trainSolver, source.t0, source.t1);
  // An effective model has one solver unrolled into it: "paper" means that one.
  if (list === undefined || list.trim() === 'paper') return [parseSolverSpec(source.effectiveSolver!)];
  return parseSolverList(list);
}

export async function evaluateCommand(opts: EvaluateFlags): Promise<void> {
  if (Boolean(opts.model) === Boolean(opts.bundle))
    throw new SpecError('give exactly one of --model <dir> or --bundle <dir>');
  const source = await openModelSource({
    model: opts.model,
    bundle: opts.bundle,
    threads: opts.threads ?? 1,
    device: opts.device ?? 'cpu',
    ...(opts.memory !== undefined ? { memoryBytes: opts.memory } : {}),
  });
  try {
    unverifiedNote(source);
    const data = await auditData(source, opts.dataset);
    const specs = testSolvers(source, opts.solvers);
    const json = Boolean(opts.json);
    const where = opts.model ? { model: opts.model } : { bundle: opts.bundle };
    const extra = { ...where, ...(source.trainSolver ? { trainSolver: source.trainSolver } : {}) };
    const rows: EvalRow[] = [];
    // Progress goes to stderr, so --json (stdout) gets it too.
    const bar = workProgress('evaluate');
    const stop = abortOnSignals((why) =>
      bar.log(`${why}: stopping; the ${rows.length} finished row(s) are printed (Ctrl-C again to quit at once)`),
    );
    try {
      await evaluate(source, data, specs, {
        signal: stop.signal,
        onProgress: (index, calls, total) => bar.update(rowName(specs, index), calls, total),
        onRow: (row) => {
          rows.push(row);
          bar.log(
            `${row.spec}: accuracy ${formatNumber(row.accuracy)}, nfe ${formatNumber(row.nfe)} (${rows.length} of ` +
              `${specs.length})`,
          );
        },
      });
    } catch (e) {
      if (!isStop(e, stop)) throw e;
    } finally {
      stop.dispose();
      bar.stop();
    }
    const why = stop.reason();
    printEvalRows(rows, json, { ...extra, ...(why ? { interrupted: true } : {}) });
    if (why) {
      process.stderr.write(`odeness: interrupted (${why}): ${rows.length} of ${specs.length} solver rows finished\n`);
      process.exitCode = stopExitCode(why);
      return;
    }
    if (opts.plot) await plotWithOwn(opts.plot, source, data, rows);
  } finally {
    await source.release();
  }
}

function rowName(specs: readonly SolverSpec[], i: number): string {
  const s = specs[i];
  return s ? `${formatSolverSpec(s)} (solver ${i + 1} of ${specs.length})` : 'done';
}

/** The accuracy figure, with the training solver's own point (the paper's diamond), evaluated if not among the rows. */
async function plotWithOwn(
  dir: string,
  source: ModelSource,
  data: Awaited<ReturnType<typeof auditData>>,
  rows: readonly EvalRow[],
): Promise<void> {
  const { writeAccuracyFigure } = await import('./plot-output.js');
  const trainSolver = source.kind === 'effective' ? source.effectiveSolver : source.trainSolver;
  let own: EvalRow | undefined;
  if (trainSolver) {
    const spec = parseSolverSpec(trainSolver);
    [own] = await evaluate(source, data, [spec]);
  }
  await writeAccuracyFigure(
    dir,
    trainSolver ? `trained with ${displaySpec(trainSolver)}` : source.dir,
    [...rows, ...(own ? [own] : [])],
    own?.spec,
  );
}
