/**
 * The compiled training step: one ONNX graph computing, for a batch,
 *   encoder → fixed-step solve unrolled over the field → head → logits
 *   → mean softmax cross-entropy (as tf.losses.softmaxCrossEntropy) and accuracy
 *   → the gradient of the loss with respect to every parameter (autodiff.ts).
 *
 * The forward part is written by the same append* functions as the exported
 * bundle and the effective model (model-graphs.ts). Parameters are graph
 * INPUTS named exactly like the model's parameters ("field.0.weight", …), so
 * one session serves every parameter value of an architecture; their
 * gradients are outputs "grad/<name>". The graph has a fixed batch size
 * (the session cache keys on it), which lets autodiff use static shapes.
 *
 * Inputs:  x [B, ...inputShape] (float), labels [B] (int64), one per parameter.
 * Outputs: loss [], accuracy [], and (with gradients) grad/<param> per parameter.
 */
import { paramShapes } from '../../models/params.js';
import type { Model, ModelConfig, Params } from '../../models/types.js';
import type { Solver } from '../../solvers/solver.js';
import type { SolverSpec } from '../../solvers/spec.js';
import { appendGradients, type MergeMode } from '../../graph/autodiff/gradients.js';
import { attr, GraphBuilder, type FloatType } from '../../graph/ir/graph.js';
import { appendEncoder, appendHead, appendSolve, checkModel, fixedSolver, modelFieldAppender } from './model-graphs.js';

export interface TrainGraphOptions {
  /** Fixed batch size of the graph. */
  readonly batch: number;
  /** Element type of the whole graph (default float32). */
  readonly float?: FloatType;
  /** Append the gradient nodes (default true); false gives the forward loss/accuracy graph. */
  readonly gradients?: boolean;
  /** Also output the logits [B, classes] (default false). */
  readonly logits?: boolean;
  /** Merge the per-stage contributions to each parameter gradient (default true; see autodiff LazyGrad). */
  readonly merge?: boolean | MergeMode;
  /**
   * onnxruntime's NCHWc block for graphs only this machine's onnxruntime runs (src/onnx/nchwc.ts); default 0, portable.
   */
  readonly nchwcBlock?: number;
}

export interface TrainGraph {
  readonly builder: GraphBuilder;
  /** Parameter names in paramShapes order; each is a graph input of that name. */
  readonly params: readonly string[];
  readonly inputs: { readonly x: string; readonly labels: string };
  readonly outputs: {
    readonly loss: string;
    readonly accuracy: string;
    readonly logits?: string;
    readonly grads: Readonly<Record<string, string>>;
  };
  /** Field evaluations of the forward solve (= vector-Jacobian products of the backward pass). */
  readonly nfe: number;
  readonly forwardNodes: number;
  readonly backwardNodes: number;
}

export const GRAD_PREFIX = 'grad/';

/** A model of the configuration with zero parameters: graphs depend on the architecture only. */
export function architectureModel(config: ModelConfig): Model {
  const params: Params = {};
  for (const p of paramShapes(config))
    params[p.name] = { shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) };
  return { config, params };
}

/** Turn parameter initializers (added by the append* functions) into graph inputs of the same name. */
export function paramsToInputs(b: GraphBuilder, names: readonly string[]): void {
  for (const name of names) {
    const init = b.initializers.get(name);
    if (!init) throw new Error(`graph ${b.name}: parameter ${name} is not an initializer of the graph`);
    b.initializers.delete(name);
    b.inputs.push({ name, dtype: init.dtype, shape: [...init.shape] });
  }
}

/**
 * Mean softmax cross-entropy of logits [B, C] against int64 labels [B] and the
 * fraction of correct argmax predictions, written to the values `loss` and
 * `accuracy`.
 */
