/**
 * The one training loop: Adam on cross-entropy through every stage of the
 * solver (discretise-then-optimise), with optional step-size / tolerance
 * adaptation, NaN/Inf detection with a kept checkpoint, NFE accounting and
 * periodic logging — written once for both engines. The engine (engine.ts:
 * tfjs tensors, or one compiled onnxruntime graph per step) only supplies a
 * training step on a batch and the accuracy of its parameters under a solver.
 */
import { fieldKind } from '../models/fields/index.js';
import * as tf from '@tensorflow/tfjs';
import { DivergenceError, SpecError } from '../errors.js';
import type { Rng } from '../random.js';
import type { Split } from '../data/types.js';
import { batchIterator, gather } from '../data/batch.js';
import { asSolver, resolveSolver, withStep, withTolerance, type Solver } from '../solvers/solver.js';
import { formatSolverSpec, solverParam, type FixedSolverSpec, type SolverSpec } from '../solvers/spec.js';
import type { Model, Params } from '../models/types.js';
import {
  adaptiveAdaptStep,
  DEFAULT_ADAPT,
  fixedAdaptStep,
  validateAdaptOptions,
  type AdaptDecision,
  type AdaptFoldCheck,
  type AdaptOptions,
} from './adapt.js';
import { parseEngineChoice, type EngineChoice, type EngineName, type GraphBuild, type TrainEngine } from './engine.js';
import type { Device } from '../onnx/runtime/device.js';
import { OrtEngine, type TrainSessionCache } from './ort-engine.js';
import { createTfjsEngine } from './tfjs-engine.js';

export interface TrainOptions {
  /** The training solver (a spec is resolved once, here). */
  readonly solver: SolverSpec | Solver;
  /** Total iterations: training ends after iteration `iterations` (counting from 1, including resumed ones). */
  readonly iterations: number;
  /**
   * Iterations already done by the checkpoint training resumes from (default
   * 0): their batches are drawn and skipped, so the batch order continues
   * where it stopped, and numbering continues after them.
   */
  readonly startIteration?: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly betas?: readonly [number, number];
  /** Log every N iterations (default 50). */
  readonly logEvery?: number;
  /** Step-size / tolerance adaptation; off when absent. */
  readonly adapt?: Partial<AdaptOptions>;
  /** The fold check adaptation with `folds` runs on the check batch (the caller's: audit/adapt-folds.ts). */
  readonly foldCheck?: AdaptFoldCheck;
  readonly rng: Rng;
  /**
   * Training engine (default auto): tfjs, ort (one compiled onnxruntime graph
   * per step for fixed-step solvers; compiled steps the integrate loop drives
   * for adaptive ones), or auto = the faster one for this configuration here
   * (see chooseEngine).
   */
  readonly engine?: EngineChoice;
  /** onnxruntime intra-op threads for the ort engine (default 1). */
  readonly threads?: number;
  /** Where the ort engine's sessions run (default cpu; another device means the ort engine). */
  readonly device?: Device;
  /** Training sessions shared with other runs (the caller's cache and policy); default: the engine's own. */
  readonly sessions?: TrainSessionCache;
  /** Record where onnxruntime places each graph's nodes (GraphBuild.placement). */
  readonly placement?: boolean;
  readonly onLog?: (entry: TrainLogEntry) => void;
  readonly onIteration?: (iteration: number) => void;
  readonly onAdapt?: (decision: AdaptDecision) => void;
  /** The ort engine took a training graph into use (built, with its build time, or from the cache). */
  readonly onGraphBuild?: (build: GraphBuild) => void;
  /** Aborting stops training after the step in progress; the result is then marked interrupted. */
  readonly signal?: AbortSignal;
}

export interface TrainLogEntry {
  readonly iteration: number;
  readonly loss: number;
  readonly accuracy: number;
  /** Vector-field evaluations of this iteration's forward solve. */
  readonly nfeForward: number;
  /** Vector-Jacobian products of its backward pass (one per forward evaluation). */
  readonly nfeBackward: number;
  readonly solver: string;
  /** h or tol in use. */
  readonly param: number;
  readonly wallMs: number;
}

