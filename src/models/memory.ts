/**
 * How much memory one field evaluation of a model needs per sample — the
 * basis of every chunk size of memory-bounded evaluation (engines/memory.ts).
 * An over-estimate on purpose: tfjs keeps every intermediate of a call alive
 * until the call ends (tf.tidy), onnxruntime keeps a few at a time.
 */
import { fieldKind } from './fields/index.js';
import { stateSize, type ModelConfig } from './types.js';

/** Intermediates held at once in one tfjs field call, counted in hidden activations. */
const LIVE_ACTIVATIONS = 8;
/** State-sized tensors around a call: input, layout copies, output. */
const LIVE_STATES = 8;

/** Values of the widest hidden activation of the field, per sample (each field kind knows its own). */
export function hiddenValuesPerSample(config: ModelConfig): number {
  return fieldKind(config.field).hiddenValues(config.field, config.stateShape);
}

/** Bytes of working memory per sample of one float32 field evaluation. */
export function fieldBytesPerSample(config: ModelConfig): number {
  return 4 * (LIVE_ACTIVATIONS * hiddenValuesPerSample(config) + LIVE_STATES * stateSize(config));
}

/**
 * Bytes per sample when nothing is known about the field but its state size
 * (foreign ONNX bundles): as if it had 64 hidden channels per state value.
 */
export function unknownFieldBytesPerSample(stateValues: number): number {
  return 4 * (LIVE_ACTIVATIONS * 64 + LIVE_STATES) * stateValues;
}

/**
 * Widest hidden activation of one training micro-batch, in bytes: about one
 * core's L2 cache, so that a layer's output is still cached when the next
 * layer and the backward pass read it.
 */
export const MICRO_BATCH_BYTES = 2 * 1024 * 1024;
/** Smallest micro-batch worth a session run (keeps the matrix products fed). */
export const MIN_MICRO_BATCH = 8;

/**
 * The micro-batch a fixed-step training step runs in: the whole batch when
 * its widest activation fits MICRO_BATCH_BYTES, else the largest divisor of
 * the batch (≥ MIN_MICRO_BATCH) that fits; the gradients of the micro-batches
 * are averaged, which is the full batch's gradient. Measured on the paper's
 * 900-d conv1d field (batch 128, euler × 8): micro-batches of 16 run the step
 * 1.26× faster than one batch of 128 (scripts/profile-train.ts, interleaved),
 * and they bound its activation memory by the micro-batch.
 */
export function trainMicroBatch(config: ModelConfig, batch: number, bytes = MICRO_BATCH_BYTES): number {
  const perSample = 4 * hiddenValuesPerSample(config);
  if (batch * perSample <= bytes) return batch;
  const fit = Math.floor(bytes / perSample);
  for (let d = Math.min(fit, batch); d >= MIN_MICRO_BATCH; d--) if (batch % d === 0) return d;
  // No divisor fits: the smallest divisor from MIN_MICRO_BATCH on still bounds memory better than the batch.
  for (let d = MIN_MICRO_BATCH; d < batch; d++) if (batch % d === 0) return d;
  return batch;
}
