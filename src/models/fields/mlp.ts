/**
 * MLP field: D (+1 with time) → width → … → D, `depth` hidden layers with an
 * activation between layers; weights [in, out] (y = x·W + b).
 *   spec: mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time]
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError } from '../../errors.js';
import { activation, ACTIVATIONS, denseParams, type Activation } from './graph-ops.js';
import { attr } from '../../graph/ir/attrs.js';
import type { FieldKind, ParamShape } from './kind.js';

export interface MlpFieldSpec {
  readonly kind: 'mlp';
  readonly width: number;
  /** Number of hidden layers (default 2: D → w → w → D). */
  readonly depth: number;
  readonly activation: Activation;
  /** Feed t as an extra input column. */
  readonly time: boolean;
}

function tfActivation(kind: Activation, x: tf.Tensor): tf.Tensor {
  if (kind === 'tanh') return tf.tanh(x);
  if (kind === 'relu') return tf.relu(x);
  return tf.softplus(x);
}

export const mlp: FieldKind<MlpFieldSpec> = {
  kind: 'mlp',
  usage: 'mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time]',
  options: [
    { name: 'width', type: 'int', min: 1, max: 16384, default: 32 },
    { name: 'depth', type: 'int', min: 1, max: 64, default: 2 },
    { name: 'act', type: 'enum', values: ACTIVATIONS, default: 'tanh' },
    { name: 'time', type: 'flag' },
  ],
  fromOptions: (o) => ({
    kind: 'mlp',
    width: o.width as number,
    depth: o.depth as number,
    activation: o.act as Activation,
    time: o.time as boolean,
  }),
  format: (f) => `mlp:width=${f.width},depth=${f.depth},act=${f.activation}${f.time ? ',time' : ''}`,
  stateRank: 1,
  hiddenValues: (f, stateShape) => Math.max(f.width, stateShape[0]! + (f.time ? 1 : 0)),
  // Each hidden layer: its product and its activation; the output layer: its product.
  activationValues: (f, stateShape) => 2 * f.depth * f.width + stateShape[0]!,
  params(f, stateShape) {
    const S = stateShape[0]!;
    const out: ParamShape[] = [];
    let width = S + (f.time ? 1 : 0);
    for (let l = 0; l < f.depth; l++) {
      out.push(...denseParams(`field.${l}`, width, f.width));
      width = f.width;
    }
    out.push(...denseParams(`field.${f.depth}`, width, S));
    return out;
  },
  usesTime: (f) => f.time,
  tfField(f, vars) {
    const layers = Array.from(
      { length: f.depth + 1 },
      (_, l) => [vars[`field.${l}.weight`]!, vars[`field.${l}.bias`]!] as const,
    );
    return (t, z) => {
      let h: tf.Tensor = f.time ? tf.concat([z, tf.fill([z.shape[0]!, 1], t)], 1) : z;
      for (let l = 0; l < layers.length; l++) {
        const [w, b] = layers[l]!;
        h = tf.add(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D), b);
        if (l < layers.length - 1) h = tfActivation(f.activation, h);
      }
      return h;
    };
  },
  appendGraph(f, { g, param, z, t, out }) {
    let h = z;
    if (f.time) {
      if (t === undefined) throw new ShapeError('an mlp field with time needs a t input');
      // [z, t] with t broadcast to a [B, 1] column (the layout of field.0.weight: t is its last row).
      const batch = g.op('Shape', [z], { start: attr.int(0), end: attr.int(1) });
      const shape = g.op('Concat', [batch, g.int64s([1])], { axis: attr.int(0) });
      const tcol = g.op('Expand', [g.op('Reshape', [t, g.int64s([1, 1])]), shape]);
      h = g.op('Concat', [z, tcol], { axis: attr.int(1) });
    }
    for (let l = 0; l <= f.depth; l++) {
      const last = l === f.depth;
      h = g.op('Gemm', [h, param(`field.${l}.weight`), param(`field.${l}.bias`)], {}, last ? out : undefined);
      if (!last) h = activation(g, f.activation, h);
    }
    return h;
  },
};
