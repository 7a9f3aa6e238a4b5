/**
 * What `odeness train` settles before any training starts: the run's
 * settings (from the flags, or from the checkpoint with --resume) and an
 * output directory that is known to take the model.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { SpecError } from '../errors.js';
import { checkStepBudget, parseSolverSpec } from '../solvers/spec.js';
import { prepareOutDir, probeWritable } from '../train/checkpoint.js';
import { parseEngineChoice } from '../train/engine.js';
import { DEFAULT_ADAPT, validateAdaptOptions } from '../train/adapt.js';
import { resumePlan, validateTimeSpan, type ResumePoint, type TrainRunSpec } from '../train/run.js';

export const TRAIN_SIGNAL_HELP = `
Stopping and resuming:
  Ctrl-C (SIGINT) or SIGTERM stops training after the current iteration, saves the
  model marked "interrupted" in model.json (with checkpoint.json) and exits 130;
  a second signal quits at once. \`odeness train --resume DIR\` continues it:
  parameters, iteration count, batch order and the adapted solver are restored,
  Adam's moment estimates restart from zero.`;

/** Options that define a run; --resume takes them from the checkpoint instead. */
const RUN_SETTINGS = [
  'dataset',
  'solver',
  'field',
  'epochs',
  'seed',
  'batchSize',
  'lr',
  'betas',
  'augment',
  't1',
  'adapt',
  'adaptThreshold',
  'adaptEvery',
  'adaptMaxSteps',
  'adaptStart',
  'adaptFolds',
  'engine',
];

const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export interface TrainingPlan {
  readonly spec: TrainRunSpec;
  readonly resume?: ResumePoint;
  readonly out: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function planTraining(opts: any, cmd: Command): Promise<TrainingPlan> {
  if (opts.resume !== undefined) {
    const given = RUN_SETTINGS.filter((k) => cmd.getOptionValueSource(k) === 'cli');
    if (given.length > 0)
      throw new SpecError(
        `--resume continues a run with its own settings; drop ${given.map(flag).join(', ')} (only --iterations, ` +
          `--out, --force, --threads, --device, --memory, --log-every and --json apply)`,
      );
    const plan = await resumePlan(opts.resume, opts.iterations);
    const out: string = opts.out ?? opts.resume;
    if (path.resolve(out) === path.resolve(opts.resume)) await probeWritable(out);
    else await prepareOutDir(out, { force: opts.force });
    const spec = cmd.getOptionValueSource('logEvery') === 'cli' ? { ...plan.spec, logEvery: opts.logEvery } : plan.spec;
    return { spec, resume: plan.resume, out };
  }
  for (const k of ['dataset', 'solver', 'out'] as const) {
    if (opts[k] === undefined) throw new SpecError(`--${k} is required (or --resume DIR to continue a saved training)`);
  }
  // Everything that can be checked without data is checked before the dataset loads.
  validateTimeSpan(0, opts.t1);
  checkStepBudget(parseSolverSpec(opts.solver), 0, opts.t1);
  const engine = parseEngineChoice(opts.engine);
  if (opts.adaptStart !== 'hairer' && opts.adaptStart !== 'spec')
    throw new SpecError(`--adapt-start must be hairer or spec, got "${opts.adaptStart}"`);
  if (opts.adapt)
    validateAdaptOptions({
      ...DEFAULT_ADAPT,
      threshold: opts.adaptThreshold,
      checkEvery: opts.adaptEvery,
      maxSteps: opts.adaptMaxSteps,
    });
  if (opts.iterations !== undefined && opts.epochs !== undefined)
    throw new SpecError('give iterations or epochs, not both');
  if (opts.adaptFolds && !opts.adapt) throw new SpecError('--adapt-folds adds fold checks to --adapt; add --adapt');
  await prepareOutDir(opts.out, { force: opts.force });
  const spec: TrainRunSpec = {
    dataset: opts.dataset,
    field: opts.field,
    solver: opts.solver,
    ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}),
    ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
    betas: opts.betas,
    seed: opts.seed,
    batchSize: opts.batchSize,
    lr: opts.lr,
    augment: opts.augment,
    t1: opts.t1,
    logEvery: opts.logEvery,
    adapt: opts.adapt
      ? {
          threshold: opts.adaptThreshold,
          checkEvery: opts.adaptEvery,
          maxSteps: opts.adaptMaxSteps,
          start: opts.adaptStart,
          ...(opts.adaptFolds ? { folds: true } : {}),
        }
      : false,
    engine,
  };
  return { spec, out: opts.out };
}
