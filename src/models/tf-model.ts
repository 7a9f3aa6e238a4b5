/**
 * The tfjs forward pass of a Model: encoder → ODE block → head, with the
 * parameters held as tf.Variables so training can differentiate through every
 * solver stage. Image states are held NHWC inside tfjs (its conv layout) and
 * flattened in CHW order for the head, so the same head weights work in ONNX.
 */
import * as tf from '@tensorflow/tfjs';
import { fieldKind } from './fields/index.js';
import { paramShapes } from './params.js';
import { stateSize, type Model, type ModelConfig, type Params } from './types.js';

export interface TfModel {
  readonly config: ModelConfig;
  readonly vars: Readonly<Record<string, tf.Variable>>;
  /** x [B, prod(inputShape)] → z(t0) in the engine's internal layout. */
  encode(x: tf.Tensor): tf.Tensor;
  /**
   * A vector field closure. Weight re-layouts (conv filters) happen once per
   * call of makeField, not once per stage, so call it once per solve.
   */
  makeField(): (t: number, z: tf.Tensor) => tf.Tensor;
  /** z(t1) in internal layout → logits [B, classes]. */
  head(z: tf.Tensor): tf.Tensor;
  /** Internal state → [B, S] in canonical (CHW) order. */
  flatState(z: tf.Tensor): tf.Tensor2D;
  /** [B, S] canonical → internal layout. */
  unflatState(z: tf.Tensor): tf.Tensor;
  dispose(): void;
}

let nextId = 0;

export function buildTfModel(model: Model, trainable = true): TfModel {
  const { config } = model;
  const vars: Record<string, tf.Variable> = {};
  for (const p of paramShapes(config)) {
    const src = model.params[p.name]!;
    const init = tf.tensor(src.data, [...src.shape], 'float32');
    // Variable names must be unique in the engine; several models may live side by side.
    vars[p.name] = tf.variable(init, trainable, `${p.name}_${nextId++}`);
    init.dispose();
  }
  const isImage = config.stateShape.length === 3;
  const [C, H, W] = isImage ? (config.stateShape as [number, number, number]) : [0, 0, 0];
  const S = stateSize(config);
  const kind = fieldKind(config.field);

  const flatState = (z: tf.Tensor): tf.Tensor2D => {
    if (!isImage) return z as tf.Tensor2D;
    return tf.reshape(tf.transpose(z, [0, 3, 1, 2]), [z.shape[0]!, S]);
  };
  const unflatState = (z: tf.Tensor): tf.Tensor => {
    if (!isImage) return z;
    return tf.transpose(tf.reshape(z, [z.shape[0]!, C, H, W]), [0, 2, 3, 1]);
  };

  return {
    config,
    vars,
    flatState,
    unflatState,
    encode(x) {
      const B = x.shape[0]!;
      if (!isImage) return config.augment > 0 ? tf.concat([x, tf.zeros([B, config.augment])], 1) : x;
      const [c0, h, w] = config.inputShape as [number, number, number];
      const img = tf.transpose(tf.reshape(x, [B, c0, h, w]), [0, 2, 3, 1]);
      return config.augment > 0 ? tf.concat([img, tf.zeros([B, h, w, config.augment])], 3) : img;
    },
    makeField() {
      return kind.tfField(config.field, vars, config.stateShape);
    },
    head(z) {
      return tf.add(tf.matMul(flatState(z), vars['head.weight'] as tf.Tensor2D), vars['head.bias']!);
    },
    dispose() {
      for (const v of Object.values(vars)) v.dispose();
    },
  };
}

/** Read the current variable values back into plain parameters. */
export function readParams(m: TfModel): Params {
  const params: Params = {};
  for (const [name, v] of Object.entries(m.vars))
    params[name] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
  return params;
}
