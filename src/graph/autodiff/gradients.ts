/**
 * Reverse-mode differentiation over the nodes of a GraphBuilder.
 *
 * The forward graph is plain data (graph.ts), so the gradient graph is made by
 * walking `b.nodes` backwards from a scalar loss and appending, for every node
 * on a path from a differentiated input to the loss, the nodes its gradient
 * rule emits (its op record in ops/); an op on such a path without a rule stops the
 * build with an error naming the op and the node. Static shapes come from
 * shapes.ts, so broadcasting gradients reduce with constant axes.
 */
import { attr, type GraphBuilder } from '../ir/graph.js';
import { gemmAttrs } from '../ops/linear.js';
import {
  FLOAT_TYPES,
  gradientOps,
  opDef,
  prod,
  type GradContext,
  type GradTerm,
  type ShapeMap,
  type ValueMeta,
} from '../ops/index.js';
import { inferShapes } from './shapes.js';

export {
  gradientOps,
  hasGradient,
  opRegistry,
  OPS,
  type GradContext,
  type GradientRule,
  type GradTerm,
  type LazyGrad,
  type OpDef,
} from '../ops/index.js';
export { inferShapes, type ElemType, type ShapeMap, type ValueMeta } from './shapes.js';

export interface GradientOptions {
  /** Output names for the gradients, by differentiated value (default "grad/<name>"). */
  readonly names?: (wrt: string) => string;
  /**
   * Merge same-form contributions to a value (LazyGrad; default true =
   * 'chain', measured fastest: see scripts/bench-train.ts notes). false writes
   * every contribution as its own nodes and sums them (for comparison).
   */
  readonly merge?: boolean | MergeMode;
}

/**
 * How merged rowsProduct contributions are written: 'concat' = one Gemm over
 * the concatenated rows; 'chain' = a chain of Gemms accumulating through their
 * C input (no concatenation copies; bias rows via a ones-vector Gemm chain).
 */
export type MergeMode = 'concat' | 'chain';

export interface GradientResult {
  /** Gradient value name for each differentiated value. */
  readonly grads: Record<string, string>;
  /** Number of nodes appended. */
  readonly nodes: number;
  /** Static shapes of the forward values. */
  readonly shapes: ShapeMap;
}

/**
 * Append the gradient of the scalar `loss` with respect to each of `wrt`
 * (graph inputs or initializers) to the builder; returns the names of the
 * gradient values (named by options.names, default "grad/<name>").
 */
