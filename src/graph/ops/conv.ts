/**
 * Op records of the convolutions: the plain Conv and ConvTranspose, and onnxruntime's blocked-channel
 * (NCHWc) Conv and reorders that the engines' conv fields use (src/models/fields/graph-ops.ts: convStack).
 */
import { attr, intAttr, intsAttr } from '../ir/attrs.js';
import { blockedWeight, NCHWC_CONV, NCHWC_REORDER_INPUT, NCHWC_REORDER_OUTPUT } from '../ir/nchwc-ops.js';
import type { GraphBuilder } from '../ir/graph.js';
import { reluGrad } from './elementwise.js';
import { prod, type GradContext, type GradientRule, type GradTerm, type OpDef, type ShapeContext } from './op.js';

/**
 * The weight of dX = dY ⋆ flip(Wᵀ): W [O, I, ...kernel] (`plain()`, in that layout) with its first two axes swapped
 * and its kernel axes reversed, made once per builder and weight (`make` may re-layout the result, as the blocked
 * Conv does).
 */
function flippedWeight(
  b: GraphBuilder,
  w: string,
  plain: () => string,
  kernel: readonly number[],
  spatialAxes: readonly number[],
  make: (t: string) => string = (t) => t,
): string {
  return b.once(`flipped-weight:${w}`, () => {
    const flip = spatialAxes.filter((_, i) => kernel[i]! > 1);
    let t = b.op('Transpose', [plain()], { perm: attr.ints([1, 0, ...spatialAxes]) });
    if (flip.length > 0)
      t = b.op('Slice', [
        t,
        b.int64s(flip.map(() => -1)),
        b.int64s(flip.map(() => -(2 ** 31))),
        b.int64s(flip),
        b.int64s(flip.map(() => -1)),
      ]);
    return make(t);
  });
}

interface ConvAttrs {
  readonly nd: number;
  readonly kernel: readonly number[];
  readonly pads: readonly number[];
  readonly spatialAxes: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  /** Channel groups (the plain Conv's rule only). */
  readonly group: number;
}

const allOne = (v: readonly number[]) => v.every((x) => x === 1);

/** The Conv's geometry; strides, dilations and groups only where `general` (the plain Conv's rule). */
function convAttrs(ctx: GradContext, general = false): ConvAttrs {
  const n = ctx.node;
  const nd = ctx.shape(n.inputs[0]!).length - 2;
  const unit = (key: string) => {
    const v = intsAttr(n, key);
    return v === undefined || v.every((x) => x === 1);
  };
  const autoPad = n.attrs.auto_pad;
  const outPad = intsAttr(n, 'output_padding');
  if (
    (!general && (!unit('strides') || !unit('dilations'))) ||
    (!general && intAttr(n, 'group', 1) !== 1) ||
    (autoPad && autoPad.kind === 'string' && autoPad.value !== 'NOTSET') ||
    (outPad && outPad.some((p) => p !== 0)) ||
    intsAttr(n, 'output_shape')
  ) {
    const what = general ? 'explicit pads' : 'stride 1, dilation 1, group 1';
    throw new Error(`autodiff: ${n.op} gradient supports ${what} and explicit pads only (node ${n.name})`);
  }
  const spatialAxes = Array.from({ length: nd }, (_, i) => i + 2);
  return {
    nd,
    kernel: intsAttr(n, 'kernel_shape') ?? ctx.shape(n.inputs[1]!).slice(2),
    pads: intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0),
    spatialAxes,
    strides: intsAttr(n, 'strides') ?? new Array<number>(nd).fill(1),
    dilations: intsAttr(n, 'dilations') ?? new Array<number>(nd).fill(1),
    group: intAttr(n, 'group', 1),
  };
}

/**
 * The weight gradient of a stride-1 correlation, dW[m, c, k] = Σ_{n,p} a[n, m, p] · xpad[n, c, p + k], for
 * a [N, M, ...outSpatial] and x [N, C, ...spatial] in their own channels-first layout: per kernel offset k,
 * one batched MatMul of a [N, M, P] with the shifted x as [N, P, C] (the transpose fuses into the MatMul),
 * the offsets stacked and summed over N. Measured 1.8× faster than transposing both to channel rows for a
 * Gemm per offset (scripts/profile-train.ts, the 900-d conv1d field), where the transposes cost as much as
 * the products.
 */
