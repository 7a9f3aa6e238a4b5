/**
 * ONNX graphs of a Model (src/models/types.ts): field, head, encoder, and the
 * effective model (encoder → fixed-step solver unrolled → head) in one graph.
 *
 * The `append*` functions add a part to any GraphBuilder given the names of
 * its input values and return the name of the part's output, so the same code
 * writes the standalone files of a bundle, the effective model, and the
 * compiled training graph. Parameters become initializers named exactly as in
 * the model ("field.0.weight", …), added once and shared by every stage.
 */
import { SpecError, ShapeError } from '../errors.js';
import { checkParams } from '../models/params.js';
import { augmentedShape, stateSize, type Activation, type Model } from '../models/types.js';
import { fixedGrid } from '../solvers/integrate.js';
import type { SolverSpec } from '../solvers/spec.js';
import { getTableau } from '../solvers/tableau.js';
import { attr, BATCH, GraphBuilder, type FloatType } from './graph.js';

export interface GraphOptions {
  /** Element type of the whole graph (default float32). */
  float?: FloatType;
}

/** Check that the model is self-consistent before writing any graph of it. */
export function checkModel(model: Model, where = 'model'): void {
  const { config } = model;
  const expect = augmentedShape(config.inputShape, config.augment);
  if (expect.length !== config.stateShape.length || expect.some((d, i) => d !== config.stateShape[i])) {
    throw new ShapeError(
      `${where}: state shape [${config.stateShape.join(', ')}] does not match input shape [${config.inputShape.join(', ')}] with augment ${config.augment}`,
    );
  }
  checkParams(config, model.params, where);
}

function param(b: GraphBuilder, model: Model, name: string): string {
  const p = model.params[name];
  if (!p) throw new ShapeError(`model: parameter ${name} is missing`);
  return b.param(name, p);
}

function activation(b: GraphBuilder, kind: Activation, x: string): string {
  switch (kind) {
    case 'tanh':
      return b.op('Tanh', [x]);
    case 'relu':
      return b.op('Relu', [x]);
    case 'softplus':
      if (b.float === 'float32') return b.op('Softplus', [x]);
      // onnxruntime's CPU provider has no float64 Softplus: relu(x) + log(1 + exp(−|x|)), the stable form.
      return b.op('Add', [b.op('Relu', [x]), b.op('Log', [b.op('Add', [b.scalar(1), b.op('Exp', [b.op('Neg', [b.op('Abs', [x])])])])])]);
  }
}

/**
 * Conv with stride 1 and 'same' padding for kernel 1 or 3 over 1 or 2 spatial
 * dims: x [B, Cin, ...spatial], weight [Cout, Cin, ...kernel], bias [Cout].
 * Float32 graphs use the Conv op; float64 graphs (onnxruntime's CPU provider
 * has no float64 Conv) contract channels with one MatMul per kernel offset.
 */
function conv(b: GraphBuilder, x: string, weight: string, bias: string, wShape: readonly number[], spatial: readonly number[], out?: string): string {
  const [cout, cin, ...kernel] = wShape as [number, number, ...number[]];
  const k = kernel[0]!;
  if (kernel.length !== spatial.length || kernel.some((d) => d !== k) || (k !== 1 && k !== 3)) {
    throw new Error(`conv: unsupported kernel [${kernel.join(', ')}] over spatial dims [${spatial.join(', ')}]`);
  }
  const pad = (k - 1) / 2;
  if (b.float === 'float32') {
    return b.op('Conv', [x, weight, bias], { kernel_shape: attr.ints(kernel), pads: attr.ints(new Array(2 * kernel.length).fill(pad)) }, out);
  }
  const P = spatial.reduce((a, c) => a * c, 1);
  const nd = spatial.length;
  const axes = spatial.map((_, i) => i + 2);
  const xp = pad === 0 ? x : b.op('Pad', [x, b.int64s([0, 0, ...spatial.map(() => pad), 0, 0, ...spatial.map(() => pad)])]);
  const offsets: number[][] = nd === 1 ? Array.from({ length: k }, (_, i) => [i]) : Array.from({ length: k * k }, (_, i) => [Math.floor(i / k), i % k]);
  let acc: string | undefined;
  for (const off of offsets) {
    const xs = pad === 0 ? xp : b.op('Slice', [xp, b.int64s(off), b.int64s(off.map((o, i) => o + spatial[i]!)), b.int64s(axes)]);
    const ws = k === 1 ? weight : b.op('Slice', [weight, b.int64s(off), b.int64s(off.map((o) => o + 1)), b.int64s(axes)]);
    const term = b.op('MatMul', [b.op('Reshape', [ws, b.int64s([cout, cin])]), b.op('Reshape', [xs, b.int64s([-1, cin, P])])]);
    acc = acc === undefined ? term : b.op('Add', [acc, term]);
  }
  const y = b.op('Add', [acc!, b.op('Reshape', [bias, b.int64s([cout, 1])])]);
  return b.op('Reshape', [y, b.int64s([-1, cout, ...spatial])], {}, out);
}

