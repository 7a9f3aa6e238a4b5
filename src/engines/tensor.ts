/**
 * The tfjs engine: differentiable tensors. Every combine is ordinary tfjs ops,
 * so gradients flow through every stage of every step (discretise-then-optimise).
 */
import * as tf from '@tensorflow/tfjs';
import type { VectorOps } from '../solvers/vector.js';

export const tensorOps: VectorOps<tf.Tensor> = {
  combine(base, coeffs, terms) {
    let acc: tf.Tensor | undefined = base;
    for (let j = 0; j < coeffs.length; j++) {
      const c = coeffs[j]!;
      if (c === 0) continue;
      const term = c === 1 ? terms[j]! : tf.mul(terms[j]!, tf.scalar(c));
      acc = acc === undefined ? term : tf.add(acc, term);
    }
    return acc ?? tf.zerosLike(terms[0]!);
  },
  scaledRms(v, rtol, atol, refs) {
    const rms = tf.tidy(() => {
      let ref: tf.Tensor = tf.zerosLike(v);
      for (const r of refs) ref = tf.maximum(ref, tf.abs(r));
      const q = tf.div(v, tf.add(tf.scalar(atol), tf.mul(tf.scalar(rtol), ref)));
      return tf.sqrt(tf.mean(tf.square(q)));
    });
    const value = rms.dataSync()[0]!;
    rms.dispose();
    return value;
  },
  allFinite(v) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(v))));
    const r = bad.dataSync()[0] === 0;
    bad.dispose();
    return r;
  },
};