function correlationWeightGrad(
  ctx: GradContext,
  a: string,
  x: string,
  xShape: readonly number[],
  conv: ConvAttrs,
  outSpatial: readonly number[],
  wShape: readonly number[],
): string {
  const { b } = ctx;
  const [M, C] = [wShape[0]!, wShape[1]!];
  const N = xShape[0]!;
  const P = prod(outSpatial);
  // Grouped: channels split [G, ·] and the products batched over the groups, dW [G, M/G, C, …] = [M, C, …].
  const G = conv.group;
  const grouped = G > 1;
  const rows = (v: string) => b.op('Reshape', [v, b.int64s(grouped ? [N, G, C, P] : [N, C, P])]);
  const perm = attr.ints(grouped ? [0, 1, 3, 2] : [0, 2, 1]);
  const aFlat = b.op('Reshape', [a, b.int64s(grouped ? [N, G, M / G, P] : [N, M, P])]);
  const paddedSpatial = xShape.slice(2).map((d, i) => d + conv.pads[i]! + conv.pads[conv.nd + i]!);
  const padded = conv.pads.some((p) => p !== 0)
    ? b.op('Pad', [x, b.int64s([0, 0, ...conv.pads.slice(0, conv.nd), 0, 0, ...conv.pads.slice(conv.nd)])])
    : x;
  const offsets: number[][] = [[]];
  for (const k of conv.kernel)
    offsets.splice(0, offsets.length, ...offsets.flatMap((o) => Array.from({ length: k }, (_, j) => [...o, j])));
  const unitGeometry = allOne(conv.strides) && allOne(conv.dilations);
  const parts = offsets.map((o) => {
    if (!unitGeometry) {
      // Strided / dilated: xpad[n, c, s·p + d·k] for p over the output, a strided slice per kernel offset.
      const start = o.map((v, i) => v * conv.dilations[i]!);
      const end = start.map((v, i) => v + conv.strides[i]! * (outSpatial[i]! - 1) + 1);
      const picked = b.op('Slice', [
        padded,
        b.int64s(start),
        b.int64s(end),
        b.int64s(conv.spatialAxes),
        b.int64s(conv.strides),
      ]);
      return b.op('MatMul', [aFlat, b.op('Transpose', [rows(picked)], { perm })]);
    }
    const whole = o.every((v, i) => v === 0 && paddedSpatial[i] === outSpatial[i]);
    // The offset that lines x up with the output unshifted reads x itself (no copy).
    const unshifted = o.every((v, i) => v === conv.pads[i] && xShape[i + 2] === outSpatial[i]);
    const shifted = whole
      ? padded
      : unshifted
        ? x
        : b.op('Slice', [
            padded,
            b.int64s(o),
            b.int64s(o.map((v, i) => v + outSpatial[i]!)),
            b.int64s(conv.spatialAxes),
          ]);
    const rowsT = b.op('Transpose', [rows(shifted)], { perm });
    return b.op('MatMul', [aFlat, rowsT]); // [N, M, C] ([N, G, M/G, C] grouped)
  });
  const stacked =
    parts.length === 1
      ? parts[0]!
      : b.op(
          'Concat',
          parts.map((p) => b.op('Unsqueeze', [p, b.int64s([grouped ? 4 : 3])])),
          { axis: attr.int(grouped ? 4 : 3) },
        );
  return b.op('Reshape', [b.op('ReduceSum', [stacked, b.int64s([0])], { keepdims: attr.int(0) }), b.int64s(wShape)]);
}

/** The bias gradient of a convolution: g [N, M, ...spatial] summed over every axis but the channels. */
function channelSum(ctx: GradContext, g: string, rank: number): string {
  return ctx.b.op('ReduceSum', [g, ctx.b.int64s([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)])], {
    keepdims: attr.int(0),
  });
}

