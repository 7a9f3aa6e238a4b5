/**
 * Compiled Runge–Kutta steps for adaptive training on onnxruntime.
 *
 * The step graph is written by the integrate loop's own `rkStep`
 * (src/solvers/integrate.ts), driven with graph values whose step
 * coefficients are graph INPUTS: rkStep runs once with h = 1, so every
 * coefficient it forms is a tableau entry a, and the graph multiplies by
 * input slot k instead; at run time the driver feeds coef[k] = a·h, the same
 * float64 product (rounded to the graph's float type) that the numeric
 * engines form. Stage times t + c_i·h are inputs too (time fields). So one
 * graph serves every step size, and there is still one RK implementation.
 *
 *   step:      z, k1, coef, [ts], field params → z1, err, [kLast (FSAL)]
 *   step VJP:  the same + cotangents gz1, [gkLast] → grad/z, grad/k1, grad/<param>
 *   field VJP: z, [t], field params, gk → grad/z, grad/<param>
 *
 * The VJP graphs recompute the step's stages from the stored (z, k1): the
 * accepted states are the checkpoints of the backward pass.
 */
import { fieldKind } from '../../models/fields/index.js';
import type { ModelConfig } from '../../models/types.js';
import { rkStep, isStepCall } from '../../solvers/integrate.js';
import type { Tableau } from '../../solvers/tableau.js';
import type { VectorOps } from '../../solvers/vector.js';
import { appendGradients } from '../../graph/autodiff/gradients.js';
import { GraphBuilder, type FloatType } from '../../graph/ir/graph.js';
import { appendField } from './model-graphs.js';
import { architectureModel, GRAD_PREFIX, paramsToInputs } from './train-graph.js';

export interface StepGraph {
  readonly builder: GraphBuilder;
  /** Field parameter names; each is a graph input of that name. */
  readonly params: readonly string[];
  /** Tableau entries whose products with h feed the `coef` input, in slot order. */
  readonly coefficients: readonly number[];
  /** True when the graph takes stage times `ts` [stages] (time fields). */
  readonly timeInput: boolean;
  readonly fsal: boolean;
  readonly adaptive: boolean;
}

export interface StepGraphOptions {
  readonly batch: number;
  readonly float?: FloatType;
  /** Write the vector-Jacobian product of the step instead of the step. */
  readonly vjp?: boolean;
  /**
   * onnxruntime's NCHWc block for graphs only this machine's onnxruntime runs (src/onnx/nchwc.ts); default 0, portable.
   */
  readonly nchwcBlock?: number;
}

/** Graph ops whose every nonzero coefficient is read from slot k of the `coef` input. */
function slotOps(b: GraphBuilder, coef: string, templates: number[]): VectorOps<string> {
  return {
    combine(base, coeffs, terms) {
      let acc = base;
      for (let j = 0; j < coeffs.length; j++) {
        const c = coeffs[j]!;
        if (c === 0) continue;
        const k = templates.push(c) - 1;
        const slot = b.op('Slice', [coef, b.int64s([k]), b.int64s([k + 1])]);
        const term = b.op('Mul', [terms[j]!, slot]);
        acc = acc === undefined ? term : b.op('Add', [acc, term]);
      }
      if (acc === undefined) throw new Error('step graph: a combination with every coefficient zero');
      return acc;
    },
    scaledRms() {
      throw new Error('step graph: norms are taken at run time');
    },
    allFinite() {
      throw new Error('step graph: finiteness is checked at run time');
    },
  };
}

function fieldParams(config: ModelConfig): string[] {
  return Object.keys(architectureModel(config).params).filter((n) => n.startsWith('field.'));
}

