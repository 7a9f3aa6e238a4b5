/**
 * One training run from spec strings to a saved model directory — the single
 * entry point shared by `odeness train` and the study job executor.
 */
import { loadDataset } from '../data/spec.js';
import { initBackend } from '../engines/backend.js';
import { Rng } from '../random.js';
import type { Dataset } from '../data/types.js';
import { loadModel, saveModel, type TrainingInfo } from '../models/io.js';
import { fieldKind } from '../models/fields/index.js';
import { initParams, paramShapes } from '../models/params.js';
import { parseFieldSpec } from '../models/spec.js';
import { augmentedShape, type Model, type ModelConfig, type Params } from '../models/types.js';
import { SizeError, SpecError } from '../errors.js';
import { MODEL_LIMITS } from '../formats/index.js';
import { parseSolver } from '../solvers/solver.js';
import { checkStepBudget, type SolverLimits, type SolverSpec } from '../solvers/spec.js';
import { evaluate, type EvalRow } from '../onnx/evaluate.js';
import { memorySource } from '../onnx/source.js';
import type { Device } from '../onnx/runtime/device.js';
import type { TrainSessionCache } from './ort-engine.js';
import type { AdaptOptions } from './adapt.js';
import { parseEngineChoice, type EngineChoice } from './engine.js';
import { train, type TrainOptions, type TrainResult } from './train.js';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';

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

export const TRAIN_DEFAULTS = {
  field: 'mlp:width=32',
  iterations: 2000,
  seed: 1,
  batchSize: 128,
  lr: 1e-3,
  augment: 0,
  t0: 0,
  t1: 1,
  logEvery: 50,
  engine: 'auto',
} as const;

export interface TrainRunResult {
  readonly model: Model;
  readonly training: TrainingInfo;
  readonly result: TrainResult;
  readonly dataset: Dataset;
  /**
   * The trained model's test row under its (final) training solver, when hooks.finalEvaluation asked for it and
   * training was not interrupted.
   */
  readonly testRow?: EvalRow;
}

/** The final test evaluation of trainRun: onnxruntime on the model in memory (src/onnx/evaluate.ts). */
export interface FinalEvaluation {
  readonly memoryBytes?: number;
  readonly threads?: number;
  /** Where the evaluation's sessions run (default cpu). */
  readonly device?: Device;
  readonly signal?: AbortSignal;
  /** Field calls of the final solve, of `total` when known. */
  readonly onProgress?: (calls: number, total?: number) => void;
}

/** The ODE block runs forward in time over a span of positive length. */
export function validateTimeSpan(t0: number, t1: number): void {
  if (!Number.isFinite(t0) || !Number.isFinite(t1))
    throw new SpecError(`t0 and t1 must be finite numbers, got t0=${t0}, t1=${t1}`);
  if (!(t1 > t0))
    throw new SpecError(`t1 must be larger than t0 (the ODE block integrates forward in time), got t0=${t0}, t1=${t1}`);
}

export function modelConfigFor(
  dataset: Pick<Dataset, 'inputShape' | 'classes'>,
  field: string,
  augment: number,
  t0: number,
  t1: number,
): ModelConfig {
  if (!Number.isInteger(augment) || augment < 0)
    throw new SpecError(`augment must be a non-negative integer, got ${augment}`);
  validateTimeSpan(t0, t1);
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
  const kind = fieldKind(fieldSpec);
  const wantsImage = kind.stateRank === 3;
  if (kind.checkState) kind.checkState(fieldSpec, config.stateShape);
  else if (wantsImage && config.stateShape.length !== 3)
    throw new SpecError(
      `field "${field}" needs image data ([C, H, W]); dataset input shape is [${dataset.inputShape.join(', ')}]`,
    );
  else if (!wantsImage && config.stateShape.length !== 1)
    throw new SpecError(
      `field "${field}" needs vector data; ` +
        `dataset input shape is [${dataset.inputShape.join(', ')}] (use conv2d for images)`,
    );
  // Checked before any parameter is allocated (mlp:width=1000000 asked for 10^12 floats).
  const values = paramShapes(config).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  if (values > MODEL_LIMITS.values)
    throw new SizeError(
      `field "${field}" on input [${dataset.inputShape.join(', ')}] has ${values} parameters, ` +
        `more than the limit of ${MODEL_LIMITS.values}`,
    );
  return config;
}

