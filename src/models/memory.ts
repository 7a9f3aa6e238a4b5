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
