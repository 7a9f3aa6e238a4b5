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
  const shapes = inferShapes(b, end);
  const lossMeta = checkLoss(shapes, loss);
  checkWrt(b, end, shapes, wrt);
  const active = activeValues(b, end, shapes, wrt);
  const reaches = reachingValues(b, end, loss);
  if (!active.has(loss)) throw new Error(`autodiff: the loss ${loss} does not depend on ${wrt.join(', ')}`);

  const mode: MergeMode | false = options.merge === undefined || options.merge === true ? 'chain' : options.merge;
  const writer = new GradientWriter(b, shapes, mode);
  writer.add(loss, lossMeta.shape.length === 0 ? writer.scalar(1) : b.scalar(1, lossMeta.shape));
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (n.outputs.some((o) => active.has(o) && reaches.has(o))) writer.backward(n, active, wrt);
  }
  const grads: Record<string, string> = {};
  for (const w of wrt) grads[w] = writer.finalGradient(w, names(w));
  return { grads, nodes: b.nodes.length - end, shapes };
}

/** The loss's shape and type, checked to be a float scalar. */
function checkLoss(shapes: ShapeMap, loss: string): ValueMeta {
  const lossMeta = shapes.get(loss);
  if (!lossMeta) throw new Error(`autodiff: loss ${loss} is not a value of the graph`);
  if (prod(lossMeta.shape) !== 1 || !FLOAT_TYPES.has(lossMeta.dtype)) {
    throw new Error(
      `autodiff: the loss must be a float scalar, ${loss} is ${lossMeta.dtype} [${lossMeta.shape.join(', ')}]`,
    );
  }
  return lossMeta;
}

/** Every differentiated value is a float graph input or initializer. */
function checkWrt(b: GraphBuilder, end: number, shapes: ShapeMap, wrt: readonly string[]): void {
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
}

/** Values that depend on a differentiated value (through float outputs of differentiable ops). */
function activeValues(b: GraphBuilder, end: number, shapes: ShapeMap, wrt: readonly string[]): Set<string> {
  const active = new Set<string>(wrt);
  for (let k = 0; k < end; k++) {
    const n = b.nodes[k]!;
    if (opDef(n.op)?.differentiable === false || !n.inputs.some((i) => active.has(i))) continue;
    for (const o of n.outputs) if (FLOAT_TYPES.has(shapes.get(o)!.dtype)) active.add(o);
  }
  return active;
}

/** Values the loss depends on. */
function reachingValues(b: GraphBuilder, end: number, loss: string): Set<string> {
  const reaches = new Set<string>([loss]);
  for (let k = end - 1; k >= 0; k--) {
    const n = b.nodes[k]!;
    if (n.outputs.some((o) => reaches.has(o))) for (const i of n.inputs) if (i !== '') reaches.add(i);
  }
  return reaches;
}

/** Writes a node's output gradient term `o` named `o` when given (the last node of a sum). */
type TermJob = (out?: string) => string;
type GraphNode = GradContext['node'];

/**
 * The gradient pass's state over one builder: the contributions collected for
 * each value (written only once all are known, so same-form terms merge) and
 * the Concat nodes already written (shared between sums).
 */
class GradientWriter {
  private readonly contributions = new Map<string, GradTerm[]>();
  private readonly concats = new Map<string, string>();
  private readonly merge: boolean;

  constructor(
    private readonly b: GraphBuilder,
    private readonly shapes: ShapeMap,
    private readonly mode: MergeMode | false,
  ) {
    this.merge = mode !== false;
  }

  scalar(v: number): string {
    return this.b.scalar(v);
  }

  meta(name: string): ValueMeta {
    const v = this.shapes.get(name);
    if (!v) throw new Error(`autodiff: no shape known for ${name}`);
    return v;
  }

  add(name: string, term: GradTerm): void {
    // A reduction to the same shape is the gradient itself.
    const g = typeof term !== 'string' && term.kind === 'reduce' && sameShape(term.from, term.to) ? term.g : term;
    const list = this.contributions.get(name);
    if (list) list.push(g);
    else this.contributions.set(name, [g]);
  }

