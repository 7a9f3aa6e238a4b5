/**
 * What a training engine supplies to the one training loop (train.ts): one
 * Adam step on a batch, the accuracy of the current parameters under any
 * solver (adaptation checks), Hairer's initial step, and the parameters.
 * Everything else — batches, logging, NaN checkpoints, adaptation decisions,
 * NFE accounting, progress hooks — is written once in the loop.
 *
 *   tfjs: tf.Variables, gradients by tfjs's tape through every solver stage.
 *   ort:  fixed steps: one onnxruntime session per (architecture, solver grid,
 *         batch) that returns loss, accuracy and every gradient in one run
 *         (train-graph.ts); adaptive steps: the integrate loop on compiled
 *         step graphs and their VJPs (ort-adaptive.ts). Adam on typed arrays.
 */
import { SpecError } from '../errors.js';
import type { Params } from '../models/types.js';
import type { Solver } from '../solvers/solver.js';
import type { Placement } from '../onnx/runtime/placement.js';
import type { SolverSpec } from '../solvers/spec.js';

import { ENGINE_CHOICES, type EngineChoice, type EngineName } from '../formats/index.js';

export { ENGINE_CHOICES, type EngineChoice, type EngineName } from '../formats/index.js';

export function parseEngineChoice(value: string | undefined): EngineChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if (!(ENGINE_CHOICES as readonly string[]).includes(v))
    throw new SpecError(`engine "${v}" is not one of ${ENGINE_CHOICES.join(', ')}`);
  return v as EngineChoice;
}

export interface EngineStep {
  /** Loss and accuracy of the batch under the parameters before the update. */
  readonly loss: number;
  readonly accuracy: number;
  /** Field evaluations of the forward solve (the backward pass makes as many vector-Jacobian products). */
  readonly nfe: number;
}

export interface BatchEval {
  readonly accuracy: number;
  readonly nfe: number;
}

/** One graph built (or found in the session cache) by the ort engine. */
export interface GraphBuild {
  readonly solver: string;
  readonly batch: number;
  readonly nodes: number;
  /** Writing the graph and its gradient (ms). */
  readonly graphMs: number;
  /** Serialising it and creating the onnxruntime session (ms). */
  readonly sessionMs: number;
  /** True when the session came from the cache (no build). */
  readonly cached: boolean;
  /** Where onnxruntime placed the graph's nodes (when asked for: train --json / --verbose). */
  readonly placement?: Placement;
}

export interface TrainEngine {
  readonly name: EngineName;
  /**
   * One Adam step on the batch (x row-major [batch, ...inputShape], labels y); the training loop passes a resolved
   * Solver.
   */
  step(x: Float32Array, y: Int32Array, solver: Solver | SolverSpec): Promise<EngineStep>;
  /** Accuracy and NFE of the current parameters on a batch under a solver (no update). */
  accuracy(x: Float32Array, y: Int32Array, solver: Solver | SolverSpec): Promise<BatchEval>;
  /**
   * Hairer's initial step size from the batch (the paper's start of step-size adaptation): the one
   * initialStep (src/solvers/initial-step.ts) in the batch's mean per-sample Euclidean norm.
   */
  initialStep(x: Float32Array, order: number): Promise<number>;
  /** A copy of the current parameters. */
  params(): Params;
  /** Graph builds so far (ort engine; empty for tfjs). */
  readonly builds: readonly GraphBuild[];
  dispose(): Promise<void>;
}

export interface EngineOptions {
  readonly batchSize: number;
  readonly lr: number;
  readonly betas?: readonly [number, number];
  /** onnxruntime intra-op threads (default 1; a pool worker uses 1). */
  readonly threads?: number;
}

/** Mean over the batch of per-sample Euclidean norms (rows of `width` values). */
export function meanRowNorm(v: ArrayLike<number>, batch: number, width: number): number {
  let total = 0;
  for (let b = 0; b < batch; b++) {
    let s = 0;
    for (let i = b * width; i < (b + 1) * width; i++) s += v[i]! * v[i]!;
    total += Math.sqrt(s);
  }
  return total / batch;
}
