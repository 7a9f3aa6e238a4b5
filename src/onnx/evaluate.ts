/**
 * Evaluation with onnxruntime — the one path: a model source (in memory, a
 * model directory, a bundle or an effective model: ./source.ts) evaluated on a
 * dataset under several solver configurations; and a field file solved from
 * given states. Every solve is the one integrate loop (solveAsync over float32
 * typed arrays); the NFE and step counts are the solve's own statistics.
 */
import path from 'node:path';
import { FileFormatError, ShapeError, SpecError } from '../errors.js';
import type { EvalRow } from '../formats/index.js';
import { countCorrect } from '../engines/predictions.js';
import { float32Ops } from '../engines/typed.js';
import { chunkedField, DEFAULT_MEMORY_BYTES, rowsWithin } from '../engines/memory.js';
import { unknownFieldBytesPerSample } from '../models/memory.js';
import { fixedSolveNfe } from '../solvers/solver.js';
import { solveAsync } from '../solvers/integrate.js';
import type { AsyncField } from '../solvers/vector.js';
import { checkStepBudget, formatSolverSpec, solverLabel, type SolverSpec } from '../solvers/spec.js';
import { checkFile, FILE_ROLE, MANIFEST_FILE, readManifest } from './bundle.js';
import { OnnxField, readOnnxFile, type SessionOptions } from './session.js';
import { openModelSource, type ModelSource, type SourceOptions } from './source.js';

export type { EvalRow } from '../formats/index.js';

export interface IntervalOptions {
  t0?: number;
  t1?: number;
}

export interface SolveFieldOptions extends IntervalOptions, SessionOptions {
  stateShape?: readonly number[];
  memoryBytes?: number;
  /** Stops the solve at its next field call. */
  signal?: AbortSignal;
  /** Field calls so far, of `total` for fixed-step solvers. */
  onProgress?: (calls: number, total?: number) => void;
}

export interface SolveFieldResult {
  /** State at t1, one row per initial state. */
  readonly z1: number[][];
  readonly nfe: number;
  readonly accepted: number;
  readonly rejected: number;
}