/** The step (or its VJP) of a tableau for a model architecture and batch size. */
export function stepGraph(config: ModelConfig, tab: Tableau, options: StepGraphOptions): StepGraph {
  const model = architectureModel(config);
  const time = fieldKind(config.field).usesTime(config.field);
  const b = new GraphBuilder({
    name: options.vjp ? 'step_vjp' : 'step',
    float: options.float,
    nchwcBlock: options.nchwcBlock,
  });
  const shape = [options.batch, ...config.stateShape];
  const z = b.input('z', b.float, shape);
  const k1 = b.input('k1', b.float, shape);
  const coef = b.input('coef', b.float, [0]);
  const ts = time ? b.input('ts', b.float, [tab.c.length]) : undefined;
  const templates: number[] = [];
  const ops = slotOps(b, coef, templates);
  // rkStep with t = 0, h = 1: stage i asks for f at c_i; its time comes from ts[i].
  const gen = rkStep(ops, tab, 0, z, 1, k1, false);
  let stage = 0;
  let r = gen.next();
  while (!r.done) {
    if (isStepCall(r.value)) throw new Error('step graph: rkStep offered a nested step');
    stage++;
    const t = ts === undefined ? undefined : b.op('Slice', [ts, b.int64s([stage]), b.int64s([stage + 1])]);
    r = gen.next(appendField(b, model, r.value.z, t));
  }
  const out = r.value;
  // Now that rkStep has run, the number of coefficient slots is known.
  const ci = b.inputs.findIndex((v) => v.name === 'coef');
  b.inputs[ci] = { name: 'coef', dtype: b.float, shape: [templates.length] };
  const params = fieldParams(config);
  paramsToInputs(b, params);
  if (!options.vjp) {
    b.output('z1', b.float, shape, out.z1);
    if (tab.bErr) b.output('err', b.float, shape, out.err!);
    if (tab.fsal) b.output('kLast', b.float, shape, out.kLast);
  } else {
    const gz1 = b.input('gz1', b.float, shape);
    let loss = b.op('ReduceSum', [b.op('Mul', [out.z1, gz1])], { keepdims: { kind: 'int', value: 0 } });
    if (tab.fsal) {
      const gk = b.input('gkLast', b.float, shape);
      loss = b.op('Add', [
        loss,
        b.op('ReduceSum', [b.op('Mul', [out.kLast, gk])], { keepdims: { kind: 'int', value: 0 } }),
      ]);
    }
    const { grads } = appendGradients(b, loss, [z, k1, ...params], { names: (w) => `${GRAD_PREFIX}${w}` });
    b.output(grads[z]!, b.float, shape);
    b.output(grads[k1]!, b.float, shape);
    for (const p of params) b.output(grads[p]!, b.float, model.params[p]!.shape);
  }
  return { builder: b, params, coefficients: templates, timeInput: time, fsal: tab.fsal, adaptive: tab.adaptive };
}

/** f's vector-Jacobian product: z, [t [1]], field params, gk → grad/z, grad/<param>. */
export function fieldVjpGraph(
  config: ModelConfig,
  options: { batch: number; float?: FloatType; nchwcBlock?: number },
): { builder: GraphBuilder; params: readonly string[]; timeInput: boolean } {
  const model = architectureModel(config);
  const time = fieldKind(config.field).usesTime(config.field);
  const b = new GraphBuilder({ name: 'field_vjp', float: options.float, nchwcBlock: options.nchwcBlock });
  const shape = [options.batch, ...config.stateShape];
  const z = b.input('z', b.float, shape);
  const t = time ? b.input('t', b.float, [1]) : undefined;
  const gk = b.input('gk', b.float, shape);
  const dz = appendField(b, model, z, t);
  const params = fieldParams(config);
  paramsToInputs(b, params);
  const loss = b.op('ReduceSum', [b.op('Mul', [dz, gk])], { keepdims: { kind: 'int', value: 0 } });
  const { grads } = appendGradients(b, loss, [z, ...params], { names: (w) => `${GRAD_PREFIX}${w}` });
  b.output(grads[z]!, b.float, shape);
  for (const p of params) b.output(grads[p]!, b.float, model.params[p]!.shape);
  return { builder: b, params, timeInput: time };
}
