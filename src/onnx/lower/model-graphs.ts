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
import { SpecError, ShapeError } from '../../errors.js';
import { fieldKind } from '../../models/fields/index.js';
import { checkParams } from '../../models/params.js';
import { augmentedShape, type Model } from '../../models/types.js';
import { solve, type SolveStats } from '../../solvers/integrate.js';
import { asSolver, type FixedSolver, type Solver } from '../../solvers/solver.js';
import type { SolverSpec } from '../../solvers/spec.js';
import { FIXED_METHODS } from '../../solvers/tableau.js';
import { attr, BATCH, GraphBuilder, type FloatType } from '../../graph/ir/graph.js';
import { graphOps } from './graph-vector.js';

export interface GraphOptions {
  /** Element type of the whole graph (default float32). */
  float?: FloatType;
  /**
   * onnxruntime's NCHWc block for graphs only this machine's onnxruntime runs (src/onnx/nchwc.ts); default 0, portable.
   */
  nchwcBlock?: number;
}

/** Check that the model is self-consistent before writing any graph of it. */
export function checkModel(model: Model, where = 'model'): void {
  const { config } = model;
  const expect = augmentedShape(config.inputShape, config.augment);
  if (expect.length !== config.stateShape.length || expect.some((d, i) => d !== config.stateShape[i])) {
    throw new ShapeError(
      `${where}: state shape [${config.stateShape.join(', ')}] does not match input shape ` +
        `[${config.inputShape.join(', ')}] with augment ${config.augment}`,
    );
  }
  checkParams(config, model.params, where);
}

function param(b: GraphBuilder, model: Model, name: string): string {
  const p = model.params[name];
  if (!p) throw new ShapeError(`model: parameter ${name} is missing`);
  return b.param(name, p);
}

/**
 * The vector field f(t, z) → dz, written by the field kind's module
 * (src/models/fields/). `z` is [B, ...stateShape]; `t` (required for time
 * fields, ignored otherwise) is any one-element tensor ([] or [1]).
 */
export function appendField(b: GraphBuilder, model: Model, z: string, t?: string, out?: string): string {
  const { config } = model;
  const kind = fieldKind(config.field);
  if (kind.usesTime(config.field) && t === undefined) throw new Error('appendField: a time field needs a t input');
  return kind.appendGraph(config.field, {
    g: b,
    param: (name) => param(b, model, name),
    stateShape: config.stateShape,
    z,
    t,
    out,
  });
}

/** Head: z(t1) [B, ...stateShape] flattened in row-major order → logits [B, classes]. */
export function appendHead(b: GraphBuilder, model: Model, z: string, out?: string): string {
  const weight = param(b, model, 'head.weight');
  const bias = param(b, model, 'head.bias');
  const flat = model.config.stateShape.length === 1 ? z : b.op('Flatten', [z], { axis: attr.int(1) });
  return b.op('Gemm', [flat, weight, bias], {}, out);
}

/**
 * Encoder: x [B, ...inputShape] → z(t0) [B, ...stateShape], appending `augment` zeros (vector) or zero channels
 * (image).
 */
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
  const time = isTimeField(model);
  return (b, t, z) => appendField(b, model, z, time ? b.scalar(t, [1]) : undefined);
}

/** The fixed-step Solver of a spec (resolved here unless it is one already), or a SpecError naming `what`. */
export function fixedSolver(spec: SolverSpec | Solver, what: string): FixedSolver {
  const solver = asSolver(spec);
  if (solver.kind !== 'fixed') {
    throw new SpecError(
      `${what} needs a fixed-step solver (one of ${FIXED_METHODS.join(', ')} with a step); "${solver.spec.method}" ` +
        `is adaptive and its steps depend on the data`,
    );
  }
  return solver;
}

export function requireFixed(spec: SolverSpec, what: string): asserts spec is SolverSpec & { kind: 'fixed' } {
  fixedSolver(spec, what);
}

/**
 * A fixed-step solve from t0 to t1 unrolled into the graph: the one integrate
 * loop (src/solvers/integrate.ts) driven with graph values (graph-vector.ts),
 * each field evaluation appending the field's nodes. Returns z(t1) and the
 * solve's statistics (NFE = the forward field evaluations in the graph).
 */
export function appendSolve(
  b: GraphBuilder,
  spec: SolverSpec | Solver,
  z0: string,
  field: FieldAppender,
  interval: { t0: number; t1: number },
  out?: string,
): { z1: string; stats: SolveStats } {
  const solver = fixedSolver(spec, 'an unrolled solve');
  const r = solve(graphOps(b), (t, z) => field(b, t, z), z0, solver, {
    t0: interval.t0,
    t1: interval.t1,
    checkFinite: false,
  });
  return { z1: out === undefined ? r.z1 : b.op('Identity', [r.z1], {}, out), stats: r.stats };
}

/** appendSolve's z(t1) alone. */
export function appendFixedSolve(
  b: GraphBuilder,
  spec: SolverSpec | Solver,
  z0: string,
  field: FieldAppender,
  interval: { t0: number; t1: number },
  out?: string,
): string {
  return appendSolve(b, spec, z0, field, interval, out).z1;
}

function isTimeField(model: Model): boolean {
  return fieldKind(model.config.field).usesTime(model.config.field);
}

/** Standalone field.onnx: inputs z [batch, ...state] (and t [1] for time fields), output dz. */
export function fieldGraph(model: Model, options: GraphOptions = {}): GraphBuilder {
  checkModel(model);
  const b = new GraphBuilder({ name: 'field', float: options.float, nchwcBlock: options.nchwcBlock });
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
export function solveGraph(model: Model, spec: SolverSpec | Solver, options: SolveGraphOptions = {}): GraphBuilder {
  checkModel(model);
  const solver = fixedSolver(spec, 'an unrolled solve graph');
  const b = new GraphBuilder({ name: 'solve', float: options.float });
  const shape = [BATCH, ...model.config.stateShape];
  const z = b.input('z', b.float, shape);
  const interval = { t0: options.t0 ?? model.config.t0, t1: options.t1 ?? model.config.t1 };
  appendFixedSolve(b, solver, z, modelFieldAppender(model), interval, 'z1');
  b.output('z1', b.float, shape);
  return b;
}

/**
 * The effective model (field + fixed solver configuration) as one graph:
 * x [batch, ...inputShape] → encoder → unrolled solve over [t0, t1] → head → logits.
 */
export function effectiveModelGraph(
  model: Model,
  spec: SolverSpec | Solver,
  options: SolveGraphOptions = {},
): GraphBuilder {
  checkModel(model);
  const solver = fixedSolver(spec, 'an effective model graph');
  const b = new GraphBuilder({ name: 'effective_model', float: options.float });
  const x = b.input('x', b.float, [BATCH, ...model.config.inputShape]);
  const z0 = appendEncoder(b, model, x);
  const interval = { t0: options.t0 ?? model.config.t0, t1: options.t1 ?? model.config.t1 };
  const z1 = appendFixedSolve(b, solver, z0, modelFieldAppender(model), interval);
  appendHead(b, model, z1, 'logits');
  b.output('logits', b.float, [BATCH, model.config.classes]);
  return b;
}
