/**
 * An imported vector field (read.ts) appended to any graph writer: its nodes re-emitted with the state,
 * time and parameters of the graph being built, in the graph's float type.
 *
 * The exporter's shape arithmetic around the symbolic batch (Shape → Gather → Unsqueeze → Concat →
 * Reshape, ConstantOfShape / Equal / Where before an Expand) is folded at graph-build time by the op
 * records' shape rules, run with a probe batch no real dimension has (PROBE_BATCH). A folded shape that
 * still involves the batch is written as −1 in a Reshape target, or built from Shape(z) elsewhere — the
 * same few nodes a native field writes — so one lowering serves graphs with a fixed batch (training)
 * and with a symbolic one (export, evaluation).
 */
import { FileFormatError, ShapeError } from '../../errors.js';
import { opDef, prod, type ShapeContext, type ValueMeta } from '../ops/index.js';
import { attr, intAttr, intsAttr, type Attr } from './attrs.js';
import { convByMatMul, elu64, softplus64 } from './float64.js';
import type { ImportedAnalysis } from './imported-analysis.js';
import { blockedPads, convChains, type ImportedConvChain } from './imported-chains.js';
import { blockedConvChain, type BlockedLayer } from './nchwc-ops.js';
import type { ImportedGraph, ImportedNode, ImportedTensor } from './read.js';
import type { GraphWriter } from './writer.js';

export type { ImportedAnalysis } from './imported-analysis.js';

/** The batch size shape inference runs with: a prime no field dimension has, so batch-dependent sizes stand out. */
export const PROBE_BATCH = 1_000_003;

const isFloat = (t: string) => t === 'float32' || t === 'float64';
const nodeWhere = (n: ImportedNode) => `node ${n.name} (${n.op})`;

/** Symbolic dims printed as "batch" (multiples as "k·batch"). */
export function showShape(shape: readonly number[]): string {
  const dim = (d: number) =>
    d === PROBE_BATCH ? 'batch' : d !== 0 && d % PROBE_BATCH === 0 ? `${d / PROBE_BATCH}·batch` : String(d);
  return `[${shape.map(dim).join(', ')}]`;
}

function tensorMeta(t: ImportedTensor): ValueMeta {
  const small = (t.dtype === 'int64' || t.dtype === 'bool') && t.data.length <= 64;
  return { dtype: t.dtype, shape: t.shape, value: small ? Array.from(t.data as ArrayLike<number>) : undefined };
}

/** Shapes and folded values of every value of the graph for a per-sample state shape. */
export function analyzeImported(graph: ImportedGraph, stateShape: readonly number[]): ImportedAnalysis {
  const fail = (m: string): never => {
    throw new FileFormatError(graph.file, m);
  };
  const metas = new Map<string, ValueMeta>();
  const folded = new Set<string>();
  for (const t of graph.tensors.values()) metas.set(t.name, tensorMeta(t));
  metas.set(graph.z.name, { dtype: 'float32', shape: [PROBE_BATCH, ...stateShape] });
  if (graph.t) metas.set(graph.t.name, { dtype: 'float32', shape: graph.t.shape.length === 0 ? [] : [1] });
  let hidden = prod(stateShape);
  let activations = 0;
  for (const n of graph.nodes) {
    const where = nodeWhere(n);
    const get = (i: number): ValueMeta =>
      metas.get(n.inputs[i] ?? '') ?? fail(`${where}: input ${n.inputs[i] ?? i} is not defined before it`);
    const ctx: ShapeContext = {
      node: { ...n, attrs: n.attrs },
      where,
      get,
      opt: (i) => (n.inputs[i] === undefined || n.inputs[i] === '' ? undefined : get(i)),
      known: (i) =>
        get(i).value ??
        fail(`${where}: input ${n.inputs[i]} must be known when the graph is built (a constant or shape arithmetic)`),
      set: (meta, out = 0) => metas.set(n.outputs[out]!, meta),
    };
    try {
      opDef(n.op)!.inferShape(ctx);
    } catch (e) {
      if (e instanceof FileFormatError) throw e;
      fail((e as Error).message);
    }
    for (const o of n.outputs) {
      const m = metas.get(o)!;
      if (m.value !== undefined) folded.add(o);
      else if (isFloat(m.dtype) && m.shape[0] === PROBE_BATCH) {
        hidden = Math.max(hidden, prod(m.shape.slice(1)));
        activations += prod(m.shape.slice(1));
      }
    }
  }
  const out = metas.get(graph.output) ?? fail(`the output ${graph.output} is not computed by any node`);
  const want = [PROBE_BATCH, ...stateShape];
  if (!isFloat(out.dtype) || out.shape.length !== want.length || out.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${graph.file}: the output ${graph.output} has shape ${showShape(out.shape)}, ` +
        `the state z has ${showShape(want)}; dz/dt must have z's shape`,
    );
  }
  return { metas, folded, hiddenValues: hidden, activationValues: activations };
}

