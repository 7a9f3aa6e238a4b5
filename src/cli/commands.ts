/** The core commands: info, train, evaluate. */
import { createRequire } from 'node:module';
import { Option, type Command } from 'commander';
import { initBackend } from '../engines/backend.js';
import { checkLabelsFitModel } from '../data/limits.js';
import { loadDataset } from '../data/spec.js';
import { loadModel } from '../models/io.js';
import { evaluateModelOnnx, type EvalData } from '../audit/evaluate.js';
import { resolveTestSolvers } from '../solvers/test-set.js';
import { displaySpec, parseSolverSpec } from '../solvers/spec.js';
import { resolveIterations, trainRun, TRAIN_DEFAULTS } from '../train/run.js';
import { STUDY_DEFAULTS } from '../study/schema.js';
import { DEFAULT_ADAPT } from '../train/adapt.js';
import { adaptFoldCheck } from '../audit/adapt-folds.js';
import { clearTrainSessionCache } from '../train/ort-engine.js';
import { SpecError } from '../errors.js';
import { betaPair, datasetOption, defaultText, finite, memoryOption, nonNegativeInt, positive, positiveInt, threadCount } from './args.js';
import { planTraining, stopOnSignal, TRAIN_SIGNAL_HELP } from './train-setup.js';
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
    .option('--dataset <spec>', 'spheres:<ott2021|dupont2019>:dim=<d> | mnist[:size=14] | cifar10:dir=<path> | json:<file> (required) — this or --resume is required')
    .option('--solver <spec>', 'training solver, e.g. euler:0.5, rk4:steps=10, dopri5:1e-5 (required) — this or --resume is required')
    .option('--out <dir>', 'model directory to write; checked before training: not a file, writable, empty unless --force (required) — this or --resume is required')
    .option('--force', 'overwrite what --out holds')
    .addOption(defaultText(new Option('--resume <dir>', 'continue the training saved in DIR (interrupted, diverged or complete) with its own settings, up to --iterations in total (default: the iterations it asked for); writes back into DIR unless --out is given'), 'a new training'))
    .option('--field <spec>', 'mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time] | conv1d | conv2d', TRAIN_DEFAULTS.field)
    .addOption(defaultText(new Option('--iterations <n>', 'training iterations').argParser(positiveInt), `${TRAIN_DEFAULTS.iterations}; study files default to ${STUDY_DEFAULTS.iterations}, the paper's`))
    .addOption(defaultText(new Option('--epochs <n>', 'train for N passes over the training set instead of --iterations').argParser(positiveInt), 'none: --iterations decides'))
    .option('--seed <n>', 'seed for data, initialisation and batch order', nonNegativeInt, TRAIN_DEFAULTS.seed)
    .option('--batch-size <n>', 'mini-batch size', positiveInt, TRAIN_DEFAULTS.batchSize)
    .addOption(new Option('--lr <x>', 'Adam learning rate').argParser(positive).default(TRAIN_DEFAULTS.lr, `${TRAIN_DEFAULTS.lr}; study files default to ${STUDY_DEFAULTS.lr}, the paper's, with ${STUDY_DEFAULTS.iterations} iterations`))
    .addOption(new Option('--betas <b1,b2>', "Adam's β1,β2").argParser(betaPair).default([0.9, 0.999], '0.9,0.999'))
    .option('--augment <n>', 'zero-augmentation: extra state dimensions (or image channels)', nonNegativeInt, TRAIN_DEFAULTS.augment)
    .option('--t1 <x>', 'end time of the ODE block (starts at 0; must be > 0)', finite, TRAIN_DEFAULTS.t1)
    .option('--log-every <n>', 'log every N iterations', positiveInt, TRAIN_DEFAULTS.logEvery)
    .option('--adapt', 'adapt the step size (fixed-step) or tolerance (adaptive) during training, as in the paper')
    .option('--adapt-threshold <x>', 'maximal train/test accuracy difference', finite, DEFAULT_ADAPT.threshold)
    .option('--adapt-every <n>', 'check every N iterations', positiveInt, DEFAULT_ADAPT.checkEvery)
    .option('--adapt-max-steps <n>', 'upper bound on fixed steps', positiveInt, DEFAULT_ADAPT.maxSteps)
    .option('--adapt-folds', 'with --adapt, beyond the paper: also shrink a fixed step that folds space on the check batch (a proof of a non-flow), and grow only to steps that do not')
    .addOption(new Option('--adapt-start <how>', "with --adapt: hairer (Hairer's initial step from the first batch, or tol 1e-6 for adaptive solvers: the paper's) | spec (start from --solver's step or tolerance)").choices(['hairer', 'spec']).default('hairer'))
    .option(
      '--engine <engine>',
      'training engine: auto (fastest here) | tfjs | ort (onnxruntime: one compiled graph per step for fixed-step solvers, ' +
        'compiled steps driven by the integrate loop for adaptive ones)',
      TRAIN_DEFAULTS.engine,
    )
    .option('--threads <n>', 'onnxruntime intra-op threads for the ort engine and the final evaluation', threadCount, 1)
    .addOption(memoryOption())
    .addOption(defaultText(new Option('--plot <dir>', 'with --adapt: write the adaptation trace (h or tol and both accuracies over iterations) as SVG + PNG into this directory'), 'no figures'))
    .option('--json', 'print one JSON document at the end: the summary with the log, graph builds and adaptation decisions')
    .addHelpText('after', TRAIN_SIGNAL_HELP)
    .action(async (opts, cmd: Command) => {
      const started = Date.now();
      if (opts.plot !== undefined && !opts.adapt && opts.resume === undefined) throw new SpecError('--plot draws the adaptation trace of --adapt; add --adapt, or drop --plot (evaluate --plot draws accuracy across test solvers)');
      checkPlotDir(opts.plot);
      // Settings and --out are checked before anything loads: a mistake costs no training.
      const { spec, resume, out } = await planTraining(opts, cmd);
      const solverSpec = parseSolverSpec(spec.solver);
      if (!resume && opts.adapt && opts.adaptStart === 'hairer') {
        const start = solverSpec.kind === 'fixed' ? "Hairer's initial step from the first batch" : 'tol 1e-6';
        process.stderr.write(`odeness: note: --adapt starts from ${start} (--adapt-start hairer, the paper's), not from ${opts.solver}'s ${solverSpec.kind === 'fixed' ? 'step' : 'tolerance'}; --adapt-start spec starts from ${opts.solver}\n`);
      }
      const backend = await initBackend(globals(cmd).backend);
      const json = Boolean(opts.json);
      const events: { log: unknown[]; graphs: unknown[]; adaptation: unknown[] } = { log: [], graphs: [], adaptation: [] };
      const dataset = await loadDataset(spec.dataset, spec.seed);
      const iterations = resolveIterations(spec, dataset.train.n);
      const bar = progress(iterations, 'train', !json && process.stderr.isTTY === true);
      if (resume) bar.update(resume.iterations);
      const stop = stopOnSignal((sig) => bar.log(`${sig}: stopping after the current iteration to save a checkpoint (again to quit at once)`));
      let run;
      try {
        run = await trainRun(
          { ...spec, iterations, epochs: undefined },
          {
            out,
            dataset,
            resume,
            threads: opts.threads,
            foldCheck: adaptFoldCheck,
            signal: stop.signal,
            onIteration: (it) => bar.update(it),
            onLog: (e) => {
              if (json) events.log.push(e);
              else bar.log(`iter ${String(e.iteration).padStart(6)}  loss ${formatNumber(e.loss)}  acc ${formatNumber(e.accuracy)}  nfe ${e.nfeForward}+${e.nfeBackward}  ${displaySpec(e.solver)}  ${(e.wallMs / 1000).toFixed(1)}s`);
            },
            onGraphBuild: (g) => {
              if (json) events.graphs.push(g);
              else if (!g.cached) bar.log(`graph ${g.solver}: ${g.nodes} nodes, built in ${(g.graphMs + g.sessionMs).toFixed(0)} ms (graph ${g.graphMs.toFixed(0)} ms, session ${g.sessionMs.toFixed(0)} ms)`);
            },
            onAdapt: (d) => {
              if (json) events.adaptation.push(d);
              else bar.log(`adapt ${String(d.iteration).padStart(5)}  ${d.action.padEnd(6)} ${displaySpec(d.before)} → ${displaySpec(d.after)}  train acc ${formatNumber(d.trainAccuracy)}  test acc ${formatNumber(d.testAccuracy)} (${displaySpec(d.testSolver)})  nfe ${d.trainNfe}/${d.testNfe}${d.folded !== undefined ? `  folded ${d.folded}/${d.foldStates}` : ''}`);
            },
          },
        );
      } finally {
        stop.dispose();
        bar.stop();
      }
      // The training graphs' sessions (kept for reuse by study jobs) hold their activations: free them for the evaluation.
      await clearTrainSessionCache();
      const seconds = () => (Date.now() - started) / 1000;
      const base = { out, backend: backend.name, engine: run.result.engine, status: run.training.status, iterations: run.training.iterations, solver: run.training.solver };
      if (run.result.interrupted) {
        // A signal: the checkpoint is saved; no evaluation, the user asked to stop.
        if (json) printJson({ ...base, targetIterations: iterations, nfe: run.result.nfe, seconds: seconds(), ...events });
        else process.stdout.write(`saved ${out} (interrupted after ${run.training.iterations} of ${iterations} iterations, ${seconds().toFixed(1)} s); continue with: odeness train --resume ${out}\n`);
        process.exitCode = 130;
        return;
      }
      // The model is on disk already: nothing below can lose it.
      if (!json) process.stdout.write(`saved ${out} (${run.training.status}, ${run.training.iterations} iterations, ${seconds().toFixed(1)} s, backend ${backend.name}, engine ${run.result.engine})\n`);
      const [ownRow] = await evaluateModelOnnx(run.model, run.dataset.test, [parseSolverSpec(run.training.solver)], { memoryBytes: opts.memory, threads: opts.threads });
      const summary = {
        ...base,
        testAccuracy: ownRow!.accuracy,
        nfe: run.result.nfe,
        seconds: seconds(),
        ...(run.result.diverged ? { error: run.result.diverged.message } : {}),
      };
      if (opts.plot && run.result.adaptation.length > 0) {
        const { writeAdaptationTrace } = await import('./plot-output.js');
        await writeAdaptationTrace(opts.plot, parseSolverSpec(run.training.solver).kind === 'fixed' ? 'step' : 'tol', run.result.adaptation);
      }
      if (json) printJson({ ...summary, ...events });
      else process.stdout.write(`test accuracy under ${displaySpec(run.training.solver)}: ${formatNumber(ownRow!.accuracy)}\n`);
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
    .option('--threads <n>', 'onnxruntime intra-op threads', threadCount, 1)
    .addOption(memoryOption())
    .addOption(defaultText(new Option('--plot <dir>', 'write the accuracy-vs-test-steps figure (SVG + PNG) into this directory'), 'no figures'))
    .option('--json', 'print {"results": [...]} as one JSON document')
    .action(async (opts) => {
      if (Boolean(opts.model) === Boolean(opts.bundle)) throw new SpecError('give exactly one of --model <dir> or --bundle <dir>');
      checkPlotDir(opts.plot);
      if (opts.bundle) {
        const { evaluateBundleCommand } = await import('./onnx-commands.js');
        return evaluateBundleCommand(opts);
      }
      // Model directories are evaluated by onnxruntime (as a temporary bundle): no tfjs backend needed.
      const model = await loadModel(opts.model);
      const data: EvalData = (await loadDataset(opts.dataset ?? model.training.dataset, model.training.seed)).test;
      checkLabelsFitModel(opts.dataset ?? model.training.dataset, data.y, model.config.classes);
      const specs = resolveTestSolvers(opts.solvers, model.training.solver, model.config.t0, model.config.t1);
      const rows = await evaluateModelOnnx(model, data, specs, { memoryBytes: opts.memory, threads: opts.threads });
      printEvalRows(rows, Boolean(opts.json), { model: opts.model, trainSolver: model.training.solver });
      if (opts.plot) {
        const { writeAccuracyFigure } = await import('./plot-output.js');
        // The training solver's own point is the diamond of the paper's figure.
        const [own] = await evaluateModelOnnx(model, data, [parseSolverSpec(model.training.solver)], { memoryBytes: opts.memory, threads: opts.threads });
        const label = `trained with ${displaySpec(model.training.solver)}`;
        await writeAccuracyFigure(opts.plot, label, [...rows, own!], own!.spec);
      }
    });
}
