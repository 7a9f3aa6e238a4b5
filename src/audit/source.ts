/**
 * A model to audit, whichever form it comes in: a model directory
 * (`odeness train`) or an ONNX bundle (exported, or trained elsewhere). Both
 * expose the same typed-array view — encoder, vector field, head — so every
 * audit runs the same integrate loop on the typed-array engine; a model
 * directory is opened as a temporary bundle, so both run in onnxruntime.
 */
import type { Device } from '../onnx/runtime/device.js';
import { SpecError, ShapeError } from '../errors.js';
import { checkLabelsFitModel } from '../data/limits.js';
import { loadDataset } from '../data/spec.js';
import { loadModel } from '../models/io.js';
import { readBundle } from '../onnx/bundle.js';
import type { AsyncField } from '../solvers/vector.js';
import { chunkedField, DEFAULT_MEMORY_BYTES, rowsWithin } from '../engines/memory.js';
import { fieldBytesPerSample, unknownFieldBytesPerSample } from '../models/memory.js';
import { writeTempBundle } from '../onnx/evaluate.js';

export interface ModelSource {
  /** The directory it came from. */
  readonly dir: string;
  readonly kind: 'model' | 'bundle';
  readonly stateShape: readonly number[];
  /** Values per input sample. */
  readonly inputWidth: number;
  readonly classes: number;
  readonly t0: number;
  readonly t1: number;
  readonly trainSolver?: string;
  readonly dataset?: string;
  readonly seed?: number | string;
  /** x [n × inputWidth] → z(t0) [n × S] (canonical CHW order). */
  encode(x: Float32Array, n: number): Promise<Float32Array>;
  /** The field as an async function of flat float32 states of n samples. */
  field(n: number): AsyncField<Float32Array>;
  /** z [n × S] → logits [n × classes]. */
  logits(z: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface SourceArgs {
  readonly model?: string;
  readonly bundle?: string;
  readonly threads?: number;
  /** Where the sessions run (default cpu). */
  readonly device?: Device;
  /** Working memory of one field evaluation in bytes (default DEFAULT_MEMORY_BYTES): field calls run on chunks of rows that fit it. */
  readonly memoryBytes?: number;
}

export async function openModelSource(args: SourceArgs): Promise<ModelSource> {
  if (Boolean(args.model) === Boolean(args.bundle)) throw new SpecError('give exactly one of --model <dir> or --bundle <dir>');
  if (args.bundle) return bundleSource(args.bundle, args);
  // A model directory is audited through onnxruntime as a temporary bundle (see withModelBundle).
  const saved = await loadModel(args.model!);
  const temp = await writeTempBundle(saved);
  try {
    const source = await bundleSource(temp.dir, args, fieldBytesPerSample(saved.config));
    return {
      ...source,
      dir: args.model!,
      kind: 'model',
      trainSolver: saved.training.solver,
      dataset: saved.training.dataset,
      seed: saved.training.seed,
      release: async () => {
        await source.release();
        await temp.remove();
      },
    };
  } catch (e) {
    await temp.remove();
    throw e;
  }
}

async function bundleSource(dir: string, args: SourceArgs, bytesPerSample?: number): Promise<ModelSource> {
  const b = await readBundle(dir, { threads: args.threads ?? 1, device: args.device ?? 'cpu' });
  const width = b.inputShape.reduce((a, c) => a * c, 1);
  const S = b.field.stateSize;
  // Field calls on chunks of rows that fit the memory budget (a fixed-batch file runs whole batches).
  const chunk = b.field.fixedBatch ?? rowsWithin(args.memoryBytes ?? DEFAULT_MEMORY_BYTES, bytesPerSample ?? unknownFieldBytesPerSample(S));
  return {
    dir,
    kind: 'bundle',
    stateShape: b.field.stateShape,
    inputWidth: width,
    classes: b.manifest.classes,
    t0: b.manifest.t0,
    t1: b.manifest.t1,
    trainSolver: b.manifest.trainSolver,
    dataset: b.manifest.dataset,
    seed: b.manifest.seed,
    encode: (x, n) => b.encode(x, n),
    field: (n) => chunkedField((rows) => b.field.asAsyncField(rows), n, S, chunk),
    logits: (z, n) => b.logits(z, n),
    release: () => b.release(),
  };
}

export interface AuditData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

/** The test split of `dataset` (a dataset spec, e.g. json:points.json:split=none), else of the dataset the model records. */
export async function auditData(source: ModelSource, dataset?: string, maxPoints?: number): Promise<AuditData> {
  let data: AuditData;
  if (dataset) data = (await loadDataset(dataset, source.seed ?? 0)).test;
  else if (source.dataset) data = (await loadDataset(source.dataset, source.seed ?? 0)).test;
  else throw new SpecError(`${source.dir} does not record its dataset; pass --dataset <spec>, e.g. --dataset json:points.json:split=none`);
  checkLabelsFitModel(dataset ?? source.dataset!, data.y, source.classes);
  if (data.n > 0 && data.x.length / data.n !== source.inputWidth) {
    throw new ShapeError(`${dataset ?? source.dataset}: data rows have ${data.x.length / data.n} values but ${source.dir} expects ${source.inputWidth}`);
  }
  if (maxPoints !== undefined && data.n > maxPoints) {
    const w = source.inputWidth;
    data = { x: data.x.slice(0, maxPoints * w), y: data.y.slice(0, maxPoints), n: maxPoints };
  }
  return data;
}