export interface ImportedFieldContext {
  readonly g: GraphWriter;
  /** State [B, ...stateShape]. */
  readonly z: string;
  /** Time, a one-element tensor, for graphs with a t input. */
  readonly t?: string;
  /** Graph value of a trainable initializer (by its name in the file); undefined = a constant of the file. */
  readonly param: (name: string) => string | undefined;
  /** Name of the output value (fresh when absent). */
  readonly out?: string;
}

/** Append f(t, z) of an analysed imported graph; returns the name of dz. */
export function appendImported(graph: ImportedGraph, analysis: ImportedAnalysis, ctx: ImportedFieldContext): string {
  const { g } = ctx;
  const names = new Map<string, string>([[graph.z.name, ctx.z]]);
  if (graph.t) {
    if (ctx.t === undefined) throw new ShapeError(`${graph.file}: the field takes a time input, none was given`);
    names.set(graph.t.name, graph.t.shape.length === 0 ? g.op('Reshape', [ctx.t, g.int64s([])]) : ctx.t);
  }
  const value = (name: string, consumer: ImportedNode): string => {
    if (name === '') return '';
    const known = names.get(name);
    if (known !== undefined) return known;
    const meta = analysis.metas.get(name)!;
    if (meta.value !== undefined) return intsValue(ctx, analysis, meta, consumer);
    const tensor = graph.tensors.get(name);
    if (!tensor) throw new Error(`imported field: ${name} has no value`);
    const v = ctx.param(name) ?? constant(g, graph, tensor);
    names.set(name, v);
    return v;
  };
  const chains = convChains(graph, analysis, g);
  const inChain = new Set([...chains.values()].flatMap((c) => c.nodes));
  for (const [i, n] of graph.nodes.entries()) {
    if (n.outputs.every((o) => analysis.folded.has(o))) continue;
    const out = n.outputs[0] === graph.output ? ctx.out : undefined;
    const chain = chains.get(i);
    if (chain) names.set(n.outputs[0]!, emitChain(g, chain, analysis, value, out));
    else if (!inChain.has(i))
      names.set(
        n.outputs[0]!,
        emit(ctx, n, analysis, (k) => value(n.inputs[k] ?? '', n), out),
      );
  }
  return names.get(graph.output)!;
}

/**
 * A run of Convs (imported-chains.ts) on the blocked NCHWc kernels, written where its closing Conv stands
 * (every weight it reads is defined by then): the native conv fields' layers (nchwc-ops.ts).
 */
function emitChain(
  g: GraphWriter,
  chain: ImportedConvChain,
  analysis: ImportedAnalysis,
  value: (name: string, consumer: ImportedNode) => string,
  out?: string,
): string {
  const first = chain.convs[0]!.node;
  const layers = chain.convs.map(({ node, relu }): BlockedLayer => {
    const [w, b] = [node.inputs[1]!, node.inputs[2]];
    return {
      key: `imported:${w}:${b ?? ''}`,
      shape: analysis.metas.get(w)!.shape,
      weight: () => value(w, node),
      bias: b ? () => value(b, node) : undefined,
      pads: blockedPads(node, analysis)!,
      relu,
    };
  });
  return blockedConvChain(
    g,
    value(first.inputs[0]!, first),
    layers,
    analysis.metas.get(first.inputs[0]!)!.shape.slice(2),
    out,
  );
}

/** A float tensor of the file as a constant of the graph's float type (shared by every stage). */
function constant(g: GraphWriter, graph: ImportedGraph, t: ImportedTensor): string {
  if (t.dtype === 'int64' || t.dtype === 'bool')
    throw new FileFormatError(graph.file, `tensor ${t.name} (${t.dtype}) is too large to fold`);
  const data = t.data as Float32Array | Float64Array;
  if (data.length > 0 && data.every((v) => v === data[0])) return g.scalar(data[0]!, t.shape);
  return g.once(`imported-constant:${t.name}`, () =>
    g.initializer(t.name, g.float, t.shape, g.float === 'float32' ? Float32Array.from(data) : Float64Array.from(data)),
  );
}

/**
 * A folded int64 tensor as a graph input: a constant, or, where it involves the batch, a Reshape target
 * with −1 there or a shape built from Shape(z).
 */
