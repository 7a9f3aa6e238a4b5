/**
 * The test reference for evaluation: a tfjs model's test accuracy and NFE
 * under each test solver, computed with tfjs instead of onnxruntime. The one
 * evaluation path of odeness (src/onnx/evaluate.ts) must give the same rows.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError, SpecError } from '../../src/errors.js';
import { buildTfModel } from '../../src/models/tf-model.js';
import { stateSize, type Model } from '../../src/models/types.js';
import { solverLabel, type SolverLabel, type SolverSpec } from '../../src/solvers/spec.js';
import { solve } from '../../src/solvers/integrate.js';
import { float32Ops } from '../../src/engines/typed.js';
import { chunkedSyncField, DEFAULT_MEMORY_BYTES, rowsWithin, WASM_MEMORY_CAP_BYTES } from '../../src/engines/memory.js';
import { fieldBytesPerSample } from '../../src/models/memory.js';

export interface EvalData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

export interface EvalRow extends SolverLabel {
  readonly accuracy: number;
  /** Field evaluations of one solve over a batch (mean over batches for adaptive solvers). */
  readonly nfe: number;
}

export function checkDataWidth(model: Model, data: EvalData, where: string): void {
  const width = model.config.inputShape.reduce((a, b) => a * b, 1);
  if (data.n === 0) throw new ShapeError(`${where}: no data points`);
  if (data.x.length !== data.n * width) {
    throw new ShapeError(
      `${where}: data rows have ${data.x.length / data.n} values but the model expects ${width} (input shape [${model.config.inputShape.join(', ')}])`,
    );
  }
}

export interface EvaluateModelOptions {
  /**
   * Samples per solve (default 1024). Adaptive solvers choose one step
   * sequence per solve, so this is part of what is measured; it does not
   * depend on the memory budget.
   */
  readonly batchSize?: number;
  /** Working memory of one field evaluation in bytes (default DEFAULT_MEMORY_BYTES; see engines/memory.ts). */
  readonly memoryBytes?: number;
}

/** Samples per solve of evaluateModel (and of the final test accuracy of training). */
export const EVAL_BATCH = 1024;

/**
 * Test accuracy and NFE of a model under each solver, in bounded memory: each
 * batch is solved on float32 typed arrays (the bundle path's engine) and the
 * field is evaluated by tfjs on chunks of rows sized from the memory budget,
 * each chunk's intermediates freed as soon as its values are read back.
 * Uses the tfjs backend in place: call `initBackend()` first (trainRun and the CLI do).
 */
export function evaluateModel(
  model: Model,
  data: EvalData,
  specs: readonly SolverSpec[],
  options: EvaluateModelOptions = {},
): EvalRow[] {
  checkDataWidth(model, data, 'evaluate');
  const batchSize = options.batchSize ?? EVAL_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new SpecError(`evaluation batch size must be a positive integer, got ${batchSize}`);
  const m = buildTfModel(model, false);
  const width = data.x.length / data.n;
  const S = stateSize(model.config);
  const { t0, t1 } = model.config;
  const budget = Math.min(options.memoryBytes ?? DEFAULT_MEMORY_BYTES, WASM_MEMORY_CAP_BYTES);
  const chunk = rowsWithin(budget, fieldBytesPerSample(model.config) + 4 * width);
  const read = (t: tf.Tensor): Float32Array => {
    const out = t.dataSync() as Float32Array;
    t.dispose();
    return out;
  };
  const encode = (x: Float32Array, rows: number) =>
    read(tf.tidy(() => m.flatState(m.encode(tf.tensor2d(x, [rows, width])))));
  const predict = (z: Float32Array, rows: number) =>
    read(tf.tidy(() => tf.argMax(m.head(m.unflatState(tf.tensor2d(z, [rows, S]))), 1)));
  // makeField's weight re-layouts are made inside each call's tidy, so nothing outlives a call.
  const field = (rows: number) => (t: number, z: Float32Array) =>
    read(tf.tidy(() => m.flatState(m.makeField()(t, m.unflatState(tf.tensor2d(z, [rows, S]))))));
  /** Apply a per-row map in memory-sized chunks. */
  const inChunks = (
    v: Float32Array,
    inWidth: number,
    rows: number,
    map: (part: Float32Array, rows: number) => Float32Array | Int32Array,
    outWidth: number,
  ) => {
    const out = new Float32Array(rows * outWidth);
    for (let s = 0; s < rows; s += chunk) {
      const r = Math.min(chunk, rows - s);
      out.set(map(v.subarray(s * inWidth, (s + r) * inWidth), r), s * outWidth);
    }
    return out;
  };
  try {
    return specs.map((spec) => {
      let correct = 0;
      let nfeSum = 0;
      let batches = 0;
      for (let s = 0; s < data.n; s += batchSize) {
        const rows = Math.min(data.n, s + batchSize) - s;
        const z0 = inChunks(data.x.subarray(s * width, (s + rows) * width), width, rows, encode, S);
        const r = solve(float32Ops, chunkedSyncField(field, rows, S, chunk), z0, spec, { t0, t1 });
        const pred = inChunks(r.z1, S, rows, predict, 1);
        for (let i = 0; i < rows; i++) if (pred[i] === data.y[s + i]) correct++;
        nfeSum += r.stats.nfe;
        batches++;
      }
      return { ...solverLabel(spec, t0, t1), accuracy: correct / data.n, nfe: nfeSum / batches };
    });
  } finally {
    m.dispose();
  }
}
