/** The core commands: info, train, evaluate. */
import { createRequire } from 'node:module';
import { Option, type Command } from 'commander';
import { initBackend } from '../engines/backend.js';
import { checkLabelsFitModel } from '../data/limits.js';
import { loadDataset } from '../data/spec.js';
import { loadModel } from '../models/io.js';
import { evaluateModel, type EvalData } from '../audit/evaluate.js';
import { resolveTestSolvers } from '../solvers/test-set.js';
import { parseSolverSpec } from '../solvers/spec.js';
import { resolveIterations, trainRun, TRAIN_DEFAULTS } from '../train/run.js';
import { STUDY_DEFAULTS } from '../study/schema.js';
import { DEFAULT_ADAPT } from '../train/adapt.js';
import { parseEngineChoice } from '../train/engine.js';
import { SpecError } from '../errors.js';
import { betaPair, datasetOption, defaultText, finite, nonNegativeInt, positive, positiveInt } from './args.js';
import { checkPlotDir } from './plot-dir.js';
import { formatNumber, printEvalRows, printJson, progress } from './output.js';

const require = createRequire(import.meta.url);

function globals(cmd: Command): { backend?: string; verbose?: boolean } {
  return cmd.optsWithGlobals() as { backend?: string; verbose?: boolean };
}

