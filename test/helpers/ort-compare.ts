/**
 * Shared helpers of the ort engine tests: small seeded models of every field
 * type, and the loss and gradients of one batch from the compiled training
 * graph (onnxruntime) and from the tfjs engine's tape.
 */
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { paramShapes } from '../../src/models/params.js';
import { parseFieldSpec } from '../../src/models/spec.js';
import { buildTfModel } from '../../src/models/tf-model.js';
import { augmentedShape, type Model, type ModelConfig, type Params } from '../../src/models/types.js';
import { trainGraph } from '../../src/onnx/lower/train-graph.js';
import type { SolverSpec } from '../../src/solvers/spec.js';
import { forward } from '../../src/models/forward.js';
import { createSession } from '../../src/onnx/runtime/session.js';
import type { Device } from '../../src/onnx/runtime/device.js';
import { Rng } from '../../src/random.js';

export function normalStream(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.normal();
}

export function configFor(field: string, inputShape: number[], augment: number, classes: number): ModelConfig {
  return {
    inputShape,
    augment,
    stateShape: augmentedShape(inputShape, augment),
    classes,
    field: parseFieldSpec(field),
    t0: 0,
    t1: 1,
  };
}

/** Random weights and non-zero biases (so bias gradients are exercised through every path). */
export function randomModel(config: ModelConfig, seed: number): Model {
  const normal = normalStream(seed);
  const params: Params = {};
  for (const p of paramShapes(config)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const std = p.fanIn > 0 ? Math.sqrt(1.5 / p.fanIn) : 0.2;
    params[p.name] = { shape: [...p.shape], data: Float32Array.from({ length: n }, () => std * normal()) };
  }
  return { config, params };
}

export function randomBatch(config: ModelConfig, batch: number, seed: number): { x: Float32Array; y: Int32Array } {
  const normal = normalStream(seed);
  const width = config.inputShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: batch * width }, () => normal());
  const y = Int32Array.from({ length: batch }, (_, i) => (i * 7 + Math.floor(Math.abs(normal()) * 3)) % config.classes);
  return { x, y };
}

export interface LossAndGrads {
  loss: number;
  accuracy: number;
  grads: Record<string, Float32Array | Float64Array>;
  /** The forward solve's statistics (tfjs reference). */
  stats?: { nfe: number; accepted: number; rejected: number };
}

/** Loss, accuracy and gradients from the tfjs tape (the tfjs engine's computation). */
export function tfjsLossAndGrads(model: Model, spec: SolverSpec, x: Float32Array, y: Int32Array): LossAndGrads {
  const m = buildTfModel(model);
  try {
    return tf.tidy(() => {
      const xb = tf.tensor2d(x, [y.length, x.length / y.length]);
      const yb = tf.tensor1d(y, 'int32');
      let acc = 0;
      let stats: LossAndGrads['stats'];
      const names = Object.keys(m.vars);
      const { value, grads } = tf.variableGrads(() => {
        const out = forward(m, xb, spec);
        stats = out.stats;
        acc = tf.mean(tf.cast(tf.equal(tf.argMax(out.logits, 1), yb), 'float32')).dataSync()[0]!;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(yb, model.config.classes), out.logits) as tf.Scalar;
      }, Object.values(m.vars));
      const out: Record<string, Float32Array> = {};
      for (const n of names) out[n] = grads[m.vars[n]!.name]!.dataSync() as Float32Array;
      return { loss: value.dataSync()[0]!, accuracy: acc, grads: out, stats };
    });
  } finally {
    m.dispose();
  }
}

/** Loss, accuracy and gradients from one run of the compiled training graph. */
export async function ortLossAndGrads(
  model: Model,
  spec: SolverSpec,
  x: Float32Array,
  y: Int32Array,
  float: 'float32' | 'float64' = 'float32',
  nchwcBlock = 0,
  device: Device = 'cpu',
): Promise<LossAndGrads & { nodes: number; nfe: number; blocked: boolean }> {
  const batch = y.length;
  const g = trainGraph(model.config, spec, { batch, float, nchwcBlock });
  const blocked = g.builder.nodes.some((n) => n.op.startsWith('com.microsoft.nchwc:'));
  const session = await createSession(g.builder.toBytes(), { device });
  try {
    const r = await session.run(ortFeeds(model, g.params, x, y, float));
    const grads: Record<string, Float32Array | Float64Array> = {};
    for (const p of g.params) grads[p] = r[g.outputs.grads[p]!]!.data as Float32Array | Float64Array;
    return {
      loss: Number(r.loss!.data[0]),
      accuracy: Number(r.accuracy!.data[0]),
      grads,
      nodes: g.builder.nodes.length,
      nfe: g.nfe,
      blocked,
    };
  } finally {
    await session.release();
  }
}

export function ortFeeds(
  model: Model,
  params: readonly string[],
  x: Float32Array,
  y: Int32Array,
  float: 'float32' | 'float64',
  override?: Record<string, Float64Array>,
): Record<string, ort.Tensor> {
  const batch = y.length;
  const conv = (d: ArrayLike<number>) => (float === 'float32' ? Float32Array.from(d) : Float64Array.from(d));
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor(float, conv(x), [batch, ...model.config.inputShape]),
    labels: new ort.Tensor(
      'int64',
      BigInt64Array.from(y, (v) => BigInt(v)),
      [batch],
    ),
  };
  for (const p of params)
    feeds[p] = new ort.Tensor(float, override?.[p] ?? conv(model.params[p]!.data), [...model.params[p]!.shape]);
  return feeds;
}

/** max |a − b| / max |b| (0 when both vanish). */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}

/**
 * Compare every gradient of `got` with `ref`: an element fails when its error exceeds
 * `tolerance(scale)`, scale being the parameter's largest |gradient|. Returns the worst
 * error relative to that scale; failures are reported through `fail`.
 */
export function compareGrads(
  got: Record<string, ArrayLike<number>>,
  ref: Record<string, ArrayLike<number>>,
  tolerance: (scale: number) => number,
  fail: (message: string) => void,
  label: string,
): number {
  let worst = 0;
  for (const [name, g] of Object.entries(ref)) {
    const o = got[name];
    if (!o || o.length !== g.length) {
      fail(`${label}: ${name} has ${o?.length ?? 'no'} values, tfjs ${g.length}`);
      continue;
    }
    let scale = 0;
    for (let i = 0; i < g.length; i++) scale = Math.max(scale, Math.abs(g[i]!));
    for (let i = 0; i < g.length; i++) {
      const err = Math.abs(o[i]! - g[i]!);
      worst = Math.max(worst, err / Math.max(scale, 1e-3));
      if (err > tolerance(scale)) fail(`${label}: ${name}[${i}] ort ${o[i]} vs tfjs ${g[i]}`);
    }
  }
  return worst;
}
