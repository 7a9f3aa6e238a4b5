/** ONNX building blocks shared by the field kinds (activations, stride-1 'same' convolutions). */
import { ShapeError } from '../../errors.js';
import { attr, type FieldGraphContext, type GraphWriter } from './kind.js';

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
      // onnxruntime's CPU provider has no float64 Softplus: relu(x) + log(1 + exp(−|x|)), the stable form.
      return g.op('Add', [g.op('Relu', [x]), g.op('Log', [g.op('Add', [g.scalar(1), g.op('Exp', [g.op('Neg', [g.op('Abs', [x])])])])])]);
  }
}

/**
 * Conv with stride 1 and 'same' padding for kernel 1 or 3 over 1 or 2 spatial
 * dims: x [B, Cin, ...spatial], weight [Cout, Cin, ...kernel], bias [Cout].
 * Float32 graphs use the Conv op; float64 graphs (onnxruntime's CPU provider
 * has no float64 Conv) contract channels with one MatMul per kernel offset.
 */
export function conv(g: GraphWriter, x: string, weight: string, bias: string, wShape: readonly number[], spatial: readonly number[], out?: string): string {
  const [cout, cin, ...kernel] = wShape as [number, number, ...number[]];
  const k = kernel[0]!;
  if (kernel.length !== spatial.length || kernel.some((d) => d !== k) || (k !== 1 && k !== 3)) {
    throw new Error(`conv: unsupported kernel [${kernel.join(', ')}] over spatial dims [${spatial.join(', ')}]`);
  }
  const pad = (k - 1) / 2;
  if (g.float === 'float32') {
    return g.op('Conv', [x, weight, bias], { kernel_shape: attr.ints(kernel), pads: attr.ints(new Array(2 * kernel.length).fill(pad)) }, out);
  }
  const P = spatial.reduce((a, c) => a * c, 1);
  const nd = spatial.length;
  const axes = spatial.map((_, i) => i + 2);
  const xp = pad === 0 ? x : g.op('Pad', [x, g.int64s([0, 0, ...spatial.map(() => pad), 0, 0, ...spatial.map(() => pad)])]);
  const offsets: number[][] = nd === 1 ? Array.from({ length: k }, (_, i) => [i]) : Array.from({ length: k * k }, (_, i) => [Math.floor(i / k), i % k]);
  let acc: string | undefined;
  for (const off of offsets) {
    const xs = pad === 0 ? xp : g.op('Slice', [xp, g.int64s(off), g.int64s(off.map((o, i) => o + spatial[i]!)), g.int64s(axes)]);
    const ws = k === 1 ? weight : g.op('Slice', [weight, g.int64s(off), g.int64s(off.map((o) => o + 1)), g.int64s(axes)]);
    const term = g.op('MatMul', [g.op('Reshape', [ws, g.int64s([cout, cin])]), g.op('Reshape', [xs, g.int64s([-1, cin, P])])]);
    acc = acc === undefined ? term : g.op('Add', [acc, term]);
  }
  const y = g.op('Add', [acc!, g.op('Reshape', [bias, g.int64s([cout, 1])])]);
  return g.op('Reshape', [y, g.int64s([-1, cout, ...spatial])], {}, out);
}

/** Layer l of a conv field: the layer's weight and bias parameters applied to x. */
export function convLayer(ctx: FieldGraphContext, shapes: ReadonlyMap<string, readonly number[]>, x: string, l: number, spatial: readonly number[], out?: string): string {
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
