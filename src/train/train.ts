/**
 * Training on the tfjs engine: Adam on cross-entropy, backpropagating through
 * every stage of the solver (discretise-then-optimise), with optional step-size
 * / tolerance adaptation, NaN/Inf detection with a kept checkpoint, and
 * periodic logging.
 */
import * as tf from '@tensorflow/tfjs';
import { DivergenceError, SpecError } from '../errors.js';
import type { Rng } from '../data/random.js';
import type { Split } from '../data/types.js';
import { batchIterator, gather } from '../data/batch.js';
import { tensorOps } from '../engines/tensor.js';
import { solve } from '../solvers/integrate.js';
import { formatSolverSpec, solverParam, type SolverSpec } from '../solvers/spec.js';
import { getTableau } from '../solvers/tableau.js';
import { buildTfModel, readParams, type TfModel } from '../models/tf-model.js';
import type { Model, Params } from '../models/types.js';
import { adaptiveAdaptStep, DEFAULT_ADAPT, fixedAdaptStep, validateAdaptOptions, type AdaptDecision, type AdaptOptions } from './adapt.js';

export interface TrainOptions {
  readonly solver: SolverSpec;
  readonly iterations: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly betas?: readonly [number, number];
  /** Log every N iterations (default 50). */
  readonly logEvery?: number;
  /** Step-size / tolerance adaptation; off when absent. */
  readonly adapt?: Partial<AdaptOptions>;
  readonly rng: Rng;
  readonly onLog?: (entry: TrainLogEntry) => void;
  readonly onIteration?: (iteration: number) => void;
  readonly onAdapt?: (decision: AdaptDecision) => void;
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
  readonly solver: SolverSpec;
  readonly log: TrainLogEntry[];
  readonly adaptation: AdaptDecision[];
  readonly iterations: number;
  readonly nfe: { forward: number; backward: number; checks: number };
  readonly wallMs: number;
  /** Set when training stopped on a NaN/Inf loss; model holds the last good checkpoint. */
  readonly diverged?: { iteration: number; message: string };
}

/** Forward pass: logits and solve statistics (call inside tf.tidy or a gradient tape). */
export function forward(m: TfModel, x: tf.Tensor, spec: SolverSpec, checkFinite = false) {
  const z0 = m.encode(x);
  const r = solve(tensorOps, m.makeField(), z0, spec, { t0: m.config.t0, t1: m.config.t1, checkFinite });
  return { logits: m.head(r.z1), stats: r.stats };
}

function accuracyOf(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar;
}

/** Paper's initial step (Hairer et al. I, p.169) from mean per-sample norms of the first batch. */
function hairerInitialStep(m: TfModel, x: tf.Tensor, order: number): number {
  return tf.tidy(() => {
    const field = m.makeField();
    const z0 = m.encode(x);
    const B = z0.shape[0]!;
    const meanNorm = (v: tf.Tensor) => tf.mean(tf.norm(tf.reshape(v, [B, -1]), 'euclidean', 1)).dataSync()[0]!;
    const f0 = field(m.config.t0, z0);
    const d0 = meanNorm(z0);
    const d1 = meanNorm(f0);
    const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
    const f1 = field(m.config.t0 + h0, tf.add(z0, tf.mul(f0, h0)));
    const d2 = meanNorm(tf.sub(f1, f0)) / h0;
    const dmax = Math.max(d1, d2);
    const h1 = dmax < 1e-15 ? Math.max(1e-6, 1e-3 * h0) : Math.pow(0.01 / dmax, 1 / (order + 1));
    return Math.min(100 * h0, h1, m.config.t1 - m.config.t0);
  });
}

function copyParams(p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) out[k] = { shape: [...v.shape], data: v.data.slice() };
  return out;
}

