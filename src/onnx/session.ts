/**
 * onnxruntime-node sessions: loading with clear file errors, a vector field as
 * an AsyncField<Float32Array> for the one integrate loop (solveAsync), and
 * single-input/single-output graphs (head, encoder, unrolled solves).
 *
 * Nothing here counts evaluations or steps: stats come from the solve.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { FileFormatError, isOdenessError, ShapeError } from '../errors.js';
import type { AsyncField } from '../solvers/vector.js';
import { createSession, firstLine, type SessionOptions } from './runtime/session.js';

export type { SessionOptions } from './runtime/session.js';

type Dims = readonly (number | string)[];

export interface TensorInfo {
  readonly name: string;
  readonly type: string;
  /** Declared shape; symbolic dims are strings. Empty = scalar (or undeclared). */
  readonly shape: Dims;
}

export function formatDims(dims: Dims): string {
  return `[${dims.join(', ')}]`;
}

export function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** The bytes of an ONNX file; a missing or unreadable file is a FileFormatError naming it. */
export async function readOnnxFile(file: string): Promise<Uint8Array> {
  try {
    return readFileSync(file); // synchronous: see onnx/bundle.ts
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(e)})`, {
      cause: e,
    });
  }
}

/**
 * Create a session from an ONNX file, or from `given` bytes named `file` in messages (an in-memory graph); missing or
 * malformed files become FileFormatError naming the file.
 */
export async function openSession(
  file: string,
  options: SessionOptions = {},
  given?: Uint8Array,
): Promise<ort.InferenceSession> {
  const bytes = given ?? (await readOnnxFile(file));
  if (bytes.length === 0) throw new FileFormatError(file, 'empty file, not an ONNX model');
  try {
    return await createSession(bytes, options);
  } catch (e) {
    if (isOdenessError(e)) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new FileFormatError(file, `not a valid ONNX model (truncated or corrupt?): ${firstLine(msg)}`, { cause: e });
  }
}

function tensorInfos(file: string, metas: readonly ort.InferenceSession.ValueMetadata[], what: string): TensorInfo[] {
  return metas.map((m) => {
    if (!m.isTensor) throw new FileFormatError(file, `${what} ${m.name} is not a tensor`);
    return { name: m.name, type: m.type, shape: [...m.shape] };
  });
}

export function inputInfos(file: string, session: ort.InferenceSession): TensorInfo[] {
  return tensorInfos(file, session.inputMetadata, 'input');
}

export function outputInfos(file: string, session: ort.InferenceSession): TensorInfo[] {
  return tensorInfos(file, session.outputMetadata, 'output');
}

/** Per-sample dims (after the batch dim) when all are fixed numbers, else undefined. */
export function staticSampleDims(shape: Dims): number[] | undefined {
  if (shape.length < 2) return undefined;
  const rest = shape.slice(1);
  return rest.every((d) => typeof d === 'number' && d > 0) ? (rest as number[]) : undefined;
}

function checkFloat32(file: string, info: TensorInfo, role: string): void {
  if (info.type !== 'float32')
    throw new FileFormatError(file, `${role} ${info.name} is ${info.type}; odeness evaluates float32 graphs`);
}

function checkBatch(file: string, info: TensorInfo, batch: number): void {
  const b = info.shape[0];
  if (typeof b === 'number' && b !== batch) {
    throw new ShapeError(
      `${file}: input ${info.name} has a fixed batch size of ${b}, cannot run ${batch} samples; ` +
        'export it with a symbolic batch dimension',
    );
  }
}

const isOneElement = (shape: Dims) => shape.every((d) => d === 1);

export interface FieldLoadOptions extends SessionOptions {
  /** The graph's bytes, when they are not read from `file` (an in-memory model, or bytes already hashed). */
  bytes?: Uint8Array;
  /** Per-sample state shape, needed when the file declares symbolic state dims (from a bundle manifest). */
  stateShape?: readonly number[];
}

/**
 * A field's state input z and optional time input t: matched by name when called `z` / `t`, otherwise by rank (the
 * one-element one is t).
 */
function fieldInputs(file: string, inputs: readonly TensorInfo[]): { z: TensorInfo; t?: TensorInfo } {
  if (inputs.length < 1 || inputs.length > 2) {
    throw new FileFormatError(
      file,
      `a vector field takes z (and optionally t), but this graph has ${inputs.length} inputs ` +
        `(${inputs.map((i) => i.name).join(', ')})`,
    );
  }
  if (inputs.length === 1) {
    const z = inputs[0]!;
    if (z.name === 't') throw new FileFormatError(file, 'the only input is t; a vector field needs a state input z');
    return { z };
  }
  let z: TensorInfo;
  let t: TensorInfo;
  const byName = (n: string) => inputs.find((i) => i.name === n);
  if (byName('t') || byName('z')) {
    t = (byName('t') ?? inputs.find((i) => i.name !== 'z'))!;
    z = byName('z') ?? inputs.find((i) => i.name !== 't')!;
  } else {
    const small = inputs.filter((i) => i.shape.length <= 1 && isOneElement(i.shape));
    if (small.length !== 1) {
      throw new FileFormatError(
        file,
        'cannot tell the time input from the state input: inputs ' +
          `${inputs.map((i) => `${i.name} ${formatDims(i.shape)}`).join(', ')}; ` +
          'name them t and z, or declare t as a scalar [] or [1]',
      );
    }
    t = small[0]!;
    z = inputs.find((i) => i !== t)!;
  }
  if (t.shape.length > 0 && !isOneElement(t.shape) && !(t.shape.length === 1 && typeof t.shape[0] === 'string')) {
    throw new FileFormatError(
      file,
      `time input ${t.name} has shape ${formatDims(t.shape)}; expected a scalar [] or [1]`,
    );
  }
  return { z, t };
}

/** A field's output: the only one, or the one named dz; float32 and not a classifier's. */
function fieldOutput(file: string, outputs: readonly TensorInfo[]): TensorInfo {
  if (outputs.length === 0) throw new FileFormatError(file, 'the graph has no outputs');
  const out = outputs.length === 1 ? outputs[0]! : (outputs.find((o) => o.name === 'dz') ?? outputs[0]!);
  checkFloat32(file, out, 'output');
  // A classifier (head.onnx, effective.onnx) can have the shape of a field (2-D state, 2 classes): its output name
  // tells.
  if (out.name === 'logits') {
    throw new FileFormatError(
      file,
      `output ${out.name} ${formatDims(out.shape)} is a classifier's (a head or an effective model), ` +
        "not a vector field's; give the bundle's field.onnx",
    );
  }
  return out;
}

