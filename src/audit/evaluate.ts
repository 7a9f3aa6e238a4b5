/**
 * Cross-solver evaluation of a tfjs model: test accuracy and NFE of one solve
 * under each test solver. The ONNX path (src/onnx/evaluate.ts) produces the
 * same rows for bundles.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError, SpecError } from '../errors.js';
import { buildTfModel } from '../models/tf-model.js';
import type { Model } from '../models/types.js';
import { fixedStepCount, parseSolverList, parseSolverSpec, solverLabel, type SolverLabel, type SolverSpec } from '../solvers/spec.js';
import { forward } from '../train/train.js';

export interface EvalData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

export interface EvalRow extends SolverLabel {
  readonly accuracy: number;
  /** Field evaluations of one solve over a batch (mean over batches for adaptive solvers). */
  readonly nfe: number;
}

/** Round away binary noise (1e-3 × 0.1 = 1.0000000000000002e-4) so spec strings stay readable. */
function tidy(x: number): number {
  return Number(x.toPrecision(12));
}

/** The paper's test set: #steps × {0.5, 0.75, 1, 1.5, 2} for euler/midpoint/rk4; dopri5 at tol × {0.1, 1, 10}. */
export function paperTestSolvers(train: SolverSpec, t0 = 0, t1 = 1): SolverSpec[] {
  if (train.kind === 'fixed') {
    const n = fixedStepCount(train, t0, t1);
    const counts = [...new Set([0.5, 0.75, 1, 1.5, 2].map((f) => Math.max(1, Math.round(n * f))))];
    const out: SolverSpec[] = [];
    for (const method of ['euler', 'midpoint', 'rk4']) for (const steps of counts) out.push({ kind: 'fixed', method, steps });
    return out;
  }
  const methods = train.method === 'dopri5' ? ['dopri5'] : [train.method, 'dopri5'];
  return methods.flatMap((method) => [0.1, 1, 10].map((f) => ({ kind: 'adaptive' as const, method, rtol: tidy(train.rtol * f), atol: tidy(train.atol * f), ...(train.maxSteps !== undefined ? { maxSteps: train.maxSteps } : {}) })));
}

export function checkDataWidth(model: Model, data: EvalData, where: string): void {
  const width = model.config.inputShape.reduce((a, b) => a * b, 1);
  if (data.n === 0) throw new ShapeError(`${where}: no data points`);
  if (data.x.length !== data.n * width) {
    throw new ShapeError(`${where}: data rows have ${data.x.length / data.n} values but the model expects ${width} (input shape [${model.config.inputShape.join(', ')}])`);
  }
}

/** Uses the tfjs backend in place: call `initBackend()` first (trainRun and the CLI do). */
export function evaluateModel(model: Model, data: EvalData, specs: readonly SolverSpec[], batchSize = 1024): EvalRow[] {
  checkDataWidth(model, data, 'evaluate');
  const m = buildTfModel(model, false);
  const width = data.x.length / data.n;
  const { t0, t1 } = model.config;
  try {
    return specs.map((spec) => {
      let correct = 0;
      let nfeSum = 0;
      let batches = 0;
      for (let s = 0; s < data.n; s += batchSize) {
        const e = Math.min(data.n, s + batchSize);
        const pred = tf.tidy(() => {
          const x = tf.tensor2d(data.x.subarray(s * width, e * width), [e - s, width]);
          const out = forward(m, x, spec, true);
          nfeSum += out.stats.nfe;
          return tf.argMax(out.logits, 1).dataSync();
        });
        for (let i = 0; i < pred.length; i++) if (pred[i] === data.y[s + i]) correct++;
        batches++;
      }
      return { ...solverLabel(spec, t0, t1), accuracy: correct / data.n, nfe: nfeSum / batches };
    });
  } finally {
    m.dispose();
  }
}

/** A test-solver list, or "paper" (or nothing) for the paper's set around the training solver. */
export function resolveTestSolvers(list: string | undefined, trainSolver: string | undefined, t0 = 0, t1 = 1): SolverSpec[] {
  if (!list || list === 'paper') {
    if (!trainSolver) throw new SpecError('--solvers is required: the model does not record its training solver');
    return paperTestSolvers(parseSolverSpec(trainSolver), t0, t1);
  }
  return parseSolverList(list);
}