/** Solve an ONNX vector field from each row of z0 (all rows in one batch). */
export async function solveField(
  fieldFile: string,
  z0: readonly (readonly number[])[],
  spec: SolverSpec,
  options: SolveFieldOptions = {},
): Promise<SolveFieldResult> {
  const t0 = options.t0 ?? 0;
  const t1 = options.t1 ?? 1;
  checkStepBudget(spec, t0, t1);
  // A file beside a manifest that records it must be the field it records (not a head or an effective model).
  const bytes = await readOnnxFile(fieldFile);
  const dir = path.dirname(fieldFile);
  const manifest = await readManifest(dir);
  const name = path.basename(fieldFile);
  if (manifest?.files?.[name]) {
    checkFile(fieldFile, bytes, manifest, path.join(dir, MANIFEST_FILE));
    const role = manifest.files[name].role;
    if (role !== 'field')
      throw new FileFormatError(
        fieldFile,
        `${path.join(dir, MANIFEST_FILE)} records it as the ${role} of a model, not a vector field; solve needs a ` +
          `field.onnx`,
      );
  } else if (FILE_ROLE[name] && FILE_ROLE[name] !== 'field') {
    throw new FileFormatError(fieldFile, `a ${FILE_ROLE[name]} file, not a vector field; solve needs a field.onnx`);
  }
  const field = await OnnxField.load(fieldFile, { ...options, bytes });
  try {
    const S = field.stateSize;
    const n = z0.length;
    if (n === 0) throw new ShapeError(`${fieldFile}: no initial states given`);
    const flat = new Float32Array(n * S);
    z0.forEach((row, i) => {
      if (row.length !== S) {
        throw new ShapeError(
          `${fieldFile}: the field's state has ${S} values [${field.stateShape.join(', ')}], initial state ${i} has ` +
            `${row.length}`,
        );
      }
      flat.set(row, i * S);
    });
    // A file with a fixed batch size runs whole batches only.
    const chunk =
      field.fixedBatch ?? rowsWithin(options.memoryBytes ?? DEFAULT_MEMORY_BYTES, unknownFieldBytesPerSample(S));
    const solveField = chunkedField((rows) => field.asAsyncField(rows), n, S, chunk);
    const total = fixedSolveNfe(spec, t0, t1);
    let calls = 0;
    const counted: typeof solveField = options.onProgress
      ? async (t, z) => {
          const out = await solveField(t, z);
          options.onProgress!(++calls, total);
          return out;
        }
      : solveField;
    const r = await solveAsync(float32Ops, counted, flat, spec, {
      t0,
      t1,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const z1 = Array.from({ length: n }, (_, i) => Array.from(r.z1.subarray(i * S, (i + 1) * S)));
    return { z1, nfe: r.stats.nfe, accepted: r.stats.accepted, rejected: r.stats.rejected };
  } finally {
    await field.release();
  }
}

/** Labelled data: n samples of the source's input width, row-major, and their labels. */
export interface EvalData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

export interface EvaluateOptions {
  /** Samples per solve (default: the source's `batch`). */
  chunk?: number;
  /** Stops the evaluation at its next field call once aborted; the rows finished by then went to onRow. */
  signal?: AbortSignal;
  /** Each row as soon as it is finished (a Ctrl-C keeps them). */
  onRow?: (row: EvalRow, index: number) => void;
  /** Field calls of the row being solved (`index`), of `total` when known (fixed-step solvers). */
  onProgress?: (index: number, calls: number, total?: number) => void;
}

function checkData(source: ModelSource, data: EvalData): void {
  const width = source.inputWidth;
  if (data.n === 0) throw new ShapeError(`${source.dir}: no data points to evaluate`);
  if (data.y.length !== data.n) throw new ShapeError(`data: y has ${data.y.length} labels for ${data.n} samples`);
  if (data.x.length !== data.n * width) {
    throw new ShapeError(
      `${source.input} expects ${width} values per sample [${source.inputShape.join(', ')}], the data has ` +
        `${data.x.length / data.n}`,
    );
  }
}

/** An effective model evaluates only under the solver unrolled into it. */
function checkEffective(source: ModelSource, specs: readonly SolverSpec[]): void {
  if (source.kind !== 'effective') return;
  const other = specs.find((s) => formatSolverSpec(s) !== source.effectiveSolver);
  if (other)
    throw new SpecError(
      `${source.dir} is an effective model with ${source.effectiveSolver} unrolled: it evaluates under that solver ` +
        `only, not ${formatSolverSpec(other)}`,
    );
}

/**
 * Accuracy and NFE of a model source on a dataset under each solver spec:
 * encoder once, then per spec a solve of every chunk, head, argmax. NFE,
 * accepted and rejected are per sample's solve (the sample-weighted mean over
 * chunks: adaptive steps depend on the batch).
 */
export async function evaluate(
  source: ModelSource,
  data: EvalData,
  specs: readonly SolverSpec[],
  options: EvaluateOptions = {},
): Promise<EvalRow[]> {
  checkData(source, data);
  checkEffective(source, specs);
  const { t0, t1, classes } = source;
  for (const spec of specs) checkStepBudget(spec, t0, t1);
  const width = source.inputWidth;
  const chunk = Math.max(1, Math.floor(options.chunk ?? source.batch));
  const signal = options.signal;
  const effective = source.kind === 'effective';
  const chunks: { start: number; n: number; z0: Float32Array }[] = [];
  for (let start = 0; start < data.n; start += chunk) {
    signal?.throwIfAborted();
    const n = Math.min(chunk, data.n - start);
    const x = data.x.subarray(start * width, (start + n) * width);
    chunks.push({ start, n, z0: effective ? x : await source.encode(x, n) });
  }
  const rows: EvalRow[] = [];
  for (const spec of specs) {
    let correct = 0;
    const sums = { nfe: 0, accepted: 0, rejected: 0 };
    const perSolve = fixedSolveNfe(spec, t0, t1);
    const total = perSolve === undefined ? undefined : perSolve * chunks.length;
    let calls = 0;
    const progress = options.onProgress;
    const fieldOf = (n: number): AsyncField<Float32Array> => {
      const f = source.field(n);
      if (!progress) return f;
      const index = rows.length;
      return async (t, z) => {
        const out = await f(t, z);
        progress(index, ++calls, total);
        return out;
      };
    };
    for (const c of chunks) {
      signal?.throwIfAborted();
      let logits: Float32Array;
      if (effective) {
        logits = await source.logits(c.z0, c.n);
        Object.assign(sums, {
          nfe: sums.nfe + perSolve! * c.n,
          accepted: sums.accepted + solverLabel(spec, t0, t1).steps! * c.n,
        });
      } else {
        const r = await solveAsync(float32Ops, fieldOf(c.n), c.z0, spec, { t0, t1, ...(signal ? { signal } : {}) });
        logits = await source.logits(r.z1, c.n);
        sums.nfe += r.stats.nfe * c.n;
        sums.accepted += r.stats.accepted * c.n;
        sums.rejected += r.stats.rejected * c.n;
      }
      correct += countCorrect(logits, data.y.subarray(c.start, c.start + c.n), classes);
    }
    const row: EvalRow = {
      ...solverLabel(spec, t0, t1),
      accuracy: correct / data.n,
      nfe: sums.nfe / data.n,
      accepted: sums.accepted / data.n,
      rejected: sums.rejected / data.n,
    };
    rows.push(row);
    options.onRow?.(row, rows.length - 1);
  }
  return rows;
}

/** Open a bundle (or model) directory, evaluate it, release it: evaluate() for callers holding only a path. */
export async function evaluateBundle(
  dir: string,
  data: EvalData,
  specs: readonly SolverSpec[],
  options: EvaluateOptions & SourceOptions = {},
): Promise<EvalRow[]> {
  const source = await openModelSource({ bundle: dir, ...options });
  try {
    return await evaluate(source, data, specs, options);
  } finally {
    await source.release();
  }
}
