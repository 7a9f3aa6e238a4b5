/**
 * The tfjs training engine: parameters as tf.Variables, Adam via
 * tf.train.adam, gradients by tfjs's tape through every stage of the solver
 * (discretise-then-optimise). Works with every solver, fixed and adaptive.
 */
import * as tf from '@tensorflow/tfjs';
import { forward, hairerInitialStep } from '../models/forward.js';
import { buildTfModel, readParams } from '../models/tf-model.js';
import type { Model } from '../models/types.js';
import type { BatchEval, EngineOptions, EngineStep, TrainEngine } from './engine.js';

export function accuracyOf(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar;
}

export function createTfjsEngine(initial: Model, o: EngineOptions): TrainEngine {
  const m = buildTfModel(initial);
  const varList = Object.values(m.vars);
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  const optimizer = tf.train.adam(o.lr, beta1, beta2);
  const classes = initial.config.classes;
  const tensors = (x: Float32Array, y: Int32Array) => {
    const n = y.length;
    return [tf.tensor2d(x, [n, x.length / n]), tf.tensor1d(y, 'int32')] as const;
  };
  return {
    name: 'tfjs',
    builds: [],
    async step(x, y, solver): Promise<EngineStep> {
      const [xb, yb] = tensors(x, y);
      try {
        let nfe = 0;
        let accT: tf.Scalar | undefined;
        const lossT = optimizer.minimize(
          () => {
            const out = forward(m, xb, solver);
            nfe = out.stats.nfe;
            accT = tf.keep(accuracyOf(out.logits, yb));
            return tf.losses.softmaxCrossEntropy(tf.oneHot(yb, classes), out.logits) as tf.Scalar;
          },
          true,
          varList,
        )!;
        const loss = lossT.dataSync()[0]!;
        const accuracy = accT!.dataSync()[0]!;
        lossT.dispose();
        accT!.dispose();
        return { loss, accuracy, nfe };
      } finally {
        xb.dispose();
        yb.dispose();
      }
    },
    // Not on ModelSource (src/onnx/source.ts), on purpose: this is adaptation's check of the current batch under the
    // current tfjs parameters, and a ModelSource evaluates onnxruntime's float32 kernels, not tfjs's. Their roundings
    // differ, so a sample on the decision boundary or an adaptive solver's accept/reject decision (the NFE counted
    // as checks) could differ too, and with them which solver a tfjs-engine run adapts to: results would change.
    // It would also rebuild the graphs and sessions at every check (the parameters change every step), where the
    // ort engine keeps its encoder/head/field sessions and feeds the parameters as inputs. Evaluation of a trained
    // model (`evaluate`, the final test accuracy) already goes through ModelSource on both engines.
    async accuracy(x, y, solver): Promise<BatchEval> {
      const [xb, yb] = tensors(x, y);
      try {
        return tf.tidy(() => {
          const out = forward(m, xb, solver, true);
          return { accuracy: accuracyOf(out.logits, yb).dataSync()[0]!, nfe: out.stats.nfe };
        });
      } finally {
        xb.dispose();
        yb.dispose();
      }
    },
    async initialStep(x, order) {
      const n = x.length / initial.config.inputShape.reduce((a, b) => a * b, 1);
      const xb = tf.tensor2d(x, [n, x.length / n]);
      try {
        return hairerInitialStep(m, xb, order);
      } finally {
        xb.dispose();
      }
    },
    params: () => readParams(m),
    async dispose() {
      optimizer.dispose();
      m.dispose();
    },
  };
}