export function validateTrainOptions(o: TrainOptions, trainSize: number): void {
  if (!Number.isInteger(o.iterations) || o.iterations < 1) throw new SpecError(`iterations must be a positive integer, got ${o.iterations}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new SpecError(`batch size must be a positive integer, got ${o.batchSize}`);
  if (o.batchSize > trainSize) throw new SpecError(`batch size ${o.batchSize} is larger than the training set (${trainSize} samples)`);
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new SpecError(`learning rate must be a positive number, got ${o.lr}`);
}

export async function train(initial: Model, data: Split, o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o, data.n);
  const adapt = o.adapt ? validateAdaptOptions({ ...DEFAULT_ADAPT, ...o.adapt }) : undefined;
  const logEvery = o.logEvery ?? 50;
  const m = buildTfModel(initial);
  const varList = Object.values(m.vars);
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  const optimizer = tf.train.adam(o.lr, beta1, beta2);
  const span = initial.config.t1 - initial.config.t0;
  const batches = batchIterator(data, o.batchSize, o.rng);
  const nextBatch = () => gather(data, batches.next().value!);

  let spec = o.solver;
  const log: TrainLogEntry[] = [];
  const adaptation: AdaptDecision[] = [];
  const recentNfe: number[] = [];
  const nfe = { forward: 0, backward: 0, checks: 0 };
  let lastGood = copyParams(initial.params);
  let lastGoodIteration = 0;
  let diverged: TrainResult['diverged'];
  const start = performance.now();
  let done = 0;
  try {
    for (let it = 1; it <= o.iterations; it++) {
      if (o.signal?.aborted) break;
      const batch = nextBatch();
      const xb = tf.tensor2d(batch.x, [o.batchSize, batch.x.length / o.batchSize]);
      const yb = tf.tensor1d(batch.y, 'int32');
      try {
        if (it === 1 && adapt && adapt.start === 'hairer') {
          if (spec.kind === 'fixed') spec = { kind: 'fixed', method: spec.method, h: hairerInitialStep(m, xb, getTableau(spec.method).order) };
          else spec = { ...spec, rtol: adapt.startTol, atol: adapt.startTol };
        }
        let stepNfe = 0;
        let accT: tf.Scalar | undefined;
        const lossT = optimizer.minimize(
          () => {
            const out = forward(m, xb, spec);
            stepNfe = out.stats.nfe;
            accT = tf.keep(accuracyOf(out.logits, yb));
            return tf.losses.softmaxCrossEntropy(tf.oneHot(yb, initial.config.classes), out.logits) as tf.Scalar;
          },
          true,
          varList,
        )!;
        const loss = lossT.dataSync()[0]!;
        const accuracy = accT!.dataSync()[0]!;
        lossT.dispose();
        accT!.dispose();
        if (!Number.isFinite(loss)) {
          const message = `loss became ${loss} at iteration ${it} with solver ${formatSolverSpec(spec)} (step/tol ${solverParam(spec, initial.config.t0, initial.config.t1)}); kept the checkpoint of iteration ${lastGoodIteration}`;
          diverged = { iteration: it, message };
          break;
        }
        nfe.forward += stepNfe;
        nfe.backward += stepNfe;
        recentNfe.push(stepNfe);
        if (recentNfe.length > 5) recentNfe.shift();
        done = it;
        if (adapt && it % adapt.checkEvery === 0) {
          const accuracyUnder = (s: SolverSpec) =>
            tf.tidy(() => {
              const out = forward(m, xb, s, true);
              nfe.checks += out.stats.nfe;
              return { accuracy: accuracyOf(out.logits, yb).dataSync()[0]!, nfe: out.stats.nfe };
            });
          const r =
            spec.kind === 'fixed'
              ? fixedAdaptStep(it, spec, accuracy, stepNfe, accuracyUnder, adapt, span)
              : adaptiveAdaptStep(it, spec, accuracy, stepNfe, recentNfe, accuracyUnder, adapt);
          spec = r.spec;
          adaptation.push(r.decision);
          o.onAdapt?.(r.decision);
        }
        if (it % logEvery === 0 || it === o.iterations || it === 1) {
          const entry: TrainLogEntry = { iteration: it, loss, accuracy, nfeForward: stepNfe, nfeBackward: stepNfe, solver: formatSolverSpec(spec), param: solverParam(spec, initial.config.t0, initial.config.t1), wallMs: performance.now() - start };
          log.push(entry);
          o.onLog?.(entry);
          lastGood = readParams(m);
          lastGoodIteration = it;
        }
        o.onIteration?.(it);
      } finally {
        xb.dispose();
        yb.dispose();
      }
      // Let timers (progress bars, in-progress acks) run during long trainings.
      if (it % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    const params = diverged ? lastGood : readParams(m);
    return { model: { config: initial.config, params }, solver: spec, log, adaptation, iterations: done, nfe, wallMs: performance.now() - start, diverged };
  } finally {
    optimizer.dispose();
    m.dispose();
  }
}

export { DivergenceError };