export function registerCoreCommands(program: Command): void {
  program
    .command('info')
    .description('print the tfjs backend in use, its threads, and the versions of tfjs, onnxruntime and Node')
    .option('--json', 'print one JSON document')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const backend = await initBackend(globals(cmd).backend);
      const version = (pkg: string) => {
        try {
          return (require(`${pkg}/package.json`) as { version: string }).version;
        } catch {
          return 'not installed';
        }
      };
      const info = {
        odeness: (require('../../../package.json') as { version: string }).version,
        backend: backend.name,
        backendSource: backend.source,
        threads: backend.threads,
        tfjs: version('@tensorflow/tfjs'),
        onnxruntime: version('onnxruntime-node'),
        node: process.versions.node,
        cpus: (await import('node:os')).cpus().length,
      };
      if (opts.json) return printJson(info);
      for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(14)} ${v}\n`);
    });

  program
    .command('train')
    .description('train a Neural ODE classifier with one solver configuration and save it to a model directory')
    .requiredOption('--dataset <spec>', 'spheres:<ott2021|dupont2019>:dim=<d> | mnist[:size=14] | cifar10:dir=<path> | json:<file>')
    .requiredOption('--solver <spec>', 'training solver, e.g. euler:0.5, rk4:steps=10, dopri5:1e-5')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--field <spec>', 'mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time] | conv1d | conv2d', TRAIN_DEFAULTS.field)
    .addOption(defaultText(new Option('--iterations <n>', 'training iterations').argParser(positiveInt), `${TRAIN_DEFAULTS.iterations}; study files default to ${STUDY_DEFAULTS.iterations}, the paper's`))
    .addOption(defaultText(new Option('--epochs <n>', 'train for N passes over the training set instead of --iterations').argParser(positiveInt), 'none: --iterations decides'))
    .option('--seed <n>', 'seed for data, initialisation and batch order', nonNegativeInt, TRAIN_DEFAULTS.seed)
    .option('--batch-size <n>', 'mini-batch size', positiveInt, TRAIN_DEFAULTS.batchSize)
    .addOption(new Option('--lr <x>', 'Adam learning rate').argParser(positive).default(TRAIN_DEFAULTS.lr, `${TRAIN_DEFAULTS.lr}; study files default to ${STUDY_DEFAULTS.lr}, the paper's, with ${STUDY_DEFAULTS.iterations} iterations`))
    .addOption(new Option('--betas <b1,b2>', "Adam's β1,β2").argParser(betaPair).default([0.9, 0.999], '0.9,0.999'))
    .option('--augment <n>', 'zero-augmentation: extra state dimensions (or image channels)', nonNegativeInt, TRAIN_DEFAULTS.augment)
    .option('--t1 <x>', 'end time of the ODE block (starts at 0)', finite, TRAIN_DEFAULTS.t1)
    .option('--log-every <n>', 'log every N iterations', positiveInt, TRAIN_DEFAULTS.logEvery)
    .option('--adapt', 'adapt the step size (fixed-step) or tolerance (adaptive) during training, as in the paper')
    .option('--adapt-threshold <x>', 'maximal train/test accuracy difference', finite, DEFAULT_ADAPT.threshold)
    .option('--adapt-every <n>', 'check every N iterations', positiveInt, DEFAULT_ADAPT.checkEvery)
    .option('--adapt-max-steps <n>', 'upper bound on fixed steps', positiveInt, DEFAULT_ADAPT.maxSteps)
    .addOption(new Option('--adapt-start <how>', "with --adapt: hairer (Hairer's initial step from the first batch, or tol 1e-6 for adaptive solvers: the paper's) | spec (start from --solver's step or tolerance)").choices(['hairer', 'spec']).default('hairer'))
    .option('--engine <engine>', 'training engine: auto (fastest here) | tfjs | ort (one compiled onnxruntime graph per step; fixed-step solvers)', TRAIN_DEFAULTS.engine)
    .option('--threads <n>', 'onnxruntime intra-op threads for the ort engine', positiveInt, 1)
    .addOption(defaultText(new Option('--plot <dir>', 'with --adapt: write the adaptation trace (h or tol and both accuracies over iterations) as SVG + PNG into this directory'), 'no figures'))
    .option('--json', 'print one JSON document at the end: the summary with the log, graph builds and adaptation decisions')
    .action(async (opts, cmd: Command) => {
      const backend = await initBackend(globals(cmd).backend);
      const engine = parseEngineChoice(opts.engine);
      if (opts.plot !== undefined && !opts.adapt) throw new SpecError('--plot draws the adaptation trace of --adapt; add --adapt, or drop --plot (evaluate --plot draws accuracy across test solvers)');
      checkPlotDir(opts.plot);
      const solverSpec = parseSolverSpec(opts.solver); // a bad spec fails before the dataset is loaded
      if (opts.adapt && opts.adaptStart === 'hairer') {
        const start = solverSpec.kind === 'fixed' ? "Hairer's initial step from the first batch" : 'tol 1e-6';
        process.stderr.write(`odeness: note: --adapt starts from ${start} (--adapt-start hairer, the paper's), not from ${opts.solver}'s ${solverSpec.kind === 'fixed' ? 'step' : 'tolerance'}; --adapt-start spec starts from ${opts.solver}\n`);
      }
      const json = Boolean(opts.json);
      const events: { log: unknown[]; graphs: unknown[]; adaptation: unknown[] } = { log: [], graphs: [], adaptation: [] };
      const dataset = await loadDataset(opts.dataset, opts.seed);
      const iterations = resolveIterations(opts, dataset.train.n);
      const bar = progress(iterations, 'train', !json && process.stderr.isTTY === true);
      const started = Date.now();
      const run = await trainRun(
        {
          dataset: opts.dataset,
          field: opts.field,
          solver: opts.solver,
          iterations,
          betas: opts.betas,
          seed: opts.seed,
          batchSize: opts.batchSize,
          lr: opts.lr,
          augment: opts.augment,
          t1: opts.t1,
          logEvery: opts.logEvery,
          adapt: opts.adapt ? { threshold: opts.adaptThreshold, checkEvery: opts.adaptEvery, maxSteps: opts.adaptMaxSteps, start: opts.adaptStart } : false,
          engine,
        },
        {
          out: opts.out,
          dataset,
          threads: opts.threads,
          onIteration: (it) => bar.update(it),
          onLog: (e) => {
            if (json) events.log.push(e);
            else bar.log(`iter ${String(e.iteration).padStart(6)}  loss ${formatNumber(e.loss)}  acc ${formatNumber(e.accuracy)}  nfe ${e.nfeForward}+${e.nfeBackward}  ${e.solver}  ${(e.wallMs / 1000).toFixed(1)}s`);
          },
          onGraphBuild: (g) => {
            if (json) events.graphs.push(g);
            else if (!g.cached) bar.log(`graph ${g.solver}: ${g.nodes} nodes, built in ${(g.graphMs + g.sessionMs).toFixed(0)} ms (graph ${g.graphMs.toFixed(0)} ms, session ${g.sessionMs.toFixed(0)} ms)`);
          },
          onAdapt: (d) => {
            if (json) events.adaptation.push(d);
            else bar.log(`adapt ${String(d.iteration).padStart(5)}  ${d.action.padEnd(6)} ${d.before} → ${d.after}  train acc ${formatNumber(d.trainAccuracy)}  test acc ${formatNumber(d.testAccuracy)} (${d.testSolver})  nfe ${d.trainNfe}/${d.testNfe}`);
          },
        },
      );
      bar.stop();
      const [ownRow] = evaluateModel(run.model, run.dataset.test, [parseSolverSpec(run.training.solver)]);
      const summary = {
        out: opts.out,
        backend: backend.name,
        engine: run.result.engine,
        status: run.training.status,
        iterations: run.result.iterations,
        solver: run.training.solver,
        testAccuracy: ownRow!.accuracy,
        nfe: run.result.nfe,
        seconds: (Date.now() - started) / 1000,
        ...(run.result.diverged ? { error: run.result.diverged.message } : {}),
      };
      if (opts.plot) {
        const { writeAdaptationTrace } = await import('./plot-output.js');
        await writeAdaptationTrace(opts.plot, parseSolverSpec(run.training.solver).kind === 'fixed' ? 'step' : 'tol', run.result.adaptation);
      }
      if (json) printJson({ ...summary, ...events });
      else {
        process.stdout.write(`saved ${opts.out} (${run.training.status}, ${summary.iterations} iterations, ${summary.seconds.toFixed(1)} s, backend ${backend.name}, engine ${run.result.engine})\n`);
        process.stdout.write(`test accuracy under ${run.training.solver}: ${formatNumber(ownRow!.accuracy)}\n`);
      }
      if (run.result.diverged) {
        process.stderr.write(`odeness: error: training diverged: ${run.result.diverged.message}\n`);
        process.exitCode = 1;
      }
    });

  const evaluate = program
    .command('evaluate')
    .description('test accuracy and NFE of a trained model (or ONNX bundle) under a list of test solvers')
    .option('--model <dir>', 'model directory written by `odeness train` (this or --bundle is required)')
    .option('--bundle <dir>', 'ONNX bundle directory (field.onnx + head.onnx [+ encoder.onnx, manifest.json]; this or --model is required)')
    .option('--solvers <list>', 'comma-separated solver specs, or "paper" (#steps × {0.5,0.75,1,1.5,2} for euler/midpoint/rk4; dopri5 at tol × {0.1,1,10})', 'paper');
  datasetOption(evaluate, "the model's own test split")
    .option('--threads <n>', 'onnxruntime intra-op threads (bundles)', positiveInt, 1)
    .addOption(defaultText(new Option('--plot <dir>', 'write the accuracy-vs-test-steps figure (SVG + PNG) into this directory'), 'no figures'))
    .option('--json', 'print {"results": [...]} as one JSON document')
    .action(async (opts, cmd: Command) => {
      if (Boolean(opts.model) === Boolean(opts.bundle)) throw new SpecError('give exactly one of --model <dir> or --bundle <dir>');
      checkPlotDir(opts.plot);
      if (opts.bundle) {
        const { evaluateBundleCommand } = await import('./onnx-commands.js');
        return evaluateBundleCommand(opts);
      }
      await initBackend(globals(cmd).backend);
      const model = await loadModel(opts.model);
      const data: EvalData = (await loadDataset(opts.dataset ?? model.training.dataset, model.training.seed)).test;
      checkLabelsFitModel(opts.dataset ?? model.training.dataset, data.y, model.config.classes);
      const specs = resolveTestSolvers(opts.solvers, model.training.solver, model.config.t0, model.config.t1);
      const rows = evaluateModel(model, data, specs);
      printEvalRows(rows, Boolean(opts.json), { model: opts.model, trainSolver: model.training.solver });
      if (opts.plot) {
        const { writeAccuracyFigure } = await import('./plot-output.js');
        // The training solver's own point is the diamond of the paper's figure.
        const [own] = evaluateModel(model, data, [parseSolverSpec(model.training.solver)]);
        await writeAccuracyFigure(opts.plot, `trained with ${model.training.solver}`, [...rows, own!], own!.spec);
      }
    });
}