export interface TrainResult {
  readonly model: Model;
  /** The training solver at the end (adaptation may have replaced the initial one). */
  readonly solver: Solver;
  readonly log: TrainLogEntry[];
  readonly adaptation: AdaptDecision[];
  readonly iterations: number;
  /** The iteration whose parameters `model` holds (the last good one when diverged). */
  readonly checkpointIteration: number;
  readonly nfe: { forward: number; backward: number; checks: number };
  readonly wallMs: number;
  /** Set when training stopped on a NaN/Inf loss; model holds the last good checkpoint. */
  readonly diverged?: { iteration: number; message: string };
  /** Set when the signal stopped training before its last iteration. */
  readonly interrupted?: { iteration: number };
  /** The engine that trained (auto resolved). */
  readonly engine: EngineName;
  /** Graphs the ort engine built or took from its cache (one per training solver used). */
  readonly graphBuilds: readonly GraphBuild[];
}

function copyParams(p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) out[k] = { shape: [...v.shape], data: v.data.slice() };
  return out;
}

export function validateTrainOptions(o: TrainOptions, trainSize: number): void {
  if (!Number.isInteger(o.iterations) || o.iterations < 1)
    throw new SpecError(`iterations must be a positive integer, got ${o.iterations}`);
  const start = o.startIteration ?? 0;
  if (!Number.isInteger(start) || start < 0)
    throw new SpecError(`start iteration must be a non-negative integer, got ${start}`);
  if (start >= o.iterations)
    throw new SpecError(
      `the checkpoint already has ${start} iterations; ask for more than that (iterations ${o.iterations})`,
    );
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
    throw new SpecError(`batch size must be a positive integer, got ${o.batchSize}`);
  if (o.batchSize > trainSize)
    throw new SpecError(`batch size ${o.batchSize} is larger than the training set (${trainSize} samples)`);
  if (!(o.lr > 0) || !Number.isFinite(o.lr))
    throw new SpecError(`learning rate must be a positive number, got ${o.lr}`);
  if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1))
    throw new SpecError(`threads must be a positive integer, got ${o.threads}`);
}

/** Process-wide memo of auto decisions that needed a measurement (key: configuration, solver, batch). */
const autoDecisions = new Map<string, EngineName>();

/**
 * The engine `auto` picks: ort (compiled graphs for fixed steps, compiled
 * steps driven by the integrate loop for adaptive ones), unless a native tfjs binding is the
 * backend, in which case both engines time a few steps on the first batch and
 * the faster one wins (memoised per configuration for the process).
 */
export async function chooseEngine(
  choice: EngineChoice,
  initial: Model,
  solver: Solver,
  x: Float32Array,
  y: Int32Array,
  o: Pick<TrainOptions, 'batchSize' | 'lr' | 'betas' | 'threads' | 'device'>,
): Promise<EngineName> {
  // Devices other than the CPU are onnxruntime execution providers: only the ort engine reaches them.
  const device = o.device ?? 'cpu';
  if (device !== 'cpu' && choice === 'tfjs')
    throw new SpecError(`engine tfjs trains on the CPU only; device ${device} needs engine ort (or auto)`);
  if (device !== 'cpu') return 'ort';
  if (choice !== 'auto') return choice;
  if (fieldKind(initial.config.field).ortOnly) return 'ort';
  if (tf.getBackend() !== 'tensorflow') return 'ort';
  const key = JSON.stringify({
    config: initial.config,
    spec: solver.spec,
    batch: o.batchSize,
    threads: o.threads ?? 1,
  });
  let pick = autoDecisions.get(key);
  if (!pick) {
    // Each engine in turn on the same batch; a tie goes to ort.
    const ms = { tfjs: 0, ort: 0 };
    for (const name of ['tfjs', 'ort'] as const) ms[name] = await timeEngine(name, initial, solver, x, y, o);
    pick = ms.ort <= ms.tfjs ? 'ort' : 'tfjs';
    autoDecisions.set(key, pick);
  }
  return pick;
}

/** Median ms of 3 training steps after 2 warm-up steps, on a throw-away engine. */
export async function timeEngine(
  name: EngineName,
  initial: Model,
  solver: Solver,
  x: Float32Array,
  y: Int32Array,
  o: Pick<TrainOptions, 'batchSize' | 'lr' | 'betas' | 'threads'>,
): Promise<number> {
  const engine = await createEngine(name, initial, o);
  try {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await engine.step(x, y, solver);
      if (i >= 2) times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[1]!;
  } finally {
    await engine.dispose();
  }
}

type EngineSetup = 'batchSize' | 'lr' | 'betas' | 'threads' | 'onGraphBuild' | 'device' | 'sessions' | 'placement';