const convGrad: GradientRule = (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [X, W, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  const a = convAttrs(ctx, true);
  const sw = ctx.shape(W);
  let dX: string | undefined;
  let dW: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0] && !(allOne(a.strides) && allOne(a.dilations) && a.group === 1)) {
    // The adjoint of a strided / dilated / grouped Conv is the ConvTranspose of the same geometry and groups (its
    // weight [M, C/G, …] read as [in, out/G, …]), its output padded to x's size.
    const xs = ctx.shape(X).slice(2);
    const ys = ctx.shape(n.outputs[0]!).slice(2);
    const outPad = xs.map(
      (d, i) =>
        d - ((ys[i]! - 1) * a.strides[i]! - a.pads[i]! - a.pads[a.nd + i]! + (a.kernel[i]! - 1) * a.dilations[i]! + 1),
    );
    const geometry = {
      kernel_shape: attr.ints(a.kernel),
      pads: attr.ints(a.pads),
      strides: attr.ints(a.strides),
      dilations: attr.ints(a.dilations),
      ...(a.group > 1 ? { group: attr.int(a.group) } : {}),
    };
    dX = b.op('ConvTranspose', [g!, W], {
      ...geometry,
      ...(outPad.some((p) => p !== 0) ? { output_padding: attr.ints(outPad) } : {}),
    });
  } else if (needs[0]) {
    if (a.pads.every((p, i) => p <= a.kernel[i % a.nd]! - 1)) {
      // dX = dY ⋆ flip(Wᵀ) with pads K−1−p: a plain convolution (measured faster than ConvTranspose
      // on the CPU provider); the flipped weight is made once and shared by every stage.
      const wf = flippedWeight(b, W, () => W, a.kernel, a.spatialAxes);
      dX = b.op('Conv', [g!, wf], {
        kernel_shape: attr.ints(a.kernel),
        pads: attr.ints(a.pads.map((p, i) => a.kernel[i % a.nd]! - 1 - p)),
      });
    } else {
      dX = b.op('ConvTranspose', [g!, W], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads) });
    }
  }
  if (needs[1]) dW = correlationWeightGrad(ctx, g!, X, ctx.shape(X), a, ctx.shape(n.outputs[0]!).slice(2), sw);
  if (B !== undefined && B !== '' && needs[2]) dB = channelSum(ctx, g!, ctx.shape(n.outputs[0]!).length);
  return [dX, dW, dB];
};

/**
 * A weight in the blocked Conv's layout (graph-ops.ts: blockedWeight) back in [O, I, kh, kw] (O padded to the block).
 */
function unblockedWeight(b: GraphBuilder, wb: string, shape: readonly number[]): string {
  const bl = b.nchwcBlock;
  const [o, i, kh, kw] = shape as [number, number, number, number];
  const plain =
    i < bl
      ? b.op('Transpose', [b.op('Reshape', [wb, b.int64s([o / bl, i, kh, kw, bl])])], {
          perm: attr.ints([0, 4, 1, 2, 3]),
        })
      : b.op('Transpose', [b.op('Reshape', [wb, b.int64s([o / bl, i / bl, kh, kw, bl, bl])])], {
          perm: attr.ints([0, 5, 1, 4, 2, 3]),
        });
  return b.op('Reshape', [plain, b.int64s(shape)]);
}

/**
 * onnxruntime's blocked Conv (written by graph-ops.ts: convStack): x plain NCHW when it has fewer channels
 * than a block, else blocked; y blocked, its channels padded to whole blocks; optional fused ReLU.
 * dX is a blocked Conv of g with the flipped, transposed weight (reordered once per builder and shared by
 * every stage); dW is the plain correlation of g and x reordered to NCHW, then put in the weight's layout.
 */
