/**
 * `odeness train`: settle the plan (train-setup.ts), run trainRun with its
 * events rendered, and print the summary. trainRun saves the model, frees the
 * engine's sessions and evaluates the final test row; this file only prints
 * and picks the exit status.
 */
import type { Command } from 'commander';
import type { BackendInfo } from '../engines/backend.js';
import { loadDataset } from '../data/spec.js';
import { SpecError } from '../errors.js';
import { displaySpec, parseSolverSpec } from '../solvers/spec.js';
import { adaptFoldCheck } from '../audit/adapt-folds.js';
import { resolveDevice } from '../onnx/runtime/adapters.js';
import { resolveIterations, trainRun, type TrainRunResult } from '../train/run.js';
import { trainEventPrinter } from './events.js';
import { formatNumber, printJson } from './output.js';
import { checkPlotDir } from './plot-dir.js';
import { abortOnSignals, isStop, stopExitCode, type SignalStop } from './signals.js';
import { planTraining } from './train-setup.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function trainCommand(opts: any, cmd: Command, backendOf: () => Promise<BackendInfo>): Promise<void> {
  const started = Date.now();
  if (opts.plot !== undefined && !opts.adapt && opts.resume === undefined)
    throw new SpecError(
      '--plot draws the adaptation trace of --adapt; add --adapt, or drop --plot ' +
        '(evaluate --plot draws accuracy across test solvers)',
    );
  checkPlotDir(opts.plot);
  // Settings and --out are checked before anything loads: a mistake costs no training.
  const { spec, resume, out } = await planTraining(opts, cmd);
  if (!resume && opts.adapt && opts.adaptStart === 'hairer') noteHairerStart(opts.solver, parseSolverSpec(spec.solver));
  const backend = await backendOf();
  const device = await resolveDevice(opts.device);
  const json = Boolean(opts.json);
  const dataset = await loadDataset(spec.dataset, spec.seed);
  const iterations = resolveIterations(spec, dataset.train.n);
  const printer = trainEventPrinter({
    json,
    tty: process.stderr.isTTY === true,
    iterations,
    startAt: resume?.iterations ?? 0,
  });
  const stop = abortOnSignals((why) =>
    printer.note(`${why}: stopping after the current iteration to save a checkpoint (again to quit at once)`),
  );
  let run: TrainRunResult | undefined;
  let stoppedInEvaluation = false;
  try {
    run = await trainRun(
      { ...spec, iterations, epochs: undefined },
      {
        out,
        dataset,
        resume,
        threads: opts.threads,
        device,
        foldCheck: adaptFoldCheck,
        signal: stop.signal,
        ...printer.hooks,
        // Where each graph's nodes run (onnxruntime may put ops a provider lacks on the CPU):
        // --json and --verbose show it.
        placement: json || Boolean((cmd.optsWithGlobals() as { verbose?: boolean }).verbose),
        finalEvaluation: {
          memoryBytes: opts.memory,
          threads: opts.threads,
          device,
          signal: stop.signal,
          onProgress: printer.hooks.onEvaluation,
        },
      },
    );
  } catch (e) {
    // Stopped during the final evaluation: the model is saved already.
    if (!isStop(e, stop)) throw e;
    stoppedInEvaluation = true;
  } finally {
    stop.dispose();
    printer.stop();
  }
  const seconds = () => (Date.now() - started) / 1000;
  const end: TrainEnd = { out, backend: backend.name, json, iterations, printer, stop, seconds, plot: opts.plot };
  if (!run || stoppedInEvaluation) {
    process.stdout.write(
      `saved ${out}; the final test evaluation was interrupted (${stop.reason()}): ` +
        `run odeness evaluate --model ${out}\n`,
    );
    process.exitCode = stopExitCode(stop.reason()!);
    return;
  }
  if (run.result.interrupted) printInterrupted(run, end);
  else await printFinished(run, end);
}

/** --adapt without --adapt-start: say where adaptation starts (not at --solver's own step or tolerance). */
function noteHairerStart(solver: string, solverSpec: ReturnType<typeof parseSolverSpec>): void {
  const start = solverSpec.kind === 'fixed' ? "Hairer's initial step from the first batch" : 'tol 1e-6';
  process.stderr.write(
    `odeness: note: --adapt starts from ${start} (--adapt-start hairer, the paper's), ` +
      `not from ${solver}'s ${solverSpec.kind === 'fixed' ? 'step' : 'tolerance'}; ` +
      `--adapt-start spec starts from ${solver}\n`,
  );
}

/** What the end of `train` prints from, beside the run itself. */
interface TrainEnd {
  readonly out: string;
  readonly backend: string;
  readonly json: boolean;
  /** The target iteration count. */
  readonly iterations: number;
  readonly printer: ReturnType<typeof trainEventPrinter>;
  readonly stop: SignalStop;
  seconds(): number;
  readonly plot?: string;
}

function summaryBase(run: TrainRunResult, end: TrainEnd) {
  return {
    out: end.out,
    backend: end.backend,
    engine: run.result.engine,
    status: run.training.status,
    iterations: run.training.iterations,
    solver: run.training.solver,
  };
}

/** A signal stopped training: the checkpoint is saved; no evaluation, the user asked to stop. */
function printInterrupted(run: TrainRunResult, end: TrainEnd): void {
  if (end.json)
    printJson({
      ...summaryBase(run, end),
      targetIterations: end.iterations,
      nfe: run.result.nfe,
      seconds: end.seconds(),
      ...end.printer.gathered(),
    });
  else
    process.stdout.write(
      `saved ${end.out} (interrupted after ${run.training.iterations} of ${end.iterations} iterations, ` +
        `${end.seconds().toFixed(1)} s); continue with: odeness train --resume ${end.out}\n`,
    );
  process.exitCode = stopExitCode(end.stop.reason() ?? 'SIGINT');
}

/** Training ended (complete or diverged) and its final test row is evaluated: the summary, the trace, the status. */
async function printFinished(run: TrainRunResult, end: TrainEnd): Promise<void> {
  if (!end.json)
    process.stdout.write(
      `saved ${end.out} (${run.training.status}, ${run.training.iterations} iterations, ` +
        `${end.seconds().toFixed(1)} s, ` +
        `backend ${end.backend}, engine ${run.result.engine})\n`,
    );
  const summary = {
    ...summaryBase(run, end),
    testAccuracy: run.testRow!.accuracy,
    nfe: run.result.nfe,
    seconds: end.seconds(),
    ...(run.result.diverged ? { error: run.result.diverged.message } : {}),
  };
  if (end.plot && run.result.adaptation.length > 0) {
    const { writeAdaptationTrace } = await import('./plot-output.js');
    await writeAdaptationTrace(
      end.plot,
      parseSolverSpec(run.training.solver).kind === 'fixed' ? 'step' : 'tol',
      run.result.adaptation,
    );
  }
  if (end.json) printJson({ ...summary, ...end.printer.gathered() });
  else
    process.stdout.write(
      `test accuracy under ${displaySpec(run.training.solver)}: ${formatNumber(run.testRow!.accuracy)}\n`,
    );
  if (run.result.diverged) {
    process.stderr.write(`odeness: error: training diverged: ${run.result.diverged.message}\n`);
    process.exitCode = 1;
  }
}