  /** The summed gradient of `name` (named `out` when given), or undefined when nothing contributed. */
  total(name: string, out?: string): string | undefined {
    const list = this.contributions.get(name);
    if (!list || list.length === 0) return undefined;
    this.contributions.delete(name);
    return this.sumTerms(list, out);
  }

  /** The gradient of a differentiated value, named `out`. */
  finalGradient(w: string, out: string): string {
    const g = this.total(w, out);
    if (g !== undefined) return g;
    // A parameter the loss does not depend on has a zero gradient.
    return this.b.op('Expand', [this.scalar(0), this.b.int64s(this.meta(w).shape)], {}, out);
  }

  /** Applies node n's gradient rule to its output gradients, adding its input gradients. */
  backward(n: GraphNode, active: ReadonlySet<string>, wrt: readonly string[]): void {
    const gOut = n.outputs.map((o) => this.total(o));
    if (gOut.every((g) => g === undefined)) return;
    const needs = n.inputs.map((i) => i !== '' && active.has(i));
    if (!needs.some(Boolean)) return;
    const rule = opDef(n.op)?.grad;
    if (!rule) {
      const between = wrt.length === 1 ? wrt[0] : 'the parameters';
      throw new Error(
        `autodiff: no gradient rule for op "${n.op}" (node ${n.name}, which lies between ${between} and the loss); ` +
          `ops with rules: ${gradientOps().join(', ')}`,
      );
    }
    const gIn = rule(this.context(n), gOut, needs);
    n.inputs.forEach((i, j) => {
      const g = gIn[j];
      if (needs[j] && g !== undefined) this.add(i, g);
    });
  }

  private context(n: GraphNode): GradContext {
    const b = this.b;
    const meta = (x: string) => this.meta(x);
    return {
      b,
      node: n,
      meta,
      shape: (x) => meta(x).shape,
      known: (x) => {
        const v = meta(x).value;
        if (!v) throw new Error(`autodiff: node ${n.name} (${n.op}): input ${x} must be a constant int64 tensor`);
        return v;
      },
      sumToShape: (g, from, to, out?: string) => sumToShape(b, g, from, to, out),
      scalar: (v) => this.scalar(v),
      reshape: (x, from, to, out?: string) => reshapeTo(b, x, from, to, out),
    };
  }

  private concatRows(xs: readonly string[]): string {
    if (xs.length === 1) return xs[0]!;
    const key = xs.join('\u0000');
    let c = this.concats.get(key);
    if (!c) {
      c = this.b.op('Concat', xs, { axis: attr.int(0) });
      this.concats.set(key, c);
    }
    return c;
  }

  /** Sum of terms; the last node written gets the name `out` when given. */
  private sumTerms(terms: readonly GradTerm[], out?: string): string {
    const jobs = this.termJobs(terms);
    if (jobs.length === 1) return jobs[0]!(out);
    const parts = jobs.map((j) => j());
    return parts.length === 2 ? this.b.op('Add', parts, {}, out) : this.b.op('Sum', parts, {}, out);
  }

