/**
 * One training run from spec strings to a saved model directory — the single
 * entry point shared by `odeness train` and the study job executor.
 */
import { loadDataset } from '../data/spec.js';
import { initBackend } from '../engines/backend.js';
import { Rng } from '../data/random.js';
import type { Dataset } from '../data/types.js';
import { saveModel, type TrainingInfo } from '../models/io.js';
import { fieldKind } from '../models/fields/index.js';
import { initParams, paramShapes } from '../models/params.js';
import { parseFieldSpec } from '../models/spec.js';
import { augmentedShape, type Model, type ModelConfig } from '../models/types.js';
import { SizeError, SpecError } from '../errors.js';
import { MODEL_LIMITS } from '../formats/index.js';
import { formatSolverSpec, parseSolverSpec, type SolverLimits } from '../solvers/spec.js';
import type { AdaptOptions } from './adapt.js';
import { parseEngineChoice, type EngineChoice } from './engine.js';
import { train, type TrainOptions, type TrainResult } from './train.js';

export interface TrainRunSpec {
  readonly dataset: string;
  readonly field: string;
  readonly solver: string;
  /** Training length: iterations, or epochs (passes over the training set, full batches only); not both. */
  readonly iterations?: number;
  readonly epochs?: number;
  readonly seed: number;
  readonly batchSize: number;
  readonly lr: number;
  /** Adam's β1, β2 (default 0.9, 0.999). */
  readonly betas?: readonly [number, number];
  /** Zero-augmentation: extra state dims / channels (default 0). */
  readonly augment?: number;
  readonly t0?: number;
  readonly t1?: number;
  readonly adapt?: Partial<AdaptOptions> | false;
  readonly logEvery?: number;
  /** Training engine: auto (default) | tfjs | ort (see TrainOptions.engine). */
  readonly engine?: EngineChoice;
  /** Bounds the solver spec is checked against (default DEFAULT_SOLVER_LIMITS). */
  readonly solverLimits?: SolverLimits;
}

export const TRAIN_DEFAULTS = { field: 'mlp:width=32', iterations: 2000, seed: 1, batchSize: 128, lr: 1e-3, augment: 0, t0: 0, t1: 1, logEvery: 50, engine: 'auto' } as const;

export interface TrainRunResult {
  readonly model: Model;
  readonly training: TrainingInfo;
  readonly result: TrainResult;
  readonly dataset: Dataset;
}

export function modelConfigFor(dataset: Pick<Dataset, 'inputShape' | 'classes'>, field: string, augment: number, t0: number, t1: number): ModelConfig {
  if (!Number.isInteger(augment) || augment < 0) throw new SpecError(`augment must be a non-negative integer, got ${augment}`);
  const fieldSpec = parseFieldSpec(field);
  const config: ModelConfig = {
    inputShape: [...dataset.inputShape],
    augment,
    stateShape: augmentedShape(dataset.inputShape, augment),
    classes: dataset.classes,
    field: fieldSpec,
    t0,
    t1,
  };
  const wantsImage = fieldKind(fieldSpec).stateRank === 3;
  if (wantsImage && config.stateShape.length !== 3) throw new SpecError(`field "${field}" needs image data ([C, H, W]); dataset input shape is [${dataset.inputShape.join(', ')}]`);
  if (!wantsImage && config.stateShape.length !== 1) throw new SpecError(`field "${field}" needs vector data; dataset input shape is [${dataset.inputShape.join(', ')}] (use conv2d for images)`);
  // Checked before any parameter is allocated (mlp:width=1000000 asked for 10^12 floats).
  const values = paramShapes(config).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  if (values > MODEL_LIMITS.values) throw new SizeError(`field "${field}" on input [${dataset.inputShape.join(', ')}] has ${values} parameters, more than the limit of ${MODEL_LIMITS.values}`);
  return config;
}

/** Iterations from `iterations` or `epochs` (each epoch = ⌊n / batch⌋ full batches). */
export function resolveIterations(spec: Pick<TrainRunSpec, 'iterations' | 'epochs' | 'batchSize'>, trainSize: number): number {
  if (spec.iterations !== undefined && spec.epochs !== undefined) throw new SpecError('give iterations or epochs, not both');
  if (spec.epochs === undefined) return spec.iterations ?? TRAIN_DEFAULTS.iterations;
  if (!Number.isInteger(spec.epochs) || spec.epochs < 1) throw new SpecError(`epochs must be a positive integer, got ${spec.epochs}`);
  if (spec.batchSize > trainSize) throw new SpecError(`batch size ${spec.batchSize} is larger than the training set (${trainSize} samples)`);
  return spec.epochs * Math.floor(trainSize / spec.batchSize);
}

export async function trainRun(
  spec: TrainRunSpec,
  hooks: Pick<TrainOptions, 'onLog' | 'onIteration' | 'onAdapt' | 'onGraphBuild' | 'signal' | 'threads'> & { out?: string; dataset?: Dataset } = {},
): Promise<TrainRunResult> {
  const solver = parseSolverSpec(spec.solver, spec.solverLimits);
  // Library callers get the same backend choice as the CLI (memoised; ODENESS_BACKEND applies).
  await initBackend();
  const dataset = hooks.dataset ?? (await loadDataset(spec.dataset, spec.seed));
  const config = modelConfigFor(dataset, spec.field, spec.augment ?? 0, spec.t0 ?? 0, spec.t1 ?? 1);
  const root = new Rng(spec.seed);
  const initRng = root.fork('init');
  const initial: Model = { config, params: initParams(config, () => initRng.normal()) };
  const result = await train(initial, dataset.train, {
    solver,
    iterations: resolveIterations(spec, dataset.train.n),
    betas: spec.betas,
    batchSize: spec.batchSize,
    lr: spec.lr,
    rng: root.fork('batches'),
    logEvery: spec.logEvery,
    adapt: spec.adapt || undefined,
    engine: parseEngineChoice(spec.engine ?? TRAIN_DEFAULTS.engine),
    threads: hooks.threads,
    onLog: hooks.onLog,
    onIteration: hooks.onIteration,
    onAdapt: hooks.onAdapt,
    onGraphBuild: hooks.onGraphBuild,
    signal: hooks.signal,
  });
  const training: TrainingInfo = {
    dataset: dataset.spec,
    solver: formatSolverSpec(result.solver),
    initialSolver: formatSolverSpec(solver),
    seed: spec.seed,
    iterations: result.iterations,
    batchSize: spec.batchSize,
    lr: spec.lr,
    engine: result.engine,
    adapt: Boolean(spec.adapt),
    status: result.diverged ? 'diverged' : 'complete',
    ...(result.diverged ? { note: result.diverged.message } : {}),
  };
  if (hooks.out) await saveModel(hooks.out, result.model, training);
  return { model: result.model, training, result, dataset };
}
