/**
 * A model is plain data: its configuration plus named float32 parameters.
 * The tfjs forward pass (training), the ONNX graphs (export, effective model,
 * compiled training) and the model directory on disk all derive from this one
 * description, so they cannot drift apart.
 *
 * Parameter layout (shared by every engine; PyTorch/ONNX conventions; each
 * field kind's module in fields/ defines its own):
 *   MLP field, depth k hidden layers of width w over state size D (+1 input when time):
 *     field.0.weight [in, w], field.0.bias [w], field.1.weight [w, w], …,
 *     field.k.weight [w, D], field.k.bias [D]          (y = x·W + b, activation between)
 *   conv1d field (paper's sphere field; state [D] seen as 1 channel × D):
 *     field.0.weight [32, 1, 1], field.0.bias [32]      Conv1d 1→32, k=1, ReLU
 *     field.1.weight [32, 32, 3], field.1.bias [32]     Conv1d 32→32, k=3, pad 1, ReLU
 *     field.2.weight [1, 32, 1], field.2.bias [1]       Conv1d 32→1, k=1
 *   conv2d field (paper's image field; state [C, H, W], NCHW):
 *     field.0.weight [128, C, 1, 1], field.1.weight [128, 128, 3, 3] (pad 1), field.2.weight [C, 128, 1, 1], biases
 * [out]
 *     ReLU between layers.
 *   head: head.weight [S, classes], head.bias [classes], S = product of the state shape,
 *     applied to z(t1) flattened in row-major (C, H, W) order.
 *   encoder: zero-augmentation only (no parameters): appends `augment` zeros to a vector
 *     state, or `augment` zero channels to an image state.
 */
export type { Activation, Conv1dFieldSpec, Conv2dFieldSpec, FieldSpec, MlpFieldSpec } from './fields/index.js';
import type { FieldSpec } from './fields/index.js';

export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export type Params = Record<string, NamedTensor>;

export interface ModelConfig {
  /** Per-sample input shape, e.g. [2] for 2-D spheres or [1, 28, 28] for MNIST (CHW). */
  readonly inputShape: readonly number[];
  /** Zero-augmentation: extra state dims (vectors) or extra channels (images). 0 = none. */
  readonly augment: number;
  /** Per-sample state shape after the encoder. */
  readonly stateShape: readonly number[];
  readonly classes: number;
  readonly field: FieldSpec;
  readonly t0: number;
  readonly t1: number;
}

export interface Model {
  readonly config: ModelConfig;
  readonly params: Params;
}

export function stateSize(config: Pick<ModelConfig, 'stateShape'>): number {
  return config.stateShape.reduce((a, b) => a * b, 1);
}

/** State shape after zero-augmentation of an input of the given shape. */
export function augmentedShape(inputShape: readonly number[], augment: number): number[] {
  if (inputShape.length === 1) return [inputShape[0]! + augment];
  const [c, ...rest] = inputShape;
  return [c! + augment, ...rest];
}