export function appendClassifierLoss(
  b: GraphBuilder,
  logits: string,
  labels: string,
  batch: number,
  classes: number,
  out: { loss: string; accuracy: string },
): { loss: string; accuracy: string } {
  const floatCode = b.float === 'float32' ? 1 : 11;
  const range = b.initializer(
    'class_ids',
    'int64',
    [classes],
    BigInt64Array.from({ length: classes }, (_, i) => BigInt(i)),
  );
  const column = b.op('Unsqueeze', [labels, b.int64s([1])]);
  const onehot = b.op('Cast', [b.op('Equal', [column, range])], { to: attr.int(floatCode) });
  const logp = b.op('LogSoftmax', [logits], { axis: attr.int(1) });
  const total = b.op('ReduceSum', [b.op('Mul', [onehot, logp])], { keepdims: attr.int(0) });
  const loss = b.op('Mul', [total, b.scalar(-1 / batch)], {}, out.loss);
  const predicted = b.op('ArgMax', [logits], { axis: attr.int(1), keepdims: attr.int(0) });
  const correct = b.op('Cast', [b.op('Equal', [predicted, labels])], { to: attr.int(floatCode) });
  const accuracy = b.op('ReduceMean', [correct], { keepdims: attr.int(0) }, out.accuracy);
  return { loss, accuracy };
}

/** The training step of a model architecture under a fixed-step solver as one graph (see the file comment). */
export function trainGraph(config: ModelConfig, spec: SolverSpec | Solver, options: TrainGraphOptions): TrainGraph {
  const solver = fixedSolver(spec, 'the ort training engine');
  const batch = options.batch;
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`trainGraph: batch must be a positive integer, got ${batch}`);
  const model = architectureModel(config);
  checkModel(model);
  const b = new GraphBuilder({
    name: options.gradients === false ? 'loss' : 'train_step',
    float: options.float,
    nchwcBlock: options.nchwcBlock,
  });
  const x = b.input('x', b.float, [batch, ...config.inputShape]);
  const labels = b.input('labels', 'int64', [batch]);
  const z0 = appendEncoder(b, model, x);
  const { z1, stats } = appendSolve(b, solver, z0, modelFieldAppender(model), { t0: config.t0, t1: config.t1 });
  const logits = appendHead(b, model, z1, options.logits ? 'logits' : undefined);
  const { loss, accuracy } = appendClassifierLoss(b, logits, labels, batch, config.classes, {
    loss: 'loss',
    accuracy: 'accuracy',
  });
  const params = paramShapes(config).map((p) => p.name);
  paramsToInputs(b, params);
  const forwardNodes = b.nodes.length;
  b.output(loss, b.float, []);
  b.output(accuracy, b.float, []);
  if (options.logits) b.output(logits, b.float, [batch, config.classes]);
  let grads: Record<string, string> = {};
  if (options.gradients !== false) {
    const shapes = new Map(params.map((p) => [p, model.params[p]!.shape] as const));
    grads = appendGradients(b, loss, params, { names: (p) => `${GRAD_PREFIX}${p}`, merge: options.merge }).grads;
    for (const p of params) b.output(grads[p]!, b.float, shapes.get(p)!);
  }
  return {
    builder: b,
    params,
    inputs: { x, labels },
    outputs: { loss, accuracy, ...(options.logits ? { logits } : {}), grads },
    nfe: stats.nfe,
    forwardNodes,
    backwardNodes: b.nodes.length - forwardNodes,
  };
}

/**
 * The head and loss of a batch of final states, with gradients: z1 [B, ...state],
 * labels [B], head params → loss, accuracy, grad/z1, grad/head.* (the end of
 * an adaptive training step, whose solve runs step by step).
 */
export function headLossGraph(
  config: ModelConfig,
  options: { batch: number; float?: FloatType },
): { builder: GraphBuilder; params: readonly string[] } {
  const model = architectureModel(config);
  const b = new GraphBuilder({ name: 'head_loss', float: options.float });
  const shape = [options.batch, ...config.stateShape];
  const z1 = b.input('z1', b.float, shape);
  const labels = b.input('labels', 'int64', [options.batch]);
  const logits = appendHead(b, model, z1);
  const { loss, accuracy } = appendClassifierLoss(b, logits, labels, options.batch, config.classes, {
    loss: 'loss',
    accuracy: 'accuracy',
  });
  const params = paramShapes(config)
    .map((p) => p.name)
    .filter((n) => n.startsWith('head.'));
  paramsToInputs(b, params);
  b.output(loss, b.float, []);
  b.output(accuracy, b.float, []);
  const { grads } = appendGradients(b, loss, [z1, ...params], { names: (w) => `${GRAD_PREFIX}${w}` });
  b.output(grads[z1]!, b.float, shape);
  for (const p of params) b.output(grads[p]!, b.float, model.params[p]!.shape);
  return { builder: b, params };
}
