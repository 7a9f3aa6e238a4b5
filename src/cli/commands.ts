/** The core commands: info, train, evaluate. */
import { createRequire } from 'node:module';
import { Option, type Command } from 'commander';
import { initBackend } from '../engines/backend.js';
import { TRAIN_DEFAULTS } from '../train/run.js';
import { STUDY_DEFAULTS } from '../study/schema.js';
import { DEFAULT_ADAPT } from '../train/adapt.js';
import { resolveDevice, runtimeReport, type RuntimeReport } from '../onnx/runtime/adapters.js';
import {
  betaPair,
  datasetOption,
  defaultText,
  deviceOption,
  finite,
  memoryOption,
  nonNegativeInt,
  positive,
  positiveInt,
  threadCount,
} from './args.js';
import { TRAIN_SIGNAL_HELP } from './train-setup.js';
import { checkPlotDir } from './plot-dir.js';
import { printJson } from './output.js';

const require = createRequire(import.meta.url);

function globals(cmd: Command): { backend?: string; verbose?: boolean } {
  return cmd.optsWithGlobals() as { backend?: string; verbose?: boolean };
}

/** `odeness info`'s device lines: providers, adapters, and each device's probe. */
function runtimeLines(r: RuntimeReport): string[] {
  const providers = r.providers.map((p) => (p.present ? p.name : `${p.name} (not installed)`)).join(', ');
  const adapters = r.adapters.map((a) => `${a.name} (${a.backend}, ${a.kind}${a.driver ? `, ${a.driver}` : ''})`);
  const noAdapters = `none found${r.adapterError ? ` (${r.adapterError})` : ''}`;
  return [
    `${'providers'.padEnd(14)} ${providers}`,
    `${'adapters'.padEnd(14)} ${adapters.length > 0 ? adapters.join('; ') : noAdapters}`,
    ...Object.entries(r.devices).map(([d, s]) => `${`device ${d}`.padEnd(14)} ${s}`),
    `${'device auto'.padEnd(14)} ${r.auto}`,
  ];
}

export function registerCoreCommands(program: Command): void {
  registerInfoCommand(program);
  registerTrainCommand(program);
  registerEvaluateCommand(program);
}

/** `info`: backend, versions and the devices onnxruntime can use here. */
function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description(
      'print the tfjs backend in use, its threads, the versions of tfjs, onnxruntime and Node, ' +
        'and the devices onnxruntime can use here (providers, GPU adapters)',
    )
    .option('--json', 'print one JSON document')
    .action(infoAction);
}

async function infoAction(opts: { json?: boolean }, cmd: Command): Promise<void> {
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
  const runtime = await runtimeReport();
  if (opts.json) return printJson({ ...info, ...runtime });
  for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(14)} ${v}\n`);
  process.stdout.write(runtimeLines(runtime).join('\n') + '\n');
}

/** `train`: one solver configuration, saved to a model directory (the work is train-command.ts's). */
function registerTrainCommand(program: Command): void {
  const train = program
    .command('train')
    .description('train a Neural ODE classifier with one solver configuration and save it to a model directory');
  addTrainTargetOptions(train);
  addTrainSettingsOptions(train);
  addTrainAdaptOptions(train);
  train
    .option(
      '--engine <engine>',
      'training engine: auto (fastest here) | tfjs | ort ' +
        '(onnxruntime: one compiled graph per step for fixed-step solvers, ' +
        'compiled steps driven by the integrate loop for adaptive ones)',
      TRAIN_DEFAULTS.engine,
    )
    .option('--threads <n>', 'onnxruntime intra-op threads for the ort engine and the final evaluation', threadCount, 1)
    .addOption(deviceOption("the ort engine's sessions and the final evaluation"))
    .addOption(memoryOption())
    .addOption(
      defaultText(
        new Option(
          '--plot <dir>',
          'with --adapt: write the adaptation trace (h or tol and both accuracies over iterations) ' +
            'as SVG + PNG into this directory',
        ),
        'no figures',
      ),
    )
    .option(
      '--json',
      'print one JSON document at the end: the summary with the log, graph builds and adaptation decisions',
    )
    .addHelpText('after', TRAIN_SIGNAL_HELP)
    .action(async (opts, cmd: Command) => {
      const { trainCommand } = await import('./train-command.js');
      await trainCommand(opts, cmd, () => initBackend(globals(cmd).backend));
    });
}

/** What `train` trains on, with which solver, and where it writes (or what it resumes). */
function addTrainTargetOptions(train: Command): Command {
  return train
    .option(
      '--dataset <spec>',
      'spheres:<ott2021|dupont2019>:dim=<d> | mnist[:size=14] | cifar10:dir=<path> | json:<file> (required) ' +
        '— this or --resume is required',
    )
    .option(
      '--solver <spec>',
      'training solver, e.g. euler:0.5, rk4:steps=10, dopri5:1e-5 (required) — this or --resume is required',
    )
    .option(
      '--out <dir>',
      'model directory to write; checked before training: not a file, writable, empty unless --force (required) ' +
        '— this or --resume is required',
    )
    .option('--force', 'overwrite what --out holds')
    .addOption(
      defaultText(
        new Option(
          '--resume <dir>',
          'continue the training saved in DIR (interrupted, diverged or complete) with its own settings, ' +
            'up to --iterations in total (default: the iterations it asked for); ' +
            'writes back into DIR unless --out is given',
        ),
        'a new training',
      ),
    );
}

/** The model and optimiser settings of `train`. */
function addTrainSettingsOptions(train: Command): Command {
  return train
    .option(
      '--field <spec>',
      'mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time] | conv1d | conv2d | onnx:<file.onnx>',
      TRAIN_DEFAULTS.field,
    )
    .addOption(
      defaultText(
        new Option('--iterations <n>', 'training iterations').argParser(positiveInt),
        `${TRAIN_DEFAULTS.iterations}; study files default to ${STUDY_DEFAULTS.iterations}, the paper's`,
      ),
    )
    .addOption(
      defaultText(
        new Option('--epochs <n>', 'train for N passes over the training set instead of --iterations').argParser(
          positiveInt,
        ),
        'none: --iterations decides',
      ),
    )
    .option('--seed <n>', 'seed for data, initialisation and batch order', nonNegativeInt, TRAIN_DEFAULTS.seed)
    .option('--batch-size <n>', 'mini-batch size', positiveInt, TRAIN_DEFAULTS.batchSize)
    .addOption(
      new Option('--lr <x>', 'Adam learning rate')
        .argParser(positive)
        .default(
          TRAIN_DEFAULTS.lr,
          `${TRAIN_DEFAULTS.lr}; study files default to ${STUDY_DEFAULTS.lr}, the paper's, ` +
            `with ${STUDY_DEFAULTS.iterations} iterations`,
        ),
    )
    .addOption(new Option('--betas <b1,b2>', "Adam's β1,β2").argParser(betaPair).default([0.9, 0.999], '0.9,0.999'))
    .option(
      '--augment <n>',
      'zero-augmentation: extra state dimensions (or image channels)',
      nonNegativeInt,
      TRAIN_DEFAULTS.augment,
    )
    .option('--t1 <x>', 'end time of the ODE block (starts at 0; must be > 0)', finite, TRAIN_DEFAULTS.t1)
    .option('--log-every <n>', 'log every N iterations', positiveInt, TRAIN_DEFAULTS.logEvery);
}

