/**
 * onnxruntime's blocked-channel (NCHWc) dialect of the graph IR: its op names and the blocked weight
 * layout, shared by the field kinds that write it (src/models/fields/graph-ops.ts), the op records that
 * infer its shapes and differentiate it (src/graph/ops/conv.ts) and the runtime's probe (src/onnx/nchwc.ts).
 */
import { attr } from './attrs.js';
import type { GraphWriter } from './writer.js';

/**
 * onnxruntime's blocked-channel ops (its CPU provider's NCHWc kernels). A blocked tensor is declared
 * [N, C, H, W] but stored [N][C/block][H][W][block]; a Conv in this domain reads its weight reordered
 * (below) and may fuse bias and ReLU. Only ever written when GraphWriter.nchwcBlock > 1.
 */
export const NCHWC_CONV = 'com.microsoft.nchwc:Conv';
export const NCHWC_REORDER_INPUT = 'com.microsoft.nchwc:ReorderInput';
export const NCHWC_REORDER_OUTPUT = 'com.microsoft.nchwc:ReorderOutput';

/** Channels padded up to a multiple of the block. */
export const blockedChannels = (c: number, block: number) => Math.ceil(c / block) * block;

/**
 * A 2-D weight [O, I, kh, kw] in the layout the blocked Conv reads, output channels zero-padded to the
 * block: [O/bl][I][kh][kw][bl] when I < block (the input stays plain NCHW), else [O/bl][I/bl][kh][kw][bl_i][bl_o].
 */
export function blockedWeight(g: GraphWriter, w: string, shape: readonly number[], out?: string): string {
  const bl = g.nchwcBlock;
  const [o, i, kh, kw] = shape as [number, number, number, number];
  const op = blockedChannels(o, bl);
  const padded = op === o ? w : g.op('Pad', [w, g.int64s([0, 0, 0, 0, op - o, 0, 0, 0])]);
  const blocked =
    i < bl
      ? g.op('Transpose', [g.op('Reshape', [padded, g.int64s([op / bl, bl, i, kh, kw])])], {
          perm: attr.ints([0, 2, 3, 4, 1]),
        })
      : g.op('Transpose', [g.op('Reshape', [padded, g.int64s([op / bl, bl, i / bl, bl, kh, kw])])], {
          perm: attr.ints([0, 2, 4, 5, 3, 1]),
        });
  return g.op('Reshape', [blocked, g.int64s([op, i, kh, kw])], {}, out);
}

/**
 * Whether a conv chain with these channels (each layer's input, then the last output) suits the blocked
 * Conv without wasted work: the input has fewer channels than a block (read plain) or whole blocks, and so
 * does every hidden layer (only the last output is padded).
 */
export function blockable(g: GraphWriter, channels: readonly number[]): boolean {
  const bl = g.nchwcBlock;
  const [input, ...hidden] = channels.slice(0, -1);
  return bl > 1 && g.float === 'float32' && (input! < bl || input! % bl === 0) && hidden.every((c) => c % bl === 0);
}

/** One stride-1, undilated, ungrouped Conv of a blocked chain, with 1 or 2 spatial dims. */
export interface BlockedLayer {
  /** Names the layer's reordered weight and bias, made once per graph and shared by every solver stage. */
  readonly key: string;
  /** The plain weight's shape [O, I, ...kernel]. */
  readonly shape: readonly number[];
  /** Graph values of the plain weight and bias [O] (none: no bias), asked for when first needed. */
  readonly weight: () => string;
  readonly bias?: () => string;
  /** ONNX pads [begin…, end…], each at most kernel − 1 (what the blocked Conv's gradient rule covers). */
  readonly pads: readonly number[];
  /** A ReLU follows (fused into the blocked Conv); ignored on the last layer. */
  readonly relu: boolean;
}

/** The channels blockable() judges a chain by. */
export const chainChannels = (layers: readonly BlockedLayer[]) => [
  ...layers.map((l) => l.shape[1]!),
  layers.at(-1)!.shape[0]!,
];

/**
 * A chain of convolutions x [B, C, ...spatial] → [B, C', ...spatial'] on the blocked Conv (blockable() must
 * hold): the hidden activations stay blocked, with bias and ReLU fused into the Conv, and only the last output
 * is reordered back (measured 1.7× faster per 32→32 kernel-3 layer than the plain Conv). 1-D layers run as
 * 2-D ones over a height of 1. The native conv fields (src/models/fields/graph-ops.ts) and imported Conv
 * chains (imported-field.ts) both write their blocked form here, so the same layers compile to the same kernels.
 */