/** Iterations from `iterations` or `epochs` (each epoch = ⌊n / batch⌋ full batches). */
export function resolveIterations(
  spec: Pick<TrainRunSpec, 'iterations' | 'epochs' | 'batchSize'>,
  trainSize: number,
): number {
  if (spec.iterations !== undefined && spec.epochs !== undefined)
    throw new SpecError('give iterations or epochs, not both');
  if (spec.epochs === undefined) return spec.iterations ?? TRAIN_DEFAULTS.iterations;
  if (!Number.isInteger(spec.epochs) || spec.epochs < 1)
    throw new SpecError(`epochs must be a positive integer, got ${spec.epochs}`);
  if (spec.batchSize > trainSize)
    throw new SpecError(`batch size ${spec.batchSize} is larger than the training set (${trainSize} samples)`);
  return spec.epochs * Math.floor(trainSize / spec.batchSize);
}

/** Where a resumed run starts: a checkpoint's parameters, iteration count and (adapted) solver. */
export interface ResumePoint {
  readonly params: Params;
  readonly iterations: number;
  readonly solver: string;
}

export type TrainRunHooks = Pick<
  TrainOptions,
  | 'onLog'
  | 'onIteration'
  | 'onAdapt'
  | 'onGraphBuild'
  | 'signal'
  | 'threads'
  | 'device'
  | 'sessions'
  | 'foldCheck'
  | 'placement'
> & {
  /** Model directory to write (model.json, params.bin, checkpoint.json); checked by the caller (prepareOutDir). */
  out?: string;
  /**
   * Evaluate the trained model on the test split (TrainRunResult.testRow), after freeing the training engine's
   * sessions.
   */
  finalEvaluation?: FinalEvaluation;
  dataset?: Dataset;
  resume?: ResumePoint;
};

export async function trainRun(spec: TrainRunSpec, hooks: TrainRunHooks = {}): Promise<TrainRunResult> {
  // In the CLI's order (src/cli/train-setup.ts): the span, then the solver, resolved once (training, its engines and
  // graphs carry this Solver), then the steps it takes over the span.
  validateTimeSpan(spec.t0 ?? 0, spec.t1 ?? 1);
  const solver = parseSolver(spec.solver, spec.solverLimits);
  checkStepBudget(solver.spec, spec.t0 ?? 0, spec.t1 ?? 1, spec.solverLimits);
  // Library callers get the same backend choice as the CLI (memoised; ODENESS_BACKEND applies).
  await initBackend();
  const dataset = hooks.dataset ?? (await loadDataset(spec.dataset, spec.seed));
  const config = modelConfigFor(dataset, spec.field, spec.augment ?? 0, spec.t0 ?? 0, spec.t1 ?? 1);
  const root = new Rng(spec.seed);
  const initRng = root.fork('init');
  // The initial draw happens on resume too, so every other stream stays where it was.
  const drawn = initParams(config, () => initRng.normal());
  const initial: Model = { config, params: hooks.resume?.params ?? drawn };
  const iterations = resolveIterations(spec, dataset.train.n);
  const result = await train(initial, dataset.train, {
    solver: hooks.resume ? parseSolver(hooks.resume.solver) : solver,
    iterations,
    startIteration: hooks.resume?.iterations,
    betas: spec.betas,
    batchSize: spec.batchSize,
    lr: spec.lr,
    rng: root.fork('batches'),
    logEvery: spec.logEvery,
    adapt: spec.adapt || undefined,
    engine: parseEngineChoice(spec.engine ?? TRAIN_DEFAULTS.engine),
    threads: hooks.threads,
    device: hooks.device,
    sessions: hooks.sessions,
    placement: hooks.placement,
    onLog: hooks.onLog,
    onIteration: hooks.onIteration,
    onAdapt: hooks.onAdapt,
    onGraphBuild: hooks.onGraphBuild,
    signal: hooks.signal,
    foldCheck: hooks.foldCheck,
  });
  const training: TrainingInfo = {
    dataset: dataset.spec,
    solver: result.solver.label,
    initialSolver: solver.label,
    seed: spec.seed,
    iterations: result.checkpointIteration,
    batchSize: spec.batchSize,
    lr: spec.lr,
    engine: result.engine,
    adapt: Boolean(spec.adapt),
    status: result.diverged ? 'diverged' : result.interrupted ? 'interrupted' : 'complete',
    ...(result.diverged || result.interrupted ? { targetIterations: iterations } : {}),
    ...(result.diverged ? { note: result.diverged.message } : {}),
    ...(result.interrupted
      ? {
          note:
            `interrupted after iteration ${result.interrupted.iteration} of ${iterations}; ` +
            `continue with train --resume`,
        }
      : {}),
  };
  if (hooks.out) {
    // The model first: whatever happens next (evaluation, a second signal), it is on disk.
    await saveModel(hooks.out, result.model, training);
    await writeCheckpoint(hooks.out, checkpointOf(spec, iterations, training));
  }
  if (!hooks.finalEvaluation || result.interrupted) return { model: result.model, training, result, dataset };
  const testRow = await finalTestRow(result.model, dataset, result.solver.spec, hooks.finalEvaluation, hooks.sessions);
  return { model: result.model, training, result, dataset, testRow };
}

