/**
 * The classifier's forward pass on tfjs: encoder → ODE block solved with the
 * given solver → head. Training differentiates through it; evaluation and the
 * audits call it as is. Beside it, the same model's Hairer initial step on a
 * batch (encoder → the field's first evaluations), the start of step-size adaptation.
 */
import * as tf from '@tensorflow/tfjs';
import { tensorOps } from '../engines/tensor.js';
import { initialStepFrom } from '../solvers/initial-step.js';
import { drive, solve } from '../solvers/integrate.js';
import type { Solver } from '../solvers/solver.js';
import type { SolverSpec } from '../solvers/spec.js';
import type { TfModel } from './tf-model.js';

/** Logits and solve statistics (call inside tf.tidy or a gradient tape). */
export function forward(m: TfModel, x: tf.Tensor, spec: SolverSpec | Solver, checkFinite = false) {
  const z0 = m.encode(x);
  const r = solve(tensorOps, m.makeField(), z0, spec, { t0: m.config.t0, t1: m.config.t1, checkFinite });
  return { logits: m.head(r.z1), stats: r.stats };
}

/**
 * Hairer's initial step (src/solvers/initial-step.ts) from a batch, in the mean per-sample Euclidean norm (the
 * paper's).
 */
export function hairerInitialStep(m: TfModel, x: tf.Tensor, order: number): number {
  return tf.tidy(() => {
    const z0 = m.encode(x);
    const B = z0.shape[0]!;
    const meanNorm = (v: tf.Tensor) => tf.mean(tf.norm(tf.reshape(v, [B, -1]), 'euclidean', 1)).dataSync()[0]!;
    return drive(initialStepFrom(tensorOps, meanNorm, order, m.config.t0, z0), m.makeField());
  });
}