/** `train --adapt` and its settings (the paper's step-size adaptation). */
function addTrainAdaptOptions(train: Command): Command {
  return train
    .option('--adapt', 'adapt the step size (fixed-step) or tolerance (adaptive) during training, as in the paper')
    .option('--adapt-threshold <x>', 'maximal train/test accuracy difference', finite, DEFAULT_ADAPT.threshold)
    .option('--adapt-every <n>', 'check every N iterations', positiveInt, DEFAULT_ADAPT.checkEvery)
    .option('--adapt-max-steps <n>', 'upper bound on fixed steps', positiveInt, DEFAULT_ADAPT.maxSteps)
    .option(
      '--adapt-folds',
      'with --adapt, beyond the paper: also shrink a fixed step that folds space on the check batch ' +
        '(a proof of a non-flow), and grow only to steps that do not',
    )
    .addOption(
      new Option(
        '--adapt-start <how>',
        "with --adapt: hairer (Hairer's initial step from the first batch, or tol 1e-6 for adaptive solvers: " +
          "the paper's) | spec (start from --solver's step or tolerance)",
      )
        .choices(['hairer', 'spec'])
        .default('hairer'),
    );
}

/** `evaluate`: a model or bundle under a list of test solvers. */
function registerEvaluateCommand(program: Command): void {
  const evaluate = program
    .command('evaluate')
    .description('test accuracy and NFE of a trained model (or ONNX bundle) under a list of test solvers')
    .option('--model <dir>', 'model directory written by `odeness train` (this or --bundle is required)')
    .option(
      '--bundle <dir>',
      'ONNX bundle directory (field.onnx + head.onnx [+ encoder.onnx, manifest.json]), ' +
        'or an export --effective directory (evaluated under its unrolled solver); this or --model is required',
    )
    .option(
      '--solvers <list>',
      'comma-separated solver specs, or "paper" ' +
        '(#steps × {0.5,0.75,1,1.5,2} for euler/midpoint/rk4; dopri5 at tol × {0.1,1,10})',
      'paper',
    );
  datasetOption(evaluate, "the model's own test split")
    .option('--threads <n>', 'onnxruntime intra-op threads', threadCount, 1)
    .addOption(deviceOption())
    .addOption(memoryOption())
    .addOption(
      defaultText(
        new Option('--plot <dir>', 'write the accuracy-vs-test-steps figure (SVG + PNG) into this directory'),
        'no figures',
      ),
    )
    .option('--json', 'print {"results": [...]} as one JSON document')
    .action(async (opts) => {
      checkPlotDir(opts.plot);
      opts.device = await resolveDevice(opts.device);
      const { evaluateCommand } = await import('./evaluate-command.js');
      return evaluateCommand(opts);
    });
}
