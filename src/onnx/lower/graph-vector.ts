/**
 * The integrate loop's vector operations over ONNX graph values: a value is
 * the name of a tensor in a GraphBuilder and `combine` appends the nodes
 * computing it. Driving the one integrate loop (src/solvers/integrate.ts)
 * with these ops and a field that appends its nodes writes a solve into a
 * graph — no second Runge–Kutta implementation.
 *
 * Norms and finiteness checks need values, which a graph being written does
 * not have: the step-size controller cannot run at build time (adaptive steps
 * are driven at run time, one compiled step at a time).
 */
import type { VectorOps } from '../../solvers/vector.js';
import type { GraphBuilder } from '../../graph/ir/graph.js';

export function graphOps(b: GraphBuilder): VectorOps<string> {
  return {
    /** base + Σ coeffs[j]·terms[j], skipping zero coefficients — the order the numeric engines use. */
    combine(base, coeffs, terms) {
      let acc = base;
      for (let j = 0; j < coeffs.length; j++) {
        const c = coeffs[j]!;
        if (c === 0) continue;
        const term = c === 1 ? terms[j]! : b.op('Mul', [terms[j]!, b.scalar(c)]);
        acc = acc === undefined ? term : b.op('Add', [acc, term]);
      }
      if (acc === undefined) throw new Error('graphOps.combine: every coefficient is zero');
      return acc;
    },
    scaledRms() {
      throw new Error(
        'graphOps: error norms need values; a graph being written has none (drive adaptive steps at run time)',
      );
    },
    allFinite() {
      throw new Error('graphOps: finiteness needs values; solve with checkFinite: false when writing a graph');
    },
  };
}