export function blockedConvChain(
  g: GraphWriter,
  x: string,
  layers: readonly BlockedLayer[],
  spatial: readonly number[],
  out?: string,
): string {
  const bl = g.nchwcBlock;
  const flat = spatial.length === 1;
  let h = flat ? g.op('Reshape', [x, g.int64s([0, 0, 1, spatial[0]!])]) : x;
  if (layers[0]!.shape[1]! >= bl) h = g.op(NCHWC_REORDER_INPUT, [h]);
  const last = layers.length - 1;
  const channels = layers[last]!.shape[0]!;
  let size = spatial;
  for (const [l, layer] of layers.entries()) {
    const ws = layer.shape;
    const w4 = flat ? [ws[0]!, ws[1]!, 1, ws[2]!] : ws;
    // A closing 1×1 layer with fewer outputs than a block, after a blocked one.
    if (l === last && l > 0 && channels < bl && w4.slice(2).every((k) => k === 1))
      return blockedPointwiseOut(g, h, layer, w4, size, out);
    const p = g.once(`nchwc-layer:${layer.key}`, () => {
      const weight = layer.weight();
      const bias = layer.bias?.();
      const wb = blockedWeight(g, flat ? g.op('Reshape', [weight, g.int64s(w4)]) : weight, w4);
      const o = ws[0]!;
      const op = blockedChannels(o, bl);
      return { weight: wb, bias: bias === undefined || op === o ? bias : g.op('Pad', [bias, g.int64s([0, op - o])]) };
    });
    const k = w4.slice(2);
    const pads = flat ? [0, layer.pads[0]!, 0, layer.pads[1]!] : layer.pads;
    h = g.op(NCHWC_CONV, p.bias === undefined ? [h, p.weight] : [h, p.weight, p.bias], {
      kernel_shape: attr.ints(k),
      pads: attr.ints(pads),
      ...(l < last && layer.relu ? { activation: attr.string('Relu') } : {}),
    });
    const nd = size.length;
    size = size.map((s, i) => s + layer.pads[i]! + layer.pads[nd + i]! - ws[2 + i]! + 1);
  }
  const y = g.op(NCHWC_REORDER_OUTPUT, [h], { channels: attr.int(channels) }, flat ? undefined : out);
  return flat ? g.op('Reshape', [y, g.int64s([0, channels, size[0]!])], {}, out) : y;
}

/**
 * A closing 1×1 layer with fewer outputs than a block, read straight from the blocked input h [N, C, …]
 * (C whole blocks) as products over its blocks, h [N, C/bl, HW, bl] · W [C/bl, bl, O] summed over the blocks:
 * no padded outputs and no reorder, and its gradients read h once (measured: 7 reorders per 900-d conv1d
 * field evaluation became 2).
 */
function blockedPointwiseOut(
  g: GraphWriter,
  h: string,
  layer: BlockedLayer,
  w4: readonly number[],
  spatial: readonly number[],
  out?: string,
): string {
  const bl = g.nchwcBlock;
  const [o, c] = [w4[0]!, w4[1]!];
  const hw = spatial.reduce((a, d) => a * d, 1);
  const w = g.op('Transpose', [g.op('Reshape', [layer.weight(), g.int64s([o, c / bl, bl])])], {
    perm: attr.ints([1, 2, 0]),
  });
  const blocks = g.op('MatMul', [g.op('Reshape', [h, g.int64s([0, c / bl, hw, bl])]), w]);
  const rows = g.op('ReduceSum', [blocks, g.int64s([1])], { keepdims: attr.int(0) }); // [N, HW, O]
  const plain = (name?: string) =>
    o === 1
      ? g.op('Reshape', [rows, g.int64s([0, 1, ...spatial])], {}, name)
      : g.op(
          'Reshape',
          [g.op('Transpose', [rows], { perm: attr.ints([0, 2, 1]) }), g.int64s([0, o, ...spatial])],
          {},
          name,
        );
  if (!layer.bias) return plain(out);
  const y = plain();
  return g.op('Add', [y, g.op('Reshape', [layer.bias(), g.int64s([o, ...spatial.map(() => 1)])])], {}, out);
}