async function finalTestRow(
  model: Model,
  dataset: Dataset,
  solver: SolverSpec,
  o: FinalEvaluation,
  shared?: TrainSessionCache,
): Promise<EvalRow> {
  // Idle training sessions a caller keeps for reuse hold their activations: free them for the evaluation
  // (the engine's own sessions were released when training ended).
  await shared?.trim(0);
  const source = await memorySource(
    model,
    {},
    {
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.device !== undefined ? { device: o.device } : {}),
      ...(o.memoryBytes !== undefined ? { memoryBytes: o.memoryBytes } : {}),
    },
  );
  try {
    const [row] = await evaluate(source, dataset.test, [solver], {
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onProgress
        ? { onProgress: (_i: number, calls: number, total?: number) => o.onProgress!(calls, total) }
        : {}),
    });
    return row!;
  } finally {
    await source.release();
  }
}

function checkpointOf(spec: TrainRunSpec, targetIterations: number, training: TrainingInfo): Checkpoint {
  const run: Checkpoint['run'] = {
    dataset: spec.dataset,
    field: spec.field,
    solver: spec.solver,
    seed: spec.seed,
    batchSize: spec.batchSize,
    lr: spec.lr,
    ...(spec.betas ? { betas: [spec.betas[0], spec.betas[1]] as [number, number] } : {}),
    ...(spec.augment !== undefined ? { augment: spec.augment } : {}),
    ...(spec.t0 !== undefined ? { t0: spec.t0 } : {}),
    ...(spec.t1 !== undefined ? { t1: spec.t1 } : {}),
    ...(spec.adapt !== undefined ? { adapt: spec.adapt } : {}),
    ...(spec.logEvery !== undefined ? { logEvery: spec.logEvery } : {}),
    ...(spec.engine !== undefined ? { engine: spec.engine } : {}),
  };
  return {
    kind: 'odeness-checkpoint',
    formatVersion: 1,
    run,
    targetIterations,
    iterations: training.iterations,
    solver: training.solver,
    status: training.status,
  };
}

/**
 * The settings and starting point of `train --resume DIR`: the run's own
 * settings, to `iterations` in total (default: the iterations it asked for).
 */
export async function resumePlan(
  dir: string,
  iterations?: number,
): Promise<{ spec: TrainRunSpec; resume: ResumePoint; checkpoint: Checkpoint }> {
  const checkpoint = await readCheckpoint(dir);
  const saved = await loadModel(dir);
  const target = iterations ?? checkpoint.targetIterations;
  if (target <= checkpoint.iterations) {
    throw new SpecError(
      `${dir} already has ${checkpoint.iterations} iterations (${checkpoint.status}); ` +
        `pass --iterations N with N > ${checkpoint.iterations} to train further`,
    );
  }
  const spec: TrainRunSpec = { ...checkpoint.run, iterations: target };
  return {
    spec,
    resume: { params: saved.params, iterations: checkpoint.iterations, solver: checkpoint.solver },
    checkpoint,
  };
}