export async function createEngine(
  name: EngineName,
  initial: Model,
  o: Pick<TrainOptions, EngineSetup>,
): Promise<TrainEngine> {
  const options = {
    batchSize: o.batchSize,
    lr: o.lr,
    betas: o.betas,
    threads: o.threads,
    onGraphBuild: o.onGraphBuild,
  };
  if (name === 'ort')
    return OrtEngine.create(initial, { ...options, device: o.device, sessions: o.sessions, placement: o.placement });
  return createTfjsEngine(initial, options);
}

export async function train(initial: Model, data: Split, o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o, data.n);
  const adapt = o.adapt ? validateAdaptOptions({ ...DEFAULT_ADAPT, ...o.adapt }) : undefined;
  if (adapt?.folds && !o.foldCheck)
    throw new SpecError(
      'adaptation with fold checks needs a fold check (TrainOptions.foldCheck: audit/adapt-folds.ts)',
    );
  const choice = parseEngineChoice(o.engine);
  const logEvery = o.logEvery ?? 50;
  const batches = batchIterator(data, o.batchSize, o.rng);
  const first = o.startIteration ?? 0;
  for (let k = 0; k < first; k++) batches.next();
  const nextBatch = () => gather(data, batches.next().value!);

  const solver = asSolver(o.solver);
  let batch = nextBatch();
  const engineName = await chooseEngine(choice, initial, solver, batch.x, batch.y, o);
  const engine = await createEngine(engineName, initial, o);
  const loop: TrainLoop = {
    initial,
    o,
    engine,
    span: initial.config.t1 - initial.config.t0,
    start: performance.now(),
    solver,
    log: [],
    adaptation: [],
    recentNfe: [],
    nfe: { forward: 0, backward: 0, checks: 0 },
    lastGood: copyParams(initial.params),
    lastGoodIteration: first,
  };
  let diverged: TrainResult['diverged'];
  let interrupted: TrainResult['interrupted'];
  let done = first;
  try {
    for (let it = first + 1; it <= o.iterations; it++) {
      if (o.signal?.aborted) {
        interrupted = { iteration: done };
        break;
      }
      if (it > first + 1) batch = nextBatch();
      if (it === 1 && adapt && adapt.start === 'hairer') loop.solver = await startSolver(loop, adapt, batch.x);
      const spec = loop.solver.spec;
      const { loss, accuracy, nfe: stepNfe } = await engine.step(batch.x, batch.y, loop.solver);
      if (!Number.isFinite(loss)) {
        diverged = { iteration: it, message: divergenceMessage(loop, it, loss, spec) };
        break;
      }
      loop.nfe.forward += stepNfe;
      loop.nfe.backward += stepNfe;
      loop.recentNfe.push(stepNfe);
      if (loop.recentNfe.length > 5) loop.recentNfe.shift();
      done = it;
      if (adapt && it % adapt.checkEvery === 0) await adaptationCheck(loop, adapt, it, batch, accuracy, stepNfe);
      if (it % logEvery === 0 || it === o.iterations || it === first + 1)
        logIteration(loop, it, loss, accuracy, stepNfe);
      o.onIteration?.(it);
      // Let timers (progress bars, in-progress acks) and signal handlers run:
      // a tfjs step is synchronous, so without this turn of the event loop a
      // Ctrl-C would wait for the whole training.
      await new Promise((r) => setImmediate(r));
    }
    return trainResult(loop, engineName, done, diverged, interrupted);
  } finally {
    await engine.dispose();
  }
}

/** What the steps of one training loop share: its fixed inputs and the state it carries from iteration to iteration. */
interface TrainLoop {
  readonly initial: Model;
  readonly o: TrainOptions;
  readonly engine: TrainEngine;
  /** Length of the integration interval, t1 - t0. */
  readonly span: number;
  /** performance.now() when the loop started. */
  readonly start: number;
  /** The current training solver (adaptation replaces it). */
  solver: Solver;
  readonly log: TrainLogEntry[];
  readonly adaptation: AdaptDecision[];
  /** NFE of the last (up to) 5 steps, for the adaptive solvers' adaptation. */
  readonly recentNfe: number[];
  readonly nfe: { forward: number; backward: number; checks: number };
  /** The last finite parameters and their iteration: what a diverged run keeps. */
  lastGood: Params;
  lastGoodIteration: number;
}