  /** One job per term, or per group of same-form terms when merging (in the order of each group's first term). */
  private termJobs(terms: readonly GradTerm[]): TermJob[] {
    const b = this.b;
    const merge = this.merge;
    const jobs: TermJob[] = [];
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
          jobs.push(this.rowsProductJob(r, t.alpha, t.shape));
        }
        r.a.push(t.a);
        r.g.push(t.g);
      } else if (t.kind === 'mapped') {
        const key = merge ? t.key : String(jobs.length);
        let group = mapped.get(key);
        if (!group) {
          const members: string[] = [];
          mapped.set(key, (group = members));
          jobs.push((o) => t.map(members.length === 1 ? members[0]! : b.op('Sum', members), o));
        }
        group.push(t.g);
      } else {
        const key = merge ? `${t.from.join('x')}>${t.to.join('x')}` : String(jobs.length);
        let r = reductions.get(key);
        if (!r) {
          r = { g: [], from: t.from, to: t.to };
          reductions.set(key, r);
          jobs.push(this.reductionJob(r));
        }
        r.g.push(t.g);
      }
    }
    return jobs;
  }

  /** Σ alpha · a_iᵀ · g_i over a group: one Gemm over concatenated rows, or a chain of Gemms through C. */
  private rowsProductJob(
    group: { readonly a: readonly string[]; readonly g: readonly string[] },
    alpha: number,
    shape: readonly number[] | undefined,
  ): TermJob {
    const b = this.b;
    return (o) => {
      const last = shape === undefined ? o : undefined;
      let acc: string;
      if (this.mode !== 'chain' || group.a.length === 1)
        acc = b.op('Gemm', [this.concatRows(group.a), this.concatRows(group.g)], gemmAttrs(true, false, alpha), last);
      else {
        acc = b.op('Gemm', [group.a[0]!, group.g[0]!], gemmAttrs(true, false, alpha));
        for (let i = 1; i < group.a.length; i++)
          acc = b.op(
            'Gemm',
            [group.a[i]!, group.g[i]!, acc],
            gemmAttrs(true, false, alpha),
            i === group.a.length - 1 ? last : undefined,
          );
      }
      return shape === undefined ? acc : b.op('Reshape', [acc, b.int64s(shape)], {}, o);
    };
  }

  /** Σ g_i summed down from shape `from` to `to`. */
  private reductionJob(group: {
    readonly g: readonly string[];
    readonly from: readonly number[];
    readonly to: readonly number[];
  }): TermJob {
    const b = this.b;
    return (o) => {
      if (group.g.length === 1) return sumToShape(b, group.g[0]!, group.from, group.to, o);
      // A bias of a layer used by every stage: sum the rows of the stages' gradients
      // (concatenated already for the weight gradient) in one reduction.
      if (group.from.length === 2 && group.to.length === 1 && group.to[0] === group.from[1]) {
        if (this.mode !== 'chain')
          return b.op('ReduceSum', [this.concatRows(group.g), b.int64s([0])], { keepdims: attr.int(0) }, o);
        const ones = b.scalar(1, [1, group.from[0]!]);
        let acc = b.op('Gemm', [ones, group.g[0]!]);
        for (let i = 1; i < group.g.length; i++) acc = b.op('Gemm', [ones, group.g[i]!, acc]);
        return b.op('Reshape', [acc, b.int64s(group.to)], {}, o);
      }
      return sumToShape(b, b.op('Sum', group.g), group.from, group.to, o);
    };
  }
}

function sameShape(p: readonly number[], q: readonly number[]): boolean {
  return p.length === q.length && p.every((d, i) => d === q[i]);
}

/** x reshaped from `from` to `to`: no node when the shape is unchanged (an Identity when it must be named `out`). */
function reshapeTo(b: GraphBuilder, x: string, from: readonly number[], to: readonly number[], out?: string): string {
  if (!sameShape(from, to)) return b.op('Reshape', [x, b.int64s(to)], {}, out);
  return out === undefined ? x : b.op('Identity', [x], {}, out);
}

/** g of shape `from` summed down to shape `to` (the reverse of broadcasting). */
function sumToShape(b: GraphBuilder, g: string, from: readonly number[], to: readonly number[], out?: string): string {
  if (sameShape(from, to)) return reshapeTo(b, g, from, to, out);
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
  if (axes.length === 0) return reshapeTo(b, g, from, to, out);
  // keepdims = 0 when the dims that stay are exactly `to` (a bias [N] of a [B, N] output).
  const dropped = from.filter((_, i) => !axes.includes(i));
  if (sameShape(dropped, to)) return b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(0) }, out);
  const summed = b.op('ReduceSum', [g, b.int64s(axes)], { keepdims: attr.int(1) });
  return reshapeTo(
    b,
    summed,
    from.map((d, i) => (axes.includes(i) ? 1 : d)),
    to,
    out,
  );
}