/** The per-sample state shape: the given one (checked against z's declared dims) or z's fixed declared dims. */
function fieldStateShape(file: string, z: TensorInfo, given: readonly number[] | undefined): readonly number[] {
  const declared = staticSampleDims(z.shape);
  if (given) {
    const stateShape = [...given];
    if (declared && (declared.length !== stateShape.length || declared.some((d, i) => d !== stateShape[i]))) {
      throw new ShapeError(
        `${file}: input ${z.name} declares state shape ${formatDims(declared)} ` +
          `but the bundle says ${formatDims(stateShape)}`,
      );
    }
    return stateShape;
  }
  if (declared) return declared;
  throw new ShapeError(
    `${file}: input ${z.name} has shape ${formatDims(z.shape)}; declare fixed state dims after the batch dim ` +
      '(or give the state shape in manifest.json)',
  );
}

/**
 * A vector field stored as ONNX: inputs z [batch, ...state] and optionally a
 * time t (scalar [] or [1]); one output of z's shape. Inputs are matched by
 * name when they are called `z` / `t`, otherwise by rank (the one-element one
 * is t). A field with only z is autonomous.
 */
export class OnnxField {
  private constructor(
    readonly file: string,
    readonly session: ort.InferenceSession,
    readonly zName: string,
    /** Name of the time input; undefined for autonomous fields. */
    readonly tName: string | undefined,
    /** Dims t is fed with: [] (scalar) or [1] (or [1, 1] …). */
    readonly tDims: readonly number[],
    readonly outName: string,
    readonly stateShape: readonly number[],
    private readonly zInfo: TensorInfo,
  ) {}

  /** The batch size the file fixes, or undefined when its batch dimension is symbolic. */
  get fixedBatch(): number | undefined {
    const b = this.zInfo.shape[0];
    return typeof b === 'number' ? b : undefined;
  }

