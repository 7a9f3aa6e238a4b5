/**
 * Cross-solver evaluation of a tfjs model: test accuracy and NFE of one solve
 * under each test solver. The ONNX path (src/onnx/evaluate.ts) produces the
 * same rows for bundles.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError } from '../errors.js';
import { buildTfModel } from '../models/tf-model.js';
import type { Model } from '../models/types.js';
import { solverLabel, type SolverLabel, type SolverSpec } from '../solvers/spec.js';
import { forward } from '../models/forward.js';

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
