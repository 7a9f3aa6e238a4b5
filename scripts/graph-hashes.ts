/**
 * SHA-1s of the graphs odeness writes (training, step and step VJP, field and field VJP, effective model,
 * head loss), for every field kind under 5 fixed solvers and dopri5, in float32 and float64, portable and
 * with onnxruntime's NCHWc block 8. A refactor of the ONNX compiler must leave every line unchanged:
 *
 *   npx tsx scripts/graph-hashes.ts > /tmp/hashes-before.txt   (before)
 *   npx tsx scripts/graph-hashes.ts | diff /tmp/hashes-before.txt -   (after)
 */
import { createHash } from 'node:crypto';
import { parseFieldSpec } from '../src/models/spec.js';
import type { ModelConfig } from '../src/models/types.js';
import type { FloatType, GraphBuilder } from '../src/onnx/graph.js';
import { effectiveModelGraph, fieldGraph } from '../src/onnx/model-graphs.js';
import { fieldVjpGraph, stepGraph } from '../src/onnx/step-graph.js';
import { architectureModel, headLossGraph, trainGraph } from '../src/onnx/train-graph.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

const CONFIGS: Record<string, ModelConfig> = {
  mlp: {
    inputShape: [2],
    augment: 1,
    stateShape: [3],
    classes: 2,
    field: parseFieldSpec('mlp:width=8,time'),
    t0: 0,
    t1: 1,
  },
  mlp_relu: {
    inputShape: [2],
    augment: 0,
    stateShape: [2],
    classes: 2,
    field: parseFieldSpec('mlp:width=8,depth=3,act=relu'),
    t0: 0,
    t1: 1,
  },
  mlp_softplus: {
    inputShape: [2],
    augment: 0,
    stateShape: [2],
    classes: 2,
    field: parseFieldSpec('mlp:width=8,act=softplus'),
    t0: 0,
    t1: 1,
  },
  conv1d: {
    inputShape: [6],
    augment: 0,
    stateShape: [6],
    classes: 2,
    field: parseFieldSpec('conv1d:channels=16'),
    t0: 0,
    t1: 1,
  },
  conv2d: {
    inputShape: [1, 4, 4],
    augment: 1,
    stateShape: [2, 4, 4],
    classes: 3,
    field: parseFieldSpec('conv2d:channels=16'),
    t0: 0,
    t1: 1,
  },
};
const FIXED = ['euler:steps=2', 'midpoint:steps=2', 'heun:steps=1', 'rk4:steps=2', 'rk4_38:steps=1'];
const ADAPTIVE = 'dopri5:rtol=1e-3,atol=1e-3';

const sha1 = (b: GraphBuilder) => createHash('sha1').update(b.toBytes()).digest('hex');
const lines: string[] = [];
/** A graph's hash, or its build error (Euler has no step graph: its one stage is the given k1). */
const put = (name: string, build: () => GraphBuilder) => {
  try {
    lines.push(`${sha1(build())}  ${name}`);
  } catch (e) {
    lines.push(`error: ${(e as Error).message}  ${name}`);
  }
};

for (const [kind, config] of Object.entries(CONFIGS)) {
  const model = architectureModel(config);
  for (const float of ['float32', 'float64'] as FloatType[]) {
    for (const block of float === 'float32' ? [0, 8] : [0]) {
      const tag = `${kind} ${float} nchwc=${block}`;
      const o = { batch: 4, float, nchwcBlock: block };
      put(`${tag} field`, () => fieldGraph(model, { float, nchwcBlock: block }));
      put(`${tag} field_vjp`, () => fieldVjpGraph(config, o).builder);
      put(`${tag} head_loss`, () => headLossGraph(config, { batch: 4, float }).builder);
      for (const s of [...FIXED, ADAPTIVE]) {
        const spec = parseSolverSpec(s);
        put(`${tag} ${s} step`, () => stepGraph(config, spec.method, o).builder);
        put(`${tag} ${s} step_vjp`, () => stepGraph(config, spec.method, { ...o, vjp: true }).builder);
        if (spec.kind !== 'fixed') continue;
        put(`${tag} ${s} train`, () => trainGraph(config, spec, o).builder);
        put(`${tag} ${s} loss`, () => trainGraph(config, spec, { ...o, gradients: false, logits: true }).builder);
        put(`${tag} ${s} effective`, () => effectiveModelGraph(model, spec, { float }));
      }
    }
  }
}
console.log(lines.join('\n'));
