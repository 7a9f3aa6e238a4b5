/**
 * The paper's image field over a state [C, H, W] (NCHW in ONNX, NHWC inside
 * tfjs): Conv2d C→c (1×1), ReLU, c→c (3×3, pad 1), ReLU, c→C (1×1).
 *   spec: conv2d[:channels=128]
 */
import * as tf from '@tensorflow/tfjs';
import { convParams, convStack } from './graph-ops.js';
import type { FieldKind } from './kind.js';

export interface Conv2dFieldSpec {
  readonly kind: 'conv2d';
  /** Hidden channels (paper: 128). */
  readonly channels: number;
}

export const conv2d: FieldKind<Conv2dFieldSpec> = {
  kind: 'conv2d',
  usage: 'conv2d[:channels=128]',
  options: [{ name: 'channels', type: 'int', min: 1, max: 4096, default: 128 }],
  fromOptions: (o) => ({ kind: 'conv2d', channels: o.channels as number }),
  format: (f) => `conv2d:channels=${f.channels}`,
  stateRank: 3,
  hiddenValues: (f, stateShape) => f.channels * stateShape[1]! * stateShape[2]!,
  // Two hidden convolutions, each with its ReLU, then the output convolution.
  activationValues: (f, stateShape) => (4 * f.channels + stateShape[0]!) * stateShape[1]! * stateShape[2]!,
  params(f, stateShape) {
    const C = stateShape[0]!;
    return [
      ...convParams('field.0', f.channels, C, [1, 1]),
      ...convParams('field.1', f.channels, f.channels, [3, 3]),
      ...convParams('field.2', C, f.channels, [1, 1]),
    ];
  },
  usesTime: () => false,
  tfField(_f, vars) {
    // Stored [out, in, kh, kw]; tfjs conv2d wants [kh, kw, in, out].
    const filters = [0, 1, 2].map((l) => tf.transpose(vars[`field.${l}.weight`]!, [2, 3, 1, 0]) as tf.Tensor4D);
    const biases = [0, 1, 2].map((l) => vars[`field.${l}.bias`]!);
    return (_t, z) => {
      let h: tf.Tensor = tf.relu(tf.add(tf.conv2d(z as tf.Tensor4D, filters[0]!, 1, 'same'), biases[0]!));
      h = tf.relu(tf.add(tf.conv2d(h as tf.Tensor4D, filters[1]!, 1, 'same'), biases[1]!));
      return tf.add(tf.conv2d(h as tf.Tensor4D, filters[2]!, 1, 'same'), biases[2]!);
    };
  },
  appendGraph(f, ctx) {
    const spatial = ctx.stateShape.slice(1);
    const shapes = new Map(conv2d.params(f, ctx.stateShape).map((p) => [p.name, p.shape] as const));
    return convStack(ctx, shapes, ctx.z, 3, spatial, ctx.out);
  },
};