const nchwcConvGrad: GradientRule = (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const bl = b.nchwcBlock;
  if (!(bl > 1)) throw new Error(`autodiff: ${n.name} is a blocked Conv but the graph has no NCHWc block size`);
  const [X, Wb, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  if (n.inputs[3]) throw new Error(`autodiff: ${n.name}: the blocked Conv's fused Sum input has no gradient rule`);
  const act = n.attrs.activation;
  if (act && (act.kind !== 'string' || act.value !== 'Relu'))
    throw new Error(`autodiff: ${n.name}: only a fused Relu activation has a gradient rule`);
  const gy = act ? reluGrad(ctx, g!, n.outputs[0]!) : g!;
  const a = convAttrs(ctx);
  const wShape = ctx.shape(Wb);
  const [o, ci] = [wShape[0]!, wShape[1]!];
  const xShape = ctx.shape(X);
  const ySpatial = ctx.shape(n.outputs[0]!).slice(2);
  const needsB = B !== undefined && B !== '' && needs[2];
  if (ci < bl && a.kernel.every((k) => k === 1))
    return pointwiseFromPlainGrads(ctx, gy, X, Wb, xShape, wShape, [needs[0]!, needs[1]!, needsB]);
  let dX: string | undefined;
  let dW: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0]) {
    if (a.pads.some((p, i) => p > a.kernel[i % a.nd]! - 1))
      throw new Error(`autodiff: ${n.name}: pads wider than kernel − 1 have no gradient rule`);
    // dX = dY ⋆ flip(Wᵀ) with pads K−1−p, as for the plain Conv, the flipped weight reordered back.
    const wf = flippedWeight(
      b,
      Wb,
      () => unblockedWeight(b, Wb, wShape),
      a.kernel,
      a.spatialAxes,
      (t) => blockedWeight(b, t, [ci, o, ...a.kernel]),
    );
    const gx = b.op(NCHWC_CONV, [gy, wf], {
      kernel_shape: attr.ints(a.kernel),
      pads: attr.ints(a.pads.map((p, i) => a.kernel[i % a.nd]! - 1 - p)),
    });
    dX = ci < bl ? b.op(NCHWC_REORDER_OUTPUT, [gx], { channels: attr.int(ci) }) : gx;
  }
  // Reduced in the plain layout: summing a blocked tensor over all but its channels measured 2× slower.
  const gPlain = needs[1] || needsB ? b.op(NCHWC_REORDER_OUTPUT, [gy], { channels: attr.int(o) }) : undefined;
  if (needs[1]) {
    const xPlain = ci < bl ? X : b.op(NCHWC_REORDER_OUTPUT, [X], { channels: attr.int(ci) });
    // Every stage's term is summed in the plain layout and reordered once.
    dW = {
      kind: 'mapped',
      g: correlationWeightGrad(ctx, gPlain!, xPlain, xShape, a, ySpatial, wShape),
      key: `nchwc-weight:${Wb}`,
      map: (sum, out) => blockedWeight(b, sum, wShape, out),
    };
  }
  if (needsB) dB = channelSum(ctx, gPlain!, xShape.length);
  return [dX, dW, dB];
};

/**
 * A 1×1 blocked Conv reading a plain input x [N, ci, …] (ci < block): its gradients as products over the
 * output blocks of g viewed [N, O/bl, HW, bl], so nothing is reordered. dW comes out [O/bl, ci, bl], the
 * weight's own blocked layout for 1×1 kernels.
 */
function pointwiseFromPlainGrads(
  ctx: GradContext,
  g: string,
  X: string,
  Wb: string,
  xShape: readonly number[],
  wShape: readonly number[],
  needs: readonly [boolean, boolean, boolean],
): [string?, string?, string?] {
  const { b } = ctx;
  const bl = b.nchwcBlock;
  const [o, ci] = [wShape[0]!, wShape[1]!];
  const n = xShape[0]!;
  const hw = prod(xShape.slice(2));
  const gv = b.op('Reshape', [g, b.int64s([n, o / bl, hw, bl])]);
  let dX: string | undefined;
  if (needs[0]) {
    // [O/bl, bl, ci]
    const w = b.op('Transpose', [b.op('Reshape', [Wb, b.int64s([o / bl, ci, bl])])], { perm: attr.ints([0, 2, 1]) });
    const rows = b.op('ReduceSum', [b.op('MatMul', [gv, w]), b.int64s([1])], { keepdims: attr.int(0) }); // [N, HW, ci]
    dX = b.op('Reshape', [
      ci === 1 ? rows : b.op('Transpose', [rows], { perm: attr.ints([0, 2, 1]) }),
      b.int64s(xShape),
    ]);
  }
  const dW = needs[1]
    ? b.op('Reshape', [
        b.op('ReduceSum', [b.op('MatMul', [b.op('Reshape', [X, b.int64s([n, 1, ci, hw])]), gv]), b.int64s([0])], {
          keepdims: attr.int(0),
        }),
        b.int64s(wShape),
      ])
    : undefined;
  const dB = needs[2]
    ? b.op('Reshape', [
        b.op('ReduceSum', [b.op('MatMul', [b.scalar(1, [1, hw]), gv]), b.int64s([0])], { keepdims: attr.int(0) }),
        b.int64s([o]),
      ])
    : undefined;
  return [dX, dW, dB];
}

