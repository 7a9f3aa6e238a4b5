/**
 * Op records of the matrix products, Gemm and MatMul. Their gradients use Gemm's transA/transB flags
 * instead of Transpose nodes, and weight gradients of plain products are lazy (LazyGrad rowsProduct) so
 * that every solver stage's term merges into one chain of Gemms.
 */
import { attr, floatAttr, intAttr, type Attr } from '../ir/attrs.js';
import { broadcast, type GradContext, type GradTerm, type OpDef } from './op.js';

export function gemmAttrs(transA: boolean, transB: boolean, alpha: number): Record<string, Attr> {
  const a: Record<string, Attr> = {};
  if (transA) a.transA = attr.int(1);
  if (transB) a.transB = attr.int(1);
  if (alpha !== 1) a.alpha = attr.float(alpha);
  return a;
}

/** Gradients of Y = alpha·op(A)·op(B) for 2-D operands, as Gemms with transpose flags (no Transpose nodes). */
function matmul2dGrads(
  ctx: GradContext,
  g: string,
  [A, B]: readonly [string, string],
  [tA, tB]: readonly [boolean, boolean],
  alpha: number,
  needs: readonly boolean[],
): [GradTerm | undefined, GradTerm | undefined] {
  const { b } = ctx;
  let dA: GradTerm | undefined;
  let dB: GradTerm | undefined;
  if (needs[0]) {
    // op(B)ᵀ = tB ? B : Bᵀ
    dA = tA ? b.op('Gemm', [B, g], gemmAttrs(tB, true, alpha)) : b.op('Gemm', [g, B], gemmAttrs(false, !tB, alpha));
  }
  if (needs[1]) {
    if (!tA && !tB) dB = { kind: 'rowsProduct', a: A, g, alpha };
    // B used transposed (PyTorch's Linear weight [out, in]): dB = gᵀ·A, the same merged product with a and g
    // swapped.
    else if (!tA && tB) dB = { kind: 'rowsProduct', a: g, g: A, alpha };
    else
      dB = tB ? b.op('Gemm', [g, A], gemmAttrs(true, tA, alpha)) : b.op('Gemm', [A, g], gemmAttrs(!tA, false, alpha));
  }
  return [dA, dB];
}

export const LINEAR_OPS: readonly OpDef[] = [
  {
    name: 'Gemm',
    inferShape: (ctx) => {
      const a = ctx.get(0).shape;
      const bb = ctx.get(1).shape;
      const M = intAttr(ctx.node, 'transA', 0) ? a[1]! : a[0]!;
      const N = intAttr(ctx.node, 'transB', 0) ? bb[0]! : bb[1]!;
      ctx.set({ dtype: ctx.get(0).dtype, shape: [M, N] });
    },
    grad: (ctx, [g], needs) => {
      const { node: n } = ctx;
      const alpha = floatAttr(n, 'alpha', 1);
      const beta = floatAttr(n, 'beta', 1);
      const trans = [intAttr(n, 'transA', 0) === 1, intAttr(n, 'transB', 0) === 1] as const;
      const [dA, dB] = matmul2dGrads(ctx, g!, [n.inputs[0]!, n.inputs[1]!], trans, alpha, needs);
      let dC: GradTerm | undefined;
      if (needs[2]) {
        const from = ctx.shape(n.outputs[0]!);
        const to = ctx.shape(n.inputs[2]!);
        dC =
          beta === 1
            ? { kind: 'reduce', g: g!, from, to }
            : ctx.b.op('Mul', [ctx.sumToShape(g!, from, to), ctx.scalar(beta)]);
      }
      return [dA, dB, dC];
    },
  },
  {
    name: 'MatMul',
    inferShape: (ctx) => {
      const a = ctx.get(0).shape;
      const bb = ctx.get(1).shape;
      if (a.length < 2 || bb.length < 2) throw new Error(`${ctx.where}: only operands of rank ≥ 2 are supported`);
      const batch = broadcast([a.slice(0, -2), bb.slice(0, -2)], ctx.where);
      ctx.set({ dtype: ctx.get(0).dtype, shape: [...batch, a[a.length - 2]!, bb[bb.length - 1]!] });
    },
    grad: (ctx, [g], needs) => {
      const { b, node: n } = ctx;
      const [A, B] = [n.inputs[0]!, n.inputs[1]!];
      const sa = ctx.shape(A);
      const sb = ctx.shape(B);
      if (sa.length === 2 && sb.length === 2) return matmul2dGrads(ctx, g!, [A, B], [false, false], 1, needs);
      const swap = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
      const sy = ctx.shape(n.outputs[0]!);
      const T = (x: string) => b.op('Transpose', [x], { perm: attr.ints(swap(ctx.shape(x).length)) });
      const dA = needs[0]
        ? ctx.sumToShape(b.op('MatMul', [g!, T(B)]), [...sy.slice(0, -1), sb[sb.length - 2]!], sa)
        : undefined;
      const dB = needs[1]
        ? ctx.sumToShape(b.op('MatMul', [T(A), g!]), [...sy.slice(0, -2), sa[sa.length - 1]!, sy[sy.length - 1]!], sb)
        : undefined;
      return [dA, dB];
    },
  },
];
