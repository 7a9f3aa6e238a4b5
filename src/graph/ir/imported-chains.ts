/**
 * Runs of an imported graph's Conv nodes (ReLUs between them allowed) that onnxruntime's blocked NCHWc
 * kernels can run, found so that imported-field.ts writes them as the native conv fields do
 * (nchwc-ops.ts: blockedConvChain) and an imported conv field compiles to the native field's kernels.
 */
import { intAttr, intsAttr, stringAttr } from './attrs.js';
import type { ImportedAnalysis } from './imported-analysis.js';
import { blockable } from './nchwc-ops.js';
import type { ImportedGraph, ImportedNode } from './read.js';
import type { GraphWriter } from './writer.js';

/** One run: its Conv nodes in order, each with whether a (fused) Relu follows it inside the run. */
export interface ImportedConvChain {
  /** Node indices of the run's Convs and Relus; the last is the closing Conv, where the run is written. */
  readonly nodes: readonly number[];
  readonly convs: readonly { readonly node: ImportedNode; readonly relu: boolean }[];
}

/** Runs by the index of their closing Conv; none unless the graph writes blocked kernels (float32, a block). */
export function convChains(
  graph: ImportedGraph,
  analysis: ImportedAnalysis,
  g: GraphWriter,
): ReadonlyMap<number, ImportedConvChain> {
  const chains = new Map<number, ImportedConvChain>();
  if (!(g.nchwcBlock > 1) || g.float !== 'float32') return chains;
  const readers = new Map<string, number[]>();
  graph.nodes.forEach((n, i) => {
    for (const v of n.inputs) readers.set(v, [...(readers.get(v) ?? []), i]);
  });
  // The one node reading v as its first input, where nothing else (and not the graph's output) reads v.
  const onlyReader = (v: string, op: string): number | undefined => {
    const r = readers.get(v) ?? [];
    const n = graph.nodes[r[0]!];
    return r.length === 1 && v !== graph.output && n?.op === op && n.inputs[0] === v ? r[0] : undefined;
  };
  const taken = new Set<number>();
  graph.nodes.forEach((n, i) => {
    if (taken.has(i) || !blockableConv(n, analysis)) return;
    const nodes = [i];
    const convs: { node: ImportedNode; relu: boolean }[] = [{ node: n, relu: false }];
    for (;;) {
      const out = convs.at(-1)!.node.outputs[0]!;
      const relu = onlyReader(out, 'Relu');
      const next = onlyReader(relu === undefined ? out : graph.nodes[relu]!.outputs[0]!, 'Conv');
      if (next === undefined || !blockableConv(graph.nodes[next]!, analysis)) break;
      if (relu !== undefined) nodes.push(relu);
      nodes.push(next);
      convs[convs.length - 1] = { node: convs.at(-1)!.node, relu: relu !== undefined };
      convs.push({ node: graph.nodes[next]!, relu: false });
    }
    // A single Conv gains nothing: the reorders around it cost what the blocked kernel saves.
    if (convs.length < 2) return;
    const shapes = convs.map(({ node }) => analysis.metas.get(node.inputs[1]!)!.shape);
    if (!blockable(g, [...shapes.map((w) => w[1]!), shapes.at(-1)![0]!])) return;
    for (const k of nodes) taken.add(k);
    chains.set(nodes.at(-1)!, { nodes, convs });
  });
  return chains;
}

/** The pads of a Conv the blocked kernel and its gradient rule cover (ONNX order), else undefined. */
export function blockedPads(n: ImportedNode, analysis: ImportedAnalysis): readonly number[] | undefined {
  if (n.op !== 'Conv') return undefined;
  const x = analysis.metas.get(n.inputs[0]!);
  const w = analysis.metas.get(n.inputs[1]!);
  if (!x || !w || x.dtype !== 'float32' || (x.shape.length !== 3 && x.shape.length !== 4)) return undefined;
  if (w.shape.length !== x.shape.length) return undefined;
  const kernel = w.shape.slice(2);
  const nd = kernel.length;
  const ones = (key: string) => (intsAttr(n, key) ?? kernel.map(() => 1)).every((v) => v === 1);
  const autoPad = stringAttr(n, 'auto_pad');
  const shape = intsAttr(n, 'kernel_shape');
  if (intAttr(n, 'group', 1) !== 1 || !ones('strides') || !ones('dilations')) return undefined;
  if ((autoPad !== undefined && autoPad !== 'NOTSET') || (shape && shape.some((k, i) => k !== kernel[i])))
    return undefined;
  const pads = intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0);
  return pads.every((p, i) => p >= 0 && p <= kernel[i % nd]! - 1) ? pads : undefined;
}

const blockableConv = (n: ImportedNode, analysis: ImportedAnalysis) => blockedPads(n, analysis) !== undefined;