/**
 * The vector field f(t, z) → dz. `z` is [B, ...stateShape]; `t` (required for
 * time fields, ignored otherwise) is any one-element tensor ([] or [1]).
 */
export function appendField(b: GraphBuilder, model: Model, z: string, t?: string, out?: string): string {
  const { config } = model;
  const f = config.field;
  const S = stateSize(config);
  switch (f.kind) {
    case 'mlp': {
      let h = z;
      if (f.time) {
        if (t === undefined) throw new Error('appendField: a time field needs a t input');
        // [z, t] with t broadcast to a [B, 1] column (the layout of field.0.weight: t is its last row).
        const batch = b.op('Shape', [z], { start: attr.int(0), end: attr.int(1) });
        const shape = b.op('Concat', [batch, b.int64s([1])], { axis: attr.int(0) });
        const tcol = b.op('Expand', [b.op('Reshape', [t, b.int64s([1, 1])]), shape]);
        h = b.op('Concat', [z, tcol], { axis: attr.int(1) });
      }
      for (let l = 0; l <= f.depth; l++) {
        const last = l === f.depth;
        h = b.op('Gemm', [h, param(b, model, `field.${l}.weight`), param(b, model, `field.${l}.bias`)], {}, last ? out : undefined);
        if (!last) h = activation(b, f.activation, h);
      }
      return h;
    }
    case 'conv1d': {
      const layer = (x: string, l: number, o?: string) => {
        const w = `field.${l}.weight`;
        return conv(b, x, param(b, model, w), param(b, model, `field.${l}.bias`), model.params[w]!.shape, [S], o);
      };
      // State [D] seen as 1 channel × D.
      let h = b.op('Reshape', [z, b.int64s([-1, 1, S])]);
      h = b.op('Relu', [layer(h, 0)]);
      h = b.op('Relu', [layer(h, 1)]);
      return b.op('Reshape', [layer(h, 2), b.int64s([-1, S])], {}, out);
    }
    case 'conv2d': {
      const spatial = config.stateShape.slice(1);
      const layer = (x: string, l: number, o?: string) => {
        const w = `field.${l}.weight`;
        return conv(b, x, param(b, model, w), param(b, model, `field.${l}.bias`), model.params[w]!.shape, spatial, o);
      };
      let h = b.op('Relu', [layer(z, 0)]);
      h = b.op('Relu', [layer(h, 1)]);
      return layer(h, 2, out);
    }
  }
}

/** Head: z(t1) [B, ...stateShape] flattened in row-major order → logits [B, classes]. */
export function appendHead(b: GraphBuilder, model: Model, z: string, out?: string): string {
  const flat = model.config.stateShape.length === 1 ? z : b.op('Flatten', [z], { axis: attr.int(1) });
  return b.op('Gemm', [flat, param(b, model, 'head.weight'), param(b, model, 'head.bias')], {}, out);
}

/** Encoder: x [B, ...inputShape] → z(t0) [B, ...stateShape], appending `augment` zeros (vector) or zero channels (image). */
export function appendEncoder(b: GraphBuilder, model: Model, x: string, out?: string): string {
  const { inputShape, augment } = model.config;
  if (augment === 0) return out === undefined ? x : b.op('Identity', [x], {}, out);
  const rank = inputShape.length + 1;
  const pads = new Array<number>(2 * rank).fill(0);
  // pads = [begin_0 … begin_{r-1}, end_0 … end_{r-1}]; axis 1 is the feature / channel axis.
  pads[rank + 1] = augment;
  return b.op('Pad', [x, b.int64s(pads)], { mode: attr.string('constant') }, out);
}

/** Appends f(t, z) at a fixed time t and returns dz. */
export type FieldAppender = (b: GraphBuilder, t: number, z: string) => string;

/** The field of a model as a FieldAppender (t becomes a constant [1] tensor for time fields). */
export function modelFieldAppender(model: Model): FieldAppender {
  const time = model.config.field.kind === 'mlp' && model.config.field.time;
  return (b, t, z) => appendField(b, model, z, time ? b.scalar(t, [1]) : undefined);
}

/** base + Σ coeffs[j]·terms[j], skipping zero coefficients — the order float32Ops.combine uses. */
function combine(b: GraphBuilder, base: string, coeffs: readonly number[], terms: readonly string[]): string {
  let acc = base;
  for (let j = 0; j < coeffs.length; j++) {
    const c = coeffs[j]!;
    if (c === 0) continue;
    const term = c === 1 ? terms[j]! : b.op('Mul', [terms[j]!, b.scalar(c)]);
    acc = b.op('Add', [acc, term]);
  }
  return acc;
}

export function requireFixed(spec: SolverSpec, what: string): asserts spec is SolverSpec & { kind: 'fixed' } {
  const tab = getTableau(spec.method);
  if (spec.kind !== 'fixed' || tab.adaptive) {
    throw new SpecError(
      `${what} needs a fixed-step solver (one of euler, midpoint, heun, rk4, rk4_38 with a step); "${spec.method}" is adaptive and its steps depend on the data`,
    );
  }
}

