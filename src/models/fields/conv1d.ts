/**
 * The paper's sphere field: the state [D] seen as 1 channel × D;
 * Conv1d 1→c (k=1), ReLU, c→c (k=3, pad 1), ReLU, c→1 (k=1). Weights [out, in, k].
 *   spec: conv1d[:channels=32]
 */
import * as tf from '@tensorflow/tfjs';
import { convParams, convStack } from './graph-ops.js';
import type { FieldKind } from './kind.js';

export interface Conv1dFieldSpec {
  readonly kind: 'conv1d';
  /** Hidden channels (paper: 32). */
  readonly channels: number;
}

export const conv1d: FieldKind<Conv1dFieldSpec> = {
  kind: 'conv1d',
  usage: 'conv1d[:channels=32]',
  options: [{ name: 'channels', type: 'int', min: 1, max: 4096, default: 32 }],
  fromOptions: (o) => ({ kind: 'conv1d', channels: o.channels as number }),
  format: (f) => `conv1d:channels=${f.channels}`,
  stateRank: 1,
  hiddenValues: (f, stateShape) => f.channels * stateShape[0]!,
  // Two hidden convolutions, each with its ReLU, then the output convolution.
  activationValues: (f, stateShape) => (4 * f.channels + 1) * stateShape[0]!,
  params: (f) => [
    ...convParams('field.0', f.channels, 1, [1]),
    ...convParams('field.1', f.channels, f.channels, [3]),
    ...convParams('field.2', 1, f.channels, [1]),
  ],
  usesTime: () => false,
  tfField(_f, vars, stateShape) {
    const S = stateShape[0]!;
    // Stored [out, in, k] (PyTorch/ONNX); tfjs conv1d wants [k, in, out].
    const filters = [0, 1, 2].map((l) => tf.transpose(vars[`field.${l}.weight`]!, [2, 1, 0]) as tf.Tensor3D);
    const biases = [0, 1, 2].map((l) => vars[`field.${l}.bias`]!);
    return (_t, z) => {
      const B = z.shape[0]!;
      let h: tf.Tensor = tf.reshape(z, [B, S, 1]);
      h = tf.relu(tf.add(tf.conv1d(h as tf.Tensor3D, filters[0]!, 1, 'same'), biases[0]!));
      h = tf.relu(tf.add(tf.conv1d(h as tf.Tensor3D, filters[1]!, 1, 'same'), biases[1]!));
      h = tf.add(tf.conv1d(h as tf.Tensor3D, filters[2]!, 1, 'same'), biases[2]!);
      return tf.reshape(h, [B, S]);
    };
  },
  appendGraph(f, ctx) {
    const { g, z, out, stateShape } = ctx;
    const S = stateShape[0]!;
    const shapes = new Map(conv1d.params(f, stateShape).map((p) => [p.name, p.shape] as const));
    const h = convStack(ctx, shapes, g.op('Reshape', [z, g.int64s([-1, 1, S])]), 3, [S]);
    return g.op('Reshape', [h, g.int64s([-1, S])], {}, out);
  },
};
