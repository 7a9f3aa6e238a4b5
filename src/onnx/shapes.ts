/**
 * Static shape inference over the nodes of a GraphBuilder: the dtype and
 * shape of every value (and the values of small int64 tensors — Reshape
 * targets, Shape, Concat of them), which the gradient rules need because
 * every graph odeness differentiates has fixed dimensions. Each op's rule is
 * its record's `inferShape` (src/onnx/ops/).
 */
import type { GraphBuilder } from './graph.js';
import { opDef, type ShapeContext, type ShapeMap, type ValueMeta } from './ops/index.js';

export { broadcast, CAST_CODE, CAST_TO, FLOAT_TYPES, normAxis, prod, reduceAxes, slicePlan } from './ops/index.js';
export type { ElemType, ShapeMap, ValueMeta } from './ops/index.js';

/**
 * Static dtype and shape of every value of the graph (inputs must have fixed
 * dims). Small int64 values (shapes, axes) are folded so Reshape / Expand
 * targets are known.
 */
export function inferShapes(b: GraphBuilder, upTo = b.nodes.length): ShapeMap {
  const m: ShapeMap = new Map();
  for (const i of b.inputs) {
    if (i.shape.some((d) => typeof d !== 'number')) {
      throw new Error(`autodiff: graph input ${i.name} has symbolic dims [${i.shape.join(', ')}]; differentiation needs fixed shapes`);
    }
    m.set(i.name, { dtype: i.dtype, shape: i.shape as number[] });
  }
  for (const init of b.initializers.values()) {
    m.set(init.name, {
      dtype: init.dtype,
      shape: init.shape,
      value: init.dtype === 'int64' && init.data.length <= 64 ? Array.from(init.data as BigInt64Array, (v) => Number(v)) : undefined,
    });
  }
  for (let k = 0; k < upTo; k++) {
    const n = b.nodes[k]!;
    const where = `autodiff: node ${n.name} (${n.op})`;
    const get = (i: number): ValueMeta => {
      const name = n.inputs[i];
      const v = name === undefined || name === '' ? undefined : m.get(name);
      if (!v) throw new Error(`${where}: input ${i} (${name ?? 'absent'}) has no known shape`);
      return v;
    };
    const ctx: ShapeContext = {
      node: n,
      where,
      get,
      opt: (i) => (n.inputs[i] === undefined || n.inputs[i] === '' ? undefined : get(i)),
      known: (i) => {
        const v = get(i).value;
        if (!v) throw new Error(`${where}: input ${i} (${n.inputs[i]}) must be a constant int64 tensor`);
        return v;
      },
      set: (meta, out = 0) => m.set(n.outputs[out]!, meta),
    };
    const def = opDef(n.op);
    if (!def) throw new Error(`${where}: no shape rule for op "${n.op}"; add its record to src/onnx/ops/`);
    def.inferShape(ctx);
  }
  return m;
}