/**
 * A fixed-step solve from t0 to t1 unrolled into the graph: the tableau of
 * src/solvers/tableau.ts on the grid of fixedGrid, step by step exactly as the
 * integrate loop's rkStep does it. Returns z(t1).
 */
export function appendFixedSolve(
  b: GraphBuilder,
  spec: SolverSpec,
  z0: string,
  field: FieldAppender,
  interval: { t0: number; t1: number },
  out?: string,
): string {
  requireFixed(spec, 'an unrolled solve');
  const tab = getTableau(spec.method);
  const grid = fixedGrid(spec, interval.t0, interval.t1);
  const s = tab.c.length;
  let z = z0;
  for (let i = 0; i + 1 < grid.length; i++) {
    const t = grid[i]!;
    const h = grid[i + 1]! - t;
    const k: string[] = [field(b, t, z)];
    let zi = z;
    for (let st = 1; st < s; st++) {
      zi = combine(b, z, tab.a[st]!.map((a) => a * h), k);
      k.push(field(b, t + tab.c[st]! * h, zi));
    }
    z = tab.fsal ? zi : combine(b, z, tab.b.map((w) => w * h), k);
  }
  return out === undefined ? z : b.op('Identity', [z], {}, out);
}

function isTimeField(model: Model): boolean {
  return model.config.field.kind === 'mlp' && model.config.field.time;
}

/** Standalone field.onnx: inputs z [batch, ...state] (and t [1] for time fields), output dz. */
export function fieldGraph(model: Model, options: GraphOptions = {}): GraphBuilder {
  checkModel(model);
  const b = new GraphBuilder({ name: 'field', float: options.float });
  const shape = [BATCH, ...model.config.stateShape];
  const z = b.input('z', b.float, shape);
  const t = isTimeField(model) ? b.input('t', b.float, [1]) : undefined;
  appendField(b, model, z, t, 'dz');
  b.output('dz', b.float, shape);
  return b;
}

/** Standalone head.onnx: input z [batch, ...state], output logits [batch, classes]. */
export function headGraph(model: Model, options: GraphOptions = {}): GraphBuilder {
  checkModel(model);
  const b = new GraphBuilder({ name: 'head', float: options.float });
  const z = b.input('z', b.float, [BATCH, ...model.config.stateShape]);
  appendHead(b, model, z, 'logits');
  b.output('logits', b.float, [BATCH, model.config.classes]);
  return b;
}

/** Standalone encoder.onnx: input x [batch, ...inputShape], output z [batch, ...state]. */
export function encoderGraph(model: Model, options: GraphOptions = {}): GraphBuilder {
  checkModel(model);
  const b = new GraphBuilder({ name: 'encoder', float: options.float });
  const x = b.input('x', b.float, [BATCH, ...model.config.inputShape]);
  appendEncoder(b, model, x, 'z');
  b.output('z', b.float, [BATCH, ...model.config.stateShape]);
  return b;
}

export interface SolveGraphOptions extends GraphOptions {
  /** Interval (defaults: the model's t0 and t1). */
  t0?: number;
  t1?: number;
}

/** The field-only unrolled solve: input z [batch, ...state] = z(t0), output z1 = z(t1). */
export function solveGraph(model: Model, spec: SolverSpec, options: SolveGraphOptions = {}): GraphBuilder {
  checkModel(model);
  requireFixed(spec, 'an unrolled solve graph');
  const b = new GraphBuilder({ name: 'solve', float: options.float });
  const shape = [BATCH, ...model.config.stateShape];
  const z = b.input('z', b.float, shape);
  const interval = { t0: options.t0 ?? model.config.t0, t1: options.t1 ?? model.config.t1 };
  appendFixedSolve(b, spec, z, modelFieldAppender(model), interval, 'z1');
  b.output('z1', b.float, shape);
  return b;
}

/**
 * The effective model (field + fixed solver configuration) as one graph:
 * x [batch, ...inputShape] → encoder → unrolled solve over [t0, t1] → head → logits.
 */
export function effectiveModelGraph(model: Model, spec: SolverSpec, options: SolveGraphOptions = {}): GraphBuilder {
  checkModel(model);
  requireFixed(spec, 'an effective model graph');
  const b = new GraphBuilder({ name: 'effective_model', float: options.float });
  const x = b.input('x', b.float, [BATCH, ...model.config.inputShape]);
  const z0 = appendEncoder(b, model, x);
  const interval = { t0: options.t0 ?? model.config.t0, t1: options.t1 ?? model.config.t1 };
  const z1 = appendFixedSolve(b, spec, z0, modelFieldAppender(model), interval);
  appendHead(b, model, z1, 'logits');
  b.output('logits', b.float, [BATCH, model.config.classes]);
  return b;
}