/** --adapt-start hairer: Hairer's initial step on the first batch (fixed-step), the start tolerance (adaptive). */
async function startSolver(loop: TrainLoop, adapt: AdaptOptions, x: Float32Array): Promise<Solver> {
  const solver = loop.solver;
  // A step longer than the interval is one step over it.
  if (solver.kind === 'fixed')
    return withStep(solver, Math.min(await loop.engine.initialStep(x, solver.tableau.order), loop.span));
  return withTolerance(solver, adapt.startTol);
}

function divergenceMessage(loop: TrainLoop, it: number, loss: number, spec: SolverSpec): string {
  const { t0, t1 } = loop.initial.config;
  return (
    `loss became ${loss} at iteration ${it} with solver ${formatSolverSpec(spec)} ` +
    `(step/tol ${solverParam(spec, t0, t1)}); kept the checkpoint of iteration ${loop.lastGoodIteration}`
  );
}

/** One adaptation check on the current batch: may replace the training solver; records the decision. */
async function adaptationCheck(
  loop: TrainLoop,
  adapt: AdaptOptions,
  it: number,
  current: { x: Float32Array; y: Int32Array },
  accuracy: number,
  stepNfe: number,
): Promise<void> {
  const { engine, nfe, solver } = loop;
  // The adaptation designs new specs (test solvers, trials, the next training solver): each is resolved once.
  const resolved = new Map<SolverSpec, Solver>();
  const accuracyUnder = async (s: SolverSpec) => {
    const checked = resolveSolver(s);
    resolved.set(s, checked);
    const r = await engine.accuracy(current.x, current.y, checked);
    nfe.checks += r.nfe;
    return r;
  };
  const opened =
    adapt.folds && solver.kind === 'fixed'
      ? await loop.o.foldCheck!({ config: loop.initial.config, params: engine.params() }, current.x, current.y.length)
      : undefined;
  // The fold checks' field evaluations count as checks, as the accuracy checks' do.
  const probe = opened && {
    release: opened.release,
    foldsOf: async (s: FixedSolverSpec) => {
      const f = await opened.foldsOf(s);
      nfe.checks += f.nfe;
      return f;
    },
  };
  let r: Awaited<ReturnType<typeof adaptiveAdaptStep | typeof fixedAdaptStep>>;
  try {
    r =
      solver.kind === 'fixed'
        ? await fixedAdaptStep(it, solver.spec, accuracy, stepNfe, accuracyUnder, adapt, loop.span, probe?.foldsOf)
        : await adaptiveAdaptStep(it, solver.spec, accuracy, stepNfe, loop.recentNfe, accuracyUnder, adapt);
  } finally {
    await probe?.release();
  }
  if (r.spec !== solver.spec) loop.solver = resolved.get(r.spec) ?? resolveSolver(r.spec);
  loop.adaptation.push(r.decision);
  loop.o.onAdapt?.(r.decision);
}

/** A log entry for iteration `it`; parameters still finite after it become the checkpoint a divergence keeps. */
function logIteration(loop: TrainLoop, it: number, loss: number, accuracy: number, stepNfe: number): void {
  const { t0, t1 } = loop.initial.config;
  const entry: TrainLogEntry = {
    iteration: it,
    loss,
    accuracy,
    nfeForward: stepNfe,
    nfeBackward: stepNfe,
    solver: loop.solver.label,
    param: solverParam(loop.solver.spec, t0, t1),
    wallMs: performance.now() - loop.start,
  };
  loop.log.push(entry);
  loop.o.onLog?.(entry);
  // The loss is that of the parameters before this update: keep the updated
  // ones only if they are finite themselves.
  const now = loop.engine.params();
  if (Object.values(now).every((p) => p.data.every(Number.isFinite))) {
    loop.lastGood = now;
    loop.lastGoodIteration = it;
  }
}

function trainResult(
  loop: TrainLoop,
  engineName: EngineName,
  done: number,
  diverged: TrainResult['diverged'],
  interrupted: TrainResult['interrupted'],
): TrainResult {
  const params = diverged ? loop.lastGood : loop.engine.params();
  return {
    model: { config: loop.initial.config, params },
    solver: loop.solver,
    log: loop.log,
    adaptation: loop.adaptation,
    iterations: done,
    checkpointIteration: diverged ? loop.lastGoodIteration : done,
    nfe: loop.nfe,
    wallMs: performance.now() - loop.start,
    diverged,
    ...(interrupted ? { interrupted } : {}),
    engine: engineName,
    graphBuilds: [...loop.engine.builds],
  };
}

export { DivergenceError };
