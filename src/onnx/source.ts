/**
 * ModelSource: the one view of a model that evaluation and the audits use,
 * whichever form the model comes in — a model in memory (its graphs turned
 * into bytes and straight into onnxruntime sessions, no file system), a model
 * directory (`odeness train`), an ONNX bundle directory, or an effective
 * model (`export --effective`: x → logits, one solver unrolled, no field).
 */
import path from 'node:path';
import { SpecError } from '../errors.js';
import { chunkedField, DEFAULT_MEMORY_BYTES, rowsWithin } from '../engines/memory.js';
import { loadModel } from '../models/io.js';
import { fieldBytesPerSample, unknownFieldBytesPerSample } from '../models/memory.js';
import type { Model } from '../models/types.js';
import type { AsyncField } from '../solvers/vector.js';
import {
  BUNDLE_FORMAT_VERSION,
  bundleGraphs,
  isEffectiveDir,
  openBundle,
  readBundle,
  readEffective,
  type Bundle,
  type BundleMeta,
  type GraphPart,
} from './bundle.js';
import { product, type SessionOptions } from './session.js';

export interface ModelSource {
  /** Where it came from: a directory, or a label for a model in memory. */
  readonly dir: string;
  readonly kind: 'model' | 'bundle' | 'effective';
  readonly stateShape: readonly number[];
  /** Per-sample input shape, and its number of values. */
  readonly inputShape: readonly number[];
  readonly inputWidth: number;
  /** What takes the input, for messages: "DIR/encoder.onnx: input x". */
  readonly input: string;
  readonly classes: number;
  readonly t0: number;
  readonly t1: number;
  readonly trainSolver?: string;
  readonly dataset?: string;
  readonly seed?: number | string;
  /**
   * Samples per solve when evaluating: adaptive solvers choose one step
   * sequence per solve, so this is part of what is measured (model
   * directories: EVAL_BATCH, as training's own evaluation; bundles: whole batches up to 4096).
   */
  readonly batch: number;
  /** Whether the files were checked against hashes in a manifest (in-memory models: trivially). */
  readonly verified: boolean;
  /** Effective models only: the solver unrolled into the graph, the only one it is evaluated under. */
  readonly effectiveSolver?: string;
  /** x [n × inputWidth] → z(t0) [n × S] (canonical CHW order). */
  encode(x: Float32Array, n: number): Promise<Float32Array>;
  /** The field as an async function of flat float32 states of n samples. */
  field(n: number): AsyncField<Float32Array>;
  /** z [n × S] → logits [n × classes]; for an effective model x [n × inputWidth] → logits. */
  logits(z: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Samples per solve of a model's evaluation (and of training's final test accuracy). */
export const EVAL_BATCH = 1024;

/** Default samples per solve of a bundle: whole batches of up to 4096 samples, about 2^19 state values per run. */
export function defaultChunk(stateSize: number): number {
  return Math.max(1, Math.min(4096, Math.floor(2 ** 19 / stateSize)));
}

export interface SourceOptions extends SessionOptions {
  /**
   * Working memory of one field evaluation in bytes (default DEFAULT_MEMORY_BYTES): field calls run on chunks of rows
   * that fit it.
   */
  readonly memoryBytes?: number;
}

function fromBundle(
  b: Bundle,
  kind: ModelSource['kind'],
  options: SourceOptions,
  extra: { bytesPerSample?: number; batch?: number; label?: string },
): ModelSource {
  const S = b.field.stateSize;
  // Field calls on chunks of rows that fit the memory budget (a fixed-batch file runs whole batches).
  const chunk =
    b.field.fixedBatch ??
    rowsWithin(options.memoryBytes ?? DEFAULT_MEMORY_BYTES, extra.bytesPerSample ?? unknownFieldBytesPerSample(S));
  return {
    dir: extra.label ?? b.dir,
    kind,
    stateShape: b.field.stateShape,
    inputShape: b.inputShape,
    inputWidth: product(b.inputShape),
    input: b.encoder ? `${b.encoder.file}: input ${b.encoder.input.name}` : `${b.field.file}: input ${b.field.zName}`,
    classes: b.manifest.classes,
    t0: b.manifest.t0,
    t1: b.manifest.t1,
    trainSolver: b.manifest.trainSolver,
    dataset: b.manifest.dataset,
    seed: b.manifest.seed,
    batch: extra.batch ?? defaultChunk(S),
    verified: b.verified,
    encode: (x, n) => b.encode(x, n),
    field: (n) => chunkedField((rows) => b.field.asAsyncField(rows), n, S, chunk),
    logits: (z, n) => b.logits(z, n),
    release: () => b.release(),
  };
}

/**
 * A model held in memory as a source: its field, head and encoder graphs
 * written to bytes and opened as sessions (nothing touches the disk);
 * `label` names it in messages (e.g. the model directory).
 */
export async function memorySource(
  model: Model,
  meta: BundleMeta & { label?: string } = {},
  options: SourceOptions = {},
): Promise<ModelSource> {
  const label = meta.label ?? 'model';
  const parts = new Map<string, GraphPart>(
    [...bundleGraphs(model)].map(([name, bytes]) => [name, { file: `${label} (${name}, in memory)`, bytes }]),
  );
  const { t0, t1, stateShape, classes } = model.config;
  const given = { formatVersion: BUNDLE_FORMAT_VERSION, t0, t1, stateShape: [...stateShape], classes };
  const b = await openBundle(label, parts, given, undefined, options);
  const source = fromBundle({ ...b, verified: true }, 'model', options, {
    bytesPerSample: fieldBytesPerSample(model.config),
    batch: EVAL_BATCH,
    label,
  });
  const trainSolver =
    meta.trainSolver === undefined ? undefined : typeof meta.trainSolver === 'string' ? meta.trainSolver : undefined;
  return {
    ...source,
    ...(trainSolver ? { trainSolver } : {}),
    ...(meta.dataset ? { dataset: meta.dataset } : {}),
    ...(meta.seed !== undefined ? { seed: meta.seed } : {}),
  };
}

async function effectiveSource(dir: string, options: SourceOptions): Promise<ModelSource> {
  const e = await readEffective(dir, options);
  const m = e.manifest;
  const noField = (what: string) =>
    new SpecError(
      `${e.file} is an effective model (x → logits, ${e.solver} unrolled): it has no ${what}; give the bundle ` +
        `(export without --effective)`,
    );
  return {
    dir,
    kind: 'effective',
    stateShape: m.stateShape,
    inputShape: e.inputShape,
    inputWidth: product(e.inputShape),
    input: `${e.file}: input ${e.map.input.name}`,
    classes: m.classes,
    t0: m.t0,
    t1: m.t1,
    trainSolver: m.trainSolver,
    dataset: m.dataset,
    seed: m.seed,
    batch: defaultChunk(product(e.inputShape)),
    verified: true,
    effectiveSolver: e.solver,
    encode: () => Promise.reject(noField('separate encoder')),
    field: () => {
      throw noField('vector field');
    },
    logits: async (x, n) => (await e.map.run(x, n)).data,
    release: () => e.map.release(),
  };
}

export interface SourceArgs extends SourceOptions {
  readonly model?: string;
  readonly bundle?: string;
}

/** A model directory (--model) or a bundle or effective-model directory (--bundle). */
export async function openModelSource(args: SourceArgs): Promise<ModelSource> {
  if (Boolean(args.model) === Boolean(args.bundle))
    throw new SpecError('give exactly one of --model <dir> or --bundle <dir>');
  const options: SourceOptions = {
    threads: args.threads ?? 1,
    ...(args.memoryBytes !== undefined ? { memoryBytes: args.memoryBytes } : {}),
  };
  if (args.bundle) {
    if (await isEffectiveDir(args.bundle)) return effectiveSource(args.bundle, options);
    const b = await readBundle(args.bundle, options);
    return fromBundle(b, 'bundle', options, {});
  }
  const saved = await loadModel(args.model!);
  return memorySource(
    saved,
    {
      label: path.normalize(args.model!),
      trainSolver: saved.training.solver,
      dataset: saved.training.dataset,
      seed: saved.training.seed,
    },
    options,
  );
}

/** Refuse an effective model where a vector field is needed (the audits, solve). */
export function requireField(source: ModelSource, what: string): void {
  if (source.kind === 'effective') {
    throw new SpecError(
      `${source.dir}: ${what} needs the vector field, and ` +
        `an effective model (x → logits, ${source.effectiveSolver} ` +
        `unrolled) has none; give the bundle (export without --effective) or the model directory`,
    );
  }
}