export function appendGradients(
  b: GraphBuilder,
  loss: string,
  wrt: readonly string[],
  options: GradientOptions = {},
): GradientResult {
  const names = options.names ?? ((w: string) => `grad/${w}`);
  const end = b.nodes.length;
  const nodesBefore = b.nodes.length;
  const shapes = inferShapes(b, end);
  const lossMeta = shapes.get(loss);
  if (!lossMeta) throw new Error(`autodiff: loss ${loss} is not a value of the graph`);
  if (prod(lossMeta.shape) !== 1 || !FLOAT_TYPES.has(lossMeta.dtype)) {
    throw new Error(
      `autodiff: the loss must be a float scalar, ${loss} is ${lossMeta.dtype} [${lossMeta.shape.join(', ')}]`,
    );
  }
  const produced = new Set(b.nodes.slice(0, end).flatMap((n) => n.outputs));
  for (const w of wrt) {
    if (produced.has(w))
      throw new Error(
        `autodiff: ${w} is computed by the graph; differentiate with respect to graph inputs or initializers`,
      );
    const meta = shapes.get(w);
    if (!meta) throw new Error(`autodiff: cannot differentiate with respect to ${w}: not a value of the graph`);
    if (!FLOAT_TYPES.has(meta.dtype))
      throw new Error(`autodiff: cannot differentiate with respect to ${w}: it is ${meta.dtype}`);
  }

  // Values that depend on a differentiated value (through float outputs of differentiable ops).
  const active = new Set<string>(wrt);
  for (let k = 0; k < end; k++) {
    const n = b.nodes[k]!;
    if (opDef(n.op)?.differentiable === false || !n.inputs.some((i) => active.has(i))) continue;
    for (const o of n.outputs) if (FLOAT_TYPES.has(shapes.get(o)!.dtype)) active.add(o);
  }
  // Values the loss depends on.
  const reaches = new Set<string>([loss]);
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (n.outputs.some((o) => reaches.has(o))) for (const i of n.inputs) if (i !== '') reaches.add(i);
  }
  if (!active.has(loss)) throw new Error(`autodiff: the loss ${loss} does not depend on ${wrt.join(', ')}`);

  const mode: MergeMode | false = options.merge === undefined || options.merge === true ? 'chain' : options.merge;
  const merge = mode !== false;
  const contributions = new Map<string, GradTerm[]>();
  const add = (name: string, term: GradTerm) => {
    // A reduction to the same shape is the gradient itself.
    const g = typeof term !== 'string' && term.kind === 'reduce' && sameShape(term.from, term.to) ? term.g : term;
    const list = contributions.get(name);
    if (list) list.push(g);
    else contributions.set(name, [g]);
  };
  const concats = new Map<string, string>();
  const concatRows = (xs: readonly string[]): string => {
    if (xs.length === 1) return xs[0]!;
    const key = xs.join('\u0000');
    let c = concats.get(key);
    if (!c) {
      c = b.op('Concat', xs, { axis: attr.int(0) });
      concats.set(key, c);
    }
    return c;
  };
  /** Sum of terms; the last node written gets the name `out` when given. */
  const sumTerms = (terms: readonly GradTerm[], out?: string): string => {
    const jobs: ((o?: string) => string)[] = [];
    const rows = new Map<string, { a: string[]; g: string[] }>();
    const reductions = new Map<string, { g: string[]; from: readonly number[]; to: readonly number[] }>();
    const mapped = new Map<string, string[]>();
    for (const t of terms) {
      if (typeof t === 'string') jobs.push((o) => (o === undefined ? t : b.op('Identity', [t], {}, o)));
      else if (t.kind === 'rowsProduct') {
        const key = merge ? `${t.alpha}|${t.shape?.join('x') ?? ''}` : String(jobs.length);
        let r = rows.get(key);
        if (!r) {
          r = { a: [], g: [] };
          rows.set(key, r);
          const group = r;
          const shape = t.shape;
          jobs.push((o) => {
            const last = shape === undefined ? o : undefined;
            let acc: string;
            if (mode !== 'chain' || group.a.length === 1)
              acc = b.op('Gemm', [concatRows(group.a), concatRows(group.g)], gemmAttrs(true, false, t.alpha), last);
            else {
              acc = b.op('Gemm', [group.a[0]!, group.g[0]!], gemmAttrs(true, false, t.alpha));
              for (let i = 1; i < group.a.length; i++)
                acc = b.op(
                  'Gemm',
                  [group.a[i]!, group.g[i]!, acc],
                  gemmAttrs(true, false, t.alpha),
                  i === group.a.length - 1 ? last : undefined,
                );
            }
            return shape === undefined ? acc : b.op('Reshape', [acc, b.int64s(shape)], {}, o);
          });
        }
        r.a.push(t.a);
        r.g.push(t.g);
      } else if (t.kind === 'mapped') {
        const key = merge ? t.key : String(jobs.length);
        let group = mapped.get(key);
        if (!group) {
          const terms: string[] = [];
          mapped.set(key, (group = terms));
          jobs.push((o) => t.map(terms.length === 1 ? terms[0]! : b.op('Sum', terms), o));
        }
        group.push(t.g);
      } else {
        const key = merge ? `${t.from.join('x')}>${t.to.join('x')}` : String(jobs.length);
        let r = reductions.get(key);
        if (!r) {
          r = { g: [], from: t.from, to: t.to };
          reductions.set(key, r);
          const group = r;
          jobs.push((o) => {
            if (group.g.length === 1) return sumToShape(group.g[0]!, group.from, group.to, o);
            // A bias of a layer used by every stage: sum the rows of the stages' gradients
            // (concatenated already for the weight gradient) in one reduction.
            if (group.from.length === 2 && group.to.length === 1 && group.to[0] === group.from[1]) {
              if (mode !== 'chain')
                return b.op('ReduceSum', [concatRows(group.g), b.int64s([0])], { keepdims: attr.int(0) }, o);
              const ones = b.scalar(1, [1, group.from[0]!]);
              let acc = b.op('Gemm', [ones, group.g[0]!]);
              for (let i = 1; i < group.g.length; i++) acc = b.op('Gemm', [ones, group.g[i]!, acc]);
              return b.op('Reshape', [acc, b.int64s(group.to)], {}, o);
            }
            return sumToShape(b.op('Sum', group.g), group.from, group.to, o);
          });
        }
        r.g.push(t.g);
      }
    }
    if (jobs.length === 1) return jobs[0]!(out);
    const parts = jobs.map((j) => j());
    return parts.length === 2 ? b.op('Add', parts, {}, out) : b.op('Sum', parts, {}, out);
  };
  const total = (name: string, out?: string): string | undefined => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return undefined;
    contributions.delete(name);
    return sumTerms(list, out);
  };
  const scalar = (v: number) => b.scalar(v);
  const meta = (name: string): ValueMeta => {
    const v = shapes.get(name);
    if (!v) throw new Error(`autodiff: no shape known for ${name}`);
    return v;
  };
  const sameShape = (p: readonly number[], q: readonly number[]) =>
    p.length === q.length && p.every((d, i) => d === q[i]);
  const reshape = (x: string, from: readonly number[], to: readonly number[], out?: string) =>
    sameShape(from, to)
      ? out === undefined
        ? x
        : b.op('Identity', [x], {}, out)
      : b.op('Reshape', [x, b.int64s(to)], {}, out);
  const sumToShape = (g: string, from: readonly number[], to: readonly number[], out?: string): string => {
    if (sameShape(from, to)) return reshape(g, from, to, out);
    const lead = from.length - to.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    if (axes.length === 0) return reshape(g, from, to, out);
    // keepdims = 0 when the dims that stay are exactly `to` (a bias [N] of a [B, N] output).
    const dropped = from.filter((_, i) => !axes.includes(i));
    if (sameShape(dropped, to)) return b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(0) }, out);
    const summed = b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(1) });
    return reshape(
      summed,
      from.map((d, i) => (axes.includes(i) ? 1 : d)),
      to,
      out,
    );
  };

  add(loss, lossMeta.shape.length === 0 ? scalar(1) : b.scalar(1, lossMeta.shape));
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (!n.outputs.some((o) => active.has(o) && reaches.has(o))) continue;
    const gOut = n.outputs.map((o) => total(o));
    if (gOut.every((g) => g === undefined)) continue;
    const needs = n.inputs.map((i) => i !== '' && active.has(i));
    if (!needs.some(Boolean)) continue;
    const rule = opDef(n.op)?.grad;
    if (!rule) {
      throw new Error(
        `autodiff: no gradient rule for op "${n.op}" (node ${n.name}, which lies between ${wrt.length === 1 ? wrt[0] : 'the parameters'} and the loss); ` +
          `ops with rules: ${gradientOps().join(', ')}`,
      );
    }
    const ctx: GradContext = {
      b,
      node: n,
      meta,
      shape: (x) => meta(x).shape,
      known: (x) => {
        const v = meta(x).value;
        if (!v) throw new Error(`autodiff: node ${n.name} (${n.op}): input ${x} must be a constant int64 tensor`);
        return v;
      },
      sumToShape,
      scalar,
      reshape,
    };
    const gIn = rule(ctx, gOut, needs);
    n.inputs.forEach((i, j) => {
      const g = gIn[j];
      if (needs[j] && g !== undefined) add(i, g);
    });
  }
  const grads: Record<string, string> = {};
  for (const w of wrt) {
    const out = names(w);
    const g = total(w, out);
    if (g !== undefined) grads[w] = g;
    else {
      // A parameter the loss does not depend on has a zero gradient.
      grads[w] = b.op('Expand', [scalar(0), b.int64s(meta(w).shape)], {}, out);
    }
  }
  return { grads, nodes: b.nodes.length - nodesBefore, shapes };
}