function intsValue(
  ctx: ImportedFieldContext,
  analysis: ImportedAnalysis,
  meta: ValueMeta,
  consumer: ImportedNode,
): string {
  const { g } = ctx;
  const values = meta.value!;
  if (meta.dtype !== 'int64')
    throw new Error(`imported field: node ${consumer.name} (${consumer.op}) reads a folded ${meta.dtype} tensor`);
  const k = values.map((v) => (v !== 0 && v % PROBE_BATCH === 0 ? v / PROBE_BATCH : 0));
  if (k.every((x) => x === 0))
    return meta.shape.length === 0
      ? g.initializer('c', 'int64', [], BigInt64Array.of(BigInt(values[0]!)))
      : g.int64s(values);
  // A Reshape's target is its (folded) output shape with the one batch-sized dim as −1, whatever −1 or 0 the
  // exporter wrote: [batch, 1, −1] becomes [−1, 1, D], the very target a native field writes.
  const target = consumer.op === 'Reshape' ? analysis.metas.get(consumer.outputs[0]!)!.shape : [];
  const batched = (d: number) => d !== 0 && d % PROBE_BATCH === 0;
  if (target.filter(batched).length === 1 && !target.includes(0))
    return g.int64s(target.map((d) => (batched(d) ? -1 : d)));
  const batch = g.op('Shape', [ctx.z], { start: attr.int(0), end: attr.int(1) });
  const parts: string[] = [];
  let run: number[] = [];
  const flush = () => {
    if (run.length > 0) parts.push(g.int64s(run));
    run = [];
  };
  values.forEach((v, i) => {
    if (k[i] === 0) return run.push(v);
    flush();
    parts.push(k[i] === 1 ? batch : g.op('Mul', [batch, g.int64s([k[i]!])]));
  });
  flush();
  return parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: attr.int(0) });
}

/** One node written into the graph (float64 forms where onnxruntime has float32 kernels only). */
function emit(
  ctx: ImportedFieldContext,
  n: ImportedNode,
  analysis: ImportedAnalysis,
  input: (i: number) => string,
  out?: string,
): string {
  const { g } = ctx;
  const ins = () => n.inputs.map((_, i) => input(i));
  const f64 = g.float === 'float64';
  const attrs: Record<string, Attr> = { ...n.attrs };
  switch (n.op) {
    case 'Softplus':
      return f64 ? named(g, softplus64(g, input(0)), out) : g.op('Softplus', ins(), {}, out);
    case 'Elu':
      return f64
        ? named(g, elu64(g, input(0), n.attrs.alpha?.kind === 'float' ? n.attrs.alpha.value : 1), out)
        : g.op('Elu', ins(), attrs, out);
    case 'Conv':
      if (f64) return convFloat64(ctx, n, analysis, input, out);
      // Written as the native fields write it: defaults left out (the same node, the same graph).
      for (const key of ['strides', 'dilations', 'group'] as const) {
        const v = attrs[key];
        if ((v?.kind === 'ints' && v.value.every((x) => x === 1)) || (v?.kind === 'int' && v.value === 1))
          delete attrs[key];
      }
      break;
    case 'Cast': {
      const to = n.attrs.to?.kind === 'int' ? n.attrs.to.value : 1;
      if (to === 1 || to === 11) attrs.to = attr.int(f64 ? 11 : 1);
      break;
    }
    case 'ReduceMean':
    case 'ReduceSum':
      // Opset 18 moved ReduceMean's axes to an input; the graphs odeness writes (opset 17) keep the attribute.
      if (n.op === 'ReduceMean' && n.inputs[1]) {
        attrs.axes = attr.ints(analysis.metas.get(n.inputs[1])!.value!);
        return g.op('ReduceMean', [input(0)], attrs, out);
      }
      break;
    case 'ConstantOfShape': {
      const v = n.attrs.value?.kind === 'floats' ? n.attrs.value.value[0]! : 0;
      return g.op('Expand', [g.scalar(v), input(0)], {}, out);
    }
  }
  return g.op(n.op, ins(), attrs, out);
}

function named(g: GraphWriter, v: string, out?: string): string {
  return out === undefined ? v : g.op('Identity', [v], {}, out);
}

function convFloat64(
  ctx: ImportedFieldContext,
  n: ImportedNode,
  analysis: ImportedAnalysis,
  input: (i: number) => string,
  out?: string,
): string {
  const x = analysis.metas.get(n.inputs[0]!)!.shape;
  const w = analysis.metas.get(n.inputs[1]!)!.shape;
  const nd = x.length - 2;
  const geo = {
    spatial: x.slice(2),
    pads: intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0),
    dilations: intsAttr(n, 'dilations') ?? new Array<number>(nd).fill(1),
    strides: intsAttr(n, 'strides') ?? new Array<number>(nd).fill(1),
    group: intAttr(n, 'group', 1),
  };
  return convByMatMul(ctx.g, input(0), input(1), n.inputs[2] ? input(2) : undefined, w, geo, out);
}