  static async load(file: string, options: FieldLoadOptions = {}): Promise<OnnxField> {
    const session = await openSession(file, options, options.bytes);
    try {
      return OnnxField.fromSession(file, session, options);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  static fromSession(file: string, session: ort.InferenceSession, options: FieldLoadOptions = {}): OnnxField {
    const inputs = inputInfos(file, session);
    const outputs = outputInfos(file, session);
    const { z, t } = fieldInputs(file, inputs);
    checkFloat32(file, z, 'input');
    if (t) checkFloat32(file, t, 'input');
    const out = fieldOutput(file, outputs);
    const stateShape = fieldStateShape(file, z, options.stateShape);
    // A vector field returns a tensor of its input's shape.
    if (out.shape.length > 0) {
      const zDims: Dims = z.shape.length > 0 ? z.shape : ['batch', ...stateShape];
      const mismatch =
        out.shape.length !== zDims.length ||
        out.shape.some((d, i) => typeof d === 'number' && typeof zDims[i] === 'number' && d !== zDims[i]);
      if (mismatch) {
        throw new ShapeError(
          `${file}: output ${out.name} has shape ${formatDims(out.shape)} but input ${z.name} has shape ` +
            `${formatDims(zDims)}; a vector field must return its input's shape`,
        );
      }
    }
    const tDims = t ? (t.shape.length === 0 ? [] : t.shape.map(() => 1)) : [];
    return new OnnxField(file, session, z.name, t?.name, tDims, out.name, stateShape, z);
  }

  get autonomous(): boolean {
    return this.tName === undefined;
  }

  get stateSize(): number {
    return product(this.stateShape);
  }

  /** f(t, z) for `batch` samples stored row-major in z. */
  async evaluate(t: number, z: Float32Array, batch: number): Promise<Float32Array> {
    const feeds: Record<string, ort.Tensor> = {
      [this.zName]: new ort.Tensor('float32', z, [batch, ...this.stateShape]),
    };
    if (this.tName !== undefined) feeds[this.tName] = new ort.Tensor('float32', Float32Array.of(t), [...this.tDims]);
    const result = await this.session.run(feeds, [this.outName]);
    const out = result[this.outName]!;
    if (out.data.length !== z.length || !(out.data instanceof Float32Array)) {
      throw new ShapeError(
        `${this.file}: output ${this.outName} has shape ${formatDims(out.dims)} but input ${this.zName} has shape ` +
          `${formatDims([batch, ...this.stateShape])}; a vector field must return its input's shape`,
      );
    }
    return out.data;
  }

  /** The field as an AsyncField for solveAsync(float32Ops, …), for a fixed batch size. */
  asAsyncField(batch: number): AsyncField<Float32Array> {
    checkBatch(this.file, this.zInfo, batch);
    const size = batch * this.stateSize;
    return (t, z) => {
      if (z.length !== size)
        throw new ShapeError(`${this.file}: state has ${z.length} values, expected ${batch} × ${this.stateSize}`);
      return this.evaluate(t, z, batch);
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * A graph with one float32 input and one float32 output, both with a leading
 * batch dim (head, encoder, an unrolled solve, an effective model).
 */
export class OnnxMap {
  private constructor(
    readonly file: string,
    readonly session: ort.InferenceSession,
    readonly input: TensorInfo,
    readonly output: TensorInfo,
    /** Declared per-sample input dims when fixed, else undefined. */
    readonly inputDims: readonly number[] | undefined,
    /** Declared per-sample output dims when fixed, else undefined. */
    readonly outputDims: readonly number[] | undefined,
  ) {}

  static async load(
    file: string,
    options: SessionOptions & { input?: string; output?: string; bytes?: Uint8Array } = {},
  ): Promise<OnnxMap> {
    const session = await openSession(file, options, options.bytes);
    try {
      const inputs = inputInfos(file, session);
      const outputs = outputInfos(file, session);
      const pick = (list: TensorInfo[], want: string | undefined, role: string): TensorInfo => {
        if (list.length === 1) return list[0]!;
        const found = want !== undefined ? list.find((i) => i.name === want) : undefined;
        if (!found)
          throw new FileFormatError(
            file,
            `expected one ${role}${want ? ` (or one named ${want})` : ''}, ` +
              `found ${list.map((i) => i.name).join(', ') || 'none'}`,
          );
        return found;
      };
      const input = pick(inputs, options.input, 'input');
      const output = pick(outputs, options.output, 'output');
      checkFloat32(file, input, 'input');
      checkFloat32(file, output, 'output');
      return new OnnxMap(file, session, input, output, staticSampleDims(input.shape), staticSampleDims(output.shape));
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /**
   * Run on `batch` samples given row-major; `sampleDims` are the per-sample
   * dims to feed (default: the declared ones). Returns the output values.
   */
  async run(
    x: Float32Array,
    batch: number,
    sampleDims: readonly number[] | undefined = this.inputDims,
  ): Promise<{ data: Float32Array; dims: readonly number[] }> {
    if (!sampleDims)
      throw new ShapeError(
        `${this.file}: input ${this.input.name} has shape ${formatDims(this.input.shape)}; ` +
          'per-sample dims must be fixed',
      );
    checkBatch(this.file, this.input, batch);
    if (x.length !== batch * product(sampleDims)) {
      throw new ShapeError(
        `${this.file}: input ${this.input.name} takes ${product(sampleDims)} values per sample, ` +
          `got ${x.length / batch}`,
      );
    }
    const result = await this.session.run({ [this.input.name]: new ort.Tensor('float32', x, [batch, ...sampleDims]) }, [
      this.output.name,
    ]);
    const out = result[this.output.name]!;
    if (!(out.data instanceof Float32Array))
      throw new FileFormatError(this.file, `output ${this.output.name} is ${out.type}, expected float32`);
    return { data: out.data, dims: out.dims };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
