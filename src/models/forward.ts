/**
 * The classifier's forward pass on tfjs: encoder → ODE block solved with the
 * given solver → head. Training differentiates through it; evaluation and the
 * audits call it as is.
 */
import type * as tf from '@tensorflow/tfjs';
import { tensorOps } from '../engines/tensor.js';
import { solve } from '../solvers/integrate.js';
import type { Solver } from '../solvers/solver.js';
import type { SolverSpec } from '../solvers/spec.js';
import type { TfModel } from './tf-model.js';

/** Logits and solve statistics (call inside tf.tidy or a gradient tape). */
export function forward(m: TfModel, x: tf.Tensor, spec: SolverSpec | Solver, checkFinite = false) {
  const z0 = m.encode(x);
  const r = solve(tensorOps, m.makeField(), z0, spec, { t0: m.config.t0, t1: m.config.t1, checkFinite });
  return { logits: m.head(r.z1), stats: r.stats };
}
