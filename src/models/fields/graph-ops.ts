/** ONNX building blocks shared by the field kinds (activations, stride-1 'same' convolutions). */
import { ShapeError } from '../../errors.js';
import { attr } from '../../graph/ir/attrs.js';
import { convByMatMul, softplus64 } from '../../graph/ir/float64.js';
import { blockable, blockedConvChain, chainChannels, type BlockedLayer } from '../../graph/ir/nchwc-ops.js';
import type { GraphWriter } from '../../graph/ir/writer.js';
import type { FieldGraphContext } from './kind.js';

export type Activation = 'tanh' | 'relu' | 'softplus';
export const ACTIVATIONS: readonly Activation[] = ['tanh', 'relu', 'softplus'];

export function activation(g: GraphWriter, kind: Activation, x: string): string {
  switch (kind) {
    case 'tanh':
      return g.op('Tanh', [x]);
    case 'relu':
      return g.op('Relu', [x]);
    case 'softplus':
      if (g.float === 'float32') return g.op('Softplus', [x]);
      // onnxruntime's CPU provider has no float64 Softplus.
      return softplus64(g, x);
  }
}

/**
 * Conv with stride 1 and 'same' padding for kernel 1 or 3 over 1 or 2 spatial
 * dims: x [B, Cin, ...spatial], weight [Cout, Cin, ...kernel], bias [Cout].
 * Float32 graphs use the Conv op; float64 graphs (onnxruntime's CPU provider
 * has no float64 Conv) contract channels with one MatMul per kernel offset.
 */
export function conv(
  g: GraphWriter,
  x: string,
  weight: string,
  bias: string,
  wShape: readonly number[],
  spatial: readonly number[],
  out?: string,
): string {
  const kernel = wShape.slice(2);
  const k = kernel[0]!;
  if (kernel.length !== spatial.length || kernel.some((d) => d !== k) || (k !== 1 && k !== 3)) {
    throw new Error(`conv: unsupported kernel [${kernel.join(', ')}] over spatial dims [${spatial.join(', ')}]`);
  }
  const pad = (k - 1) / 2;
  if (g.float === 'float32') {
    return g.op(
      'Conv',
      [x, weight, bias],
      { kernel_shape: attr.ints(kernel), pads: attr.ints(new Array(2 * kernel.length).fill(pad)) },
      out,
    );
  }
  const pads = new Array<number>(2 * kernel.length).fill(pad);
  return convByMatMul(g, x, weight, bias, wShape, { spatial, pads, dilations: kernel.map(() => 1) }, out);
}

/**
 * Conv layers 0…n−1 of a conv field, stride 1, 'same' padding, ReLU after every layer but the last:
 * x [B, C, ...spatial] (1 or 2 spatial dims) → [B, C', ...spatial]. With a usable NCHWc block, the blocked
 * chain of nchwc-ops.ts (the one imported Conv chains use too); otherwise plain Conv + Relu.
 */
export function convStack(
  ctx: FieldGraphContext,
  shapes: ReadonlyMap<string, readonly number[]>,
  x: string,
  layers: number,
  spatial: readonly number[],
  out?: string,
): string {
  const { g } = ctx;
  const shape = (l: number) => {
    const s = shapes.get(`field.${l}.weight`);
    if (!s) throw new ShapeError(`model: parameter field.${l}.weight is missing`);
    return s;
  };
  const ids = Array.from({ length: layers }, (_, l) => l);
  const blocked = ids.map((l): BlockedLayer => {
    const key = `field.${l}`;
    const ws = shape(l);
    return {
      key,
      shape: ws,
      weight: () => ctx.param(`${key}.weight`),
      bias: () => ctx.param(`${key}.bias`),
      pads: [...ws.slice(2), ...ws.slice(2)].map((k) => (k - 1) / 2),
      relu: l < layers - 1,
    };
  });
  if (blockable(g, chainChannels(blocked))) return blockedConvChain(g, x, blocked, spatial, out);
  let h = x;
  for (const l of ids)
    h =
      l < layers - 1
        ? g.op('Relu', [convLayer(ctx, shapes, h, l, spatial)])
        : convLayer(ctx, shapes, h, l, spatial, out);
  return h;
}

/** Layer l of a conv field: the layer's weight and bias parameters applied to x. */
export function convLayer(
  ctx: FieldGraphContext,
  shapes: ReadonlyMap<string, readonly number[]>,
  x: string,
  l: number,
  spatial: readonly number[],
  out?: string,
): string {
  const w = `field.${l}.weight`;
  const shape = shapes.get(w);
  if (!shape) throw new ShapeError(`model: parameter ${w} is missing`);
  return conv(ctx.g, x, ctx.param(w), ctx.param(`field.${l}.bias`), shape, spatial, out);
}

export function denseParams(name: string, i: number, o: number) {
  return [
    { name: `${name}.weight`, shape: [i, o], fanIn: i },
    { name: `${name}.bias`, shape: [o], fanIn: 0 },
  ];
}

export function convParams(name: string, o: number, i: number, kernel: number[]) {
  const k = kernel.reduce((a, b) => a * b, 1);
  return [
    { name: `${name}.weight`, shape: [o, i, ...kernel], fanIn: i * k },
    { name: `${name}.bias`, shape: [o], fanIn: 0 },
  ];
}