// Reordering is a permutation (plus zero channels on the way back): each one's adjoint is the other.
const reorderInputGrad: GradientRule = (ctx, [g]) => [
  ctx.b.op(NCHWC_REORDER_OUTPUT, [g!], { channels: attr.int(ctx.shape(ctx.node.inputs[0]!)[1]!) }),
];

const reorderOutputGrad: GradientRule = (ctx, [g]) => {
  const { b, node: n } = ctx;
  const padded = ctx.shape(n.inputs[0]!)[1]!;
  const c = ctx.shape(n.outputs[0]!)[1]!;
  const rank = ctx.shape(n.inputs[0]!).length;
  const pads = new Array<number>(2 * rank).fill(0);
  pads[rank + 1] = padded - c;
  const full = padded === c ? g! : b.op('Pad', [g!, b.int64s(pads)]);
  return [b.op(NCHWC_REORDER_INPUT, [full])];
};

const convTransposeGrad: GradientRule = (ctx, [g], needs) => {
  const { b, node: n } = ctx;
  const [X, W, B] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]];
  const a = convAttrs(ctx);
  const sw = ctx.shape(W); // [Cin, Cout, ...kernel]
  // ConvTranspose(·; W, p) is the adjoint of Conv(·; W, p): its input gradient is that convolution.
  const dX = needs[0]
    ? b.op('Conv', [g!, W], { kernel_shape: attr.ints(a.kernel), pads: attr.ints(a.pads) })
    : undefined;
  // dW[i, o, k] = Σ_{n,p} X[n, i, p] · dYpad[n, o, p + k].
  const dW = needs[1]
    ? correlationWeightGrad(ctx, X, g!, ctx.shape(n.outputs[0]!), a, ctx.shape(X).slice(2), sw)
    : undefined;
  const dB = B !== undefined && B !== '' && needs[2] ? channelSum(ctx, g!, ctx.shape(n.outputs[0]!).length) : undefined;
  return [dX, dW, dB];
};

function convShape(ctx: ShapeContext): void {
  const n = ctx.node;
  const x = ctx.get(0).shape;
  const w = ctx.get(1).shape;
  const nd = x.length - 2;
  const kernel = intsAttr(n, 'kernel_shape') ?? w.slice(2);
  const pads = intsAttr(n, 'pads') ?? new Array<number>(2 * nd).fill(0);
  const strides = intsAttr(n, 'strides') ?? new Array<number>(nd).fill(1);
  const dil = intsAttr(n, 'dilations') ?? new Array<number>(nd).fill(1);
  const group = intAttr(n, 'group', 1);
  const transpose = n.op === 'ConvTranspose';
  const spatial = x.slice(2).map((s, i) => {
    const k = (kernel[i]! - 1) * dil[i]! + 1;
    if (!transpose) return Math.floor((s + pads[i]! + pads[nd + i]! - k) / strides[i]!) + 1;
    const outPad = intsAttr(n, 'output_padding')?.[i] ?? 0;
    return strides[i]! * (s - 1) + outPad + k - pads[i]! - pads[nd + i]!;
  });
  const channels = !transpose ? w[0]! : w[1]! * group;
  ctx.set({ dtype: ctx.get(0).dtype, shape: [x[0]!, channels, ...spatial] });
}

export const CONV_OPS: readonly OpDef[] = [
  { name: 'Conv', inferShape: convShape, grad: convGrad },
  { name: 'ConvTranspose', inferShape: convShape, grad: convTransposeGrad },
  { name: NCHWC_CONV, inferShape: convShape, grad: nchwcConvGrad },
  {
    name: NCHWC_REORDER_INPUT,
    inferShape: (ctx) => ctx.set({ dtype: ctx.get(0).dtype, shape: ctx.get(0).shape }),
    grad: reorderInputGrad,
  },
  {
    name: NCHWC_REORDER_OUTPUT,
    inferShape: (ctx) => {
      const x = ctx.get(0).shape;
      ctx.set({ dtype: ctx.get(0).dtype, shape: [x[0]!, intAttr(ctx.node, 'channels', x[1]!), ...x.slice(2)] });
    },
    grad: reorderOutputGrad,
  },
];
