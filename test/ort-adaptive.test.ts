/**
 * Adaptive solvers on the ort engine: from the same weights and batch, loss,
 * accuracy, accepted/rejected step counts, NFE and every gradient equal the
 * tfjs engine's (its tape through every accepted step) to float32 precision,
 * for every adaptive tableau and every field kind; in float64 the gradients
 * match central finite differences of the loss.
 *
 * tfjs-wasm has no Conv2DBackpropFilter kernel, so the tfjs reference of the
 * conv fields runs on tfjs's cpu backend.
 */
import test from 'ava';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import type { Model } from '../src/models/types.js';
import { parseSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import { ADAPTIVE_METHODS, getTableau } from '../src/solvers/tableau.js';
import { AdaptiveSessions } from '../src/train/ort-adaptive.js';
import { compareGrads, configFor, randomBatch, randomModel, tfjsLossAndGrads } from './helpers/ort-compare.js';

test.before(async () => {
  await initBackend('wasm');
});

const FIELDS: [field: string, shape: number[], augment: number, classes: number][] = [
  ['mlp:width=8,act=tanh,time', [3], 1, 3],
  ['mlp:width=8,act=softplus', [2], 0, 2],
  ['conv1d:channels=4', [3], 1, 3],
  ['conv2d:channels=4', [1, 4, 4], 1, 3],
  // Whole blocks of hidden channels: onnxruntime's NCHWc kernels where this machine has them.
  ['conv1d:channels=16', [5], 1, 3],
];

function encode(
  model: Model,
  x: Float32Array,
  batch: number,
  float: 'float32' | 'float64',
): Float32Array | Float64Array {
  const S = model.config.stateShape.reduce((a, b) => a * b, 1);
  const inW = x.length / batch;
  const z = float === 'float32' ? new Float32Array(batch * S) : new Float64Array(batch * S);
  // Zero-augmentation in the canonical layout: extra features / channels after the input's.
  for (let b = 0; b < batch; b++) for (let i = 0; i < inW; i++) z[b * S + i] = x[b * inW + i]!;
  return z;
}

function paramFeeds(
  model: Model,
  float: 'float32' | 'float64',
  override?: Record<string, Float64Array>,
): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, p] of Object.entries(model.params)) {
    const data = override?.[name] ?? (float === 'float32' ? Float32Array.from(p.data) : Float64Array.from(p.data));
    feeds[name] = new ort.Tensor(float, data, [...p.shape]);
  }
  return feeds;
}

async function ortAdaptive(
  model: Model,
  spec: SolverSpec,
  x: Float32Array,
  y: Int32Array,
  float: 'float32' | 'float64' = 'float32',
  override?: Record<string, Float64Array>,
) {
  const s = await AdaptiveSessions.create(model.config, getTableau(spec.method), y.length, { float });
  try {
    return await s.lossAndGrads(
      encode(model, x, y.length, float),
      BigInt64Array.from(y, (v) => BigInt(v)),
      spec,
      paramFeeds(model, float, override),
    );
  } finally {
    await s.release();
  }
}

for (const [field, shape, augment, classes] of FIELDS) {
  test.serial(
    `adaptive steps on ort: loss, step counts, NFE and every gradient equal tfjs's for ${field}`,
    async (t) => {
      const config = configFor(field, shape, augment, classes);
      const model = randomModel(config, 7);
      const { x, y } = randomBatch(config, 16, 3);
      t.deepEqual([...ADAPTIVE_METHODS].sort(), ['adaptive_heun', 'bosh3', 'dopri5', 'fehlberg2', 'tsit5']);
      const lines: string[] = [];
      let rejectedSomewhere = false;
      for (const method of ADAPTIVE_METHODS) {
        const spec = parseSolverSpec(`${method}:1e-4`);
        if (field.startsWith('conv')) await tf.setBackend('cpu');
        const ref = tfjsLossAndGrads(model, spec, x, y);
        await tf.setBackend('wasm');
        const got = await ortAdaptive(model, spec, x, y);
        t.deepEqual(got.stats, ref.stats, `${method}: accepted/rejected/NFE`);
        rejectedSomewhere ||= got.stats.rejected > 0;
        t.true(
          Math.abs(got.loss - ref.loss) <= 2e-6 * Math.max(1, Math.abs(ref.loss)),
          `${method}: loss ${got.loss} vs ${ref.loss}`,
        );
        t.is(got.accuracy, ref.accuracy, `${method}: accuracy`);
        // float32 rounding in a stage combination grows with the tableau's largest Σ_j |a_ij| (≈ 27 for tsit5, 1 for adaptive_heun).
        const kappa = Math.max(1, ...getTableau(method).a.map((row) => row.reduce((s, v) => s + Math.abs(v), 0)));
        t.deepEqual(Object.keys(got.grads).sort(), Object.keys(ref.grads).sort());
        const worst = compareGrads(
          got.grads,
          ref.grads,
          (scale) => 5e-6 * kappa * scale + 5e-7,
          (m) => t.fail(m),
          method,
        );
        lines.push(
          `${method}: ${got.stats.accepted} accepted, ${got.stats.rejected} rejected, nfe ${got.stats.nfe}; loss Δ ${Math.abs(got.loss - ref.loss).toExponential(1)}, worst gradient error ${worst.toExponential(1)}`,
        );
      }
      t.log(lines.join('\n'));
      if (field.startsWith('mlp:width=8,act=tanh'))
        t.true(rejectedSomewhere, 'some tableau rejected a step, so rejected steps are exercised');
    },
  );
}

test.serial('float64 adaptive gradients match central finite differences of the loss', async (t) => {
  const config = configFor('mlp:width=6,act=tanh,time', [2], 1, 2);
  const model = randomModel(config, 11);
  const { x, y } = randomBatch(config, 8, 5);
  // Fixed first step and tight tolerance: the step sequence stays put for ±ε, so the loss is smooth in the parameters.
  const spec = parseSolverSpec('dopri5:rtol=1e-7,atol=1e-7,firstStep=0.05');
  const base = await ortAdaptive(model, spec, x, y, 'float64');
  const eps = 1e-6;
  let checked = 0;
  for (const name of ['field.0.weight', 'field.1.bias', 'field.2.weight', 'head.weight']) {
    const p = model.params[name]!;
    for (const i of [0, Math.floor(p.data.length / 2), p.data.length - 1]) {
      const at = (d: number) => {
        const v = Float64Array.from(p.data);
        v[i]! += d;
        return ortAdaptive(model, spec, x, y, 'float64', { [name]: v });
      };
      const [plus, minus] = [await at(eps), await at(-eps)];
      t.deepEqual(plus.stats, base.stats, 'the step sequence did not change');
      t.deepEqual(minus.stats, base.stats, 'the step sequence did not change');
      const fd = (plus.loss - minus.loss) / (2 * eps);
      const g = base.grads[name]![i]!;
      t.true(
        Math.abs(fd - g) <= 1e-6 * Math.max(1, Math.abs(g)),
        `${name}[${i}]: autodiff ${g} vs finite difference ${fd}`,
      );
      checked++;
    }
  }
  t.is(checked, 12);
});
