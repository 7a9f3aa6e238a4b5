/**
 * onnxruntime's blocked-channel (NCHWc) dialect of the graph IR: its op names and the blocked weight
 * layout, shared by the field kinds that write it (src/models/fields/graph-ops.ts), the op records that
 * infer its shapes and differentiate it (src/onnx/ops/nchwc.ts) and the runtime's probe (src/onnx/nchwc.ts).
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
      ? g.op('Transpose', [g.op('Reshape', [padded, g.int64s([op / bl, bl, i, kh, kw])])], { perm: attr.ints([0, 2, 3, 4, 1]) })
      : g.op('Transpose', [g.op('Reshape', [padded, g.int64s([op / bl, bl, i / bl, bl, kh, kw])])], { perm: attr.ints([0, 2, 4, 5, 3, 1]) });
  return g.op('Reshape', [blocked, g.int64s([op, i, kh, kw])], {}, out);
}
