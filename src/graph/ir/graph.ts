/**
 * The one ONNX graph builder. Export (field / head / encoder), the effective
 * model (solver unrolled into one graph), the compiled training and step
 * graphs (src/onnx/lower) and imported fields (ir/imported-field.ts) are all
 * written through it.
 *
 * The graph is kept as plain data — value infos, initializers and a list of
 * nodes `{op, inputs, outputs, attrs}` in topological order (every node is
 * appended after the nodes producing its inputs) — so a reverse-mode autodiff
 * pass can walk `nodes` backwards and append gradient nodes to the same
 * builder. Serialisation to the official ONNX protobuf schema (onnx-proto)
 * happens only in `toModelProto()` / `toBytes()` / `save()`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxPkg from 'onnx-proto';

const { onnx } = onnxPkg;

/** ONNX IR version 8 goes with opsets up to 17 (onnx 1.10–1.12). */
export const IR_VERSION = 8;
/** Default-domain opset every odeness graph declares. */
export const OPSET = 17;

export type FloatType = 'float32' | 'float64';
/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

export const BATCH: Dim = 'batch';

export { attr, type Attr } from './attrs.js';
import type { Attr } from './attrs.js';
import type { DType, GraphWriter, InitData } from './writer.js';

export type { DType, InitData } from './writer.js';

export interface GraphNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export interface Initializer {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: InitData;
}

export interface GraphBuilderOptions {
  /** Graph name stored in the file. */
  name?: string;
  /** Element type of float parameters and constants (default float32). */
  float?: FloatType;
  docString?: string;
  /**
   * onnxruntime's NCHWc channel block for graphs that only this machine's onnxruntime runs (see GraphWriter); default
   * 0.
   */
  nchwcBlock?: number;
}

const DATA_TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
};

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Ops outside the default domain are written "domain:Op" (onnxruntime's own spelling, e.g.
 * "com.microsoft.nchwc:Conv"); each such domain is imported at version 1.
 */
export function splitOp(op: string): { domain: string; opType: string } {
  const i = op.lastIndexOf(':');
  return i < 0 ? { domain: '', opType: op } : { domain: op.slice(0, i), opType: op.slice(i + 1) };
}

function sanitize(hint: string): string {
  const s = hint.replace(/[^A-Za-z0-9_.:/-]/g, '_');
  return s === '' ? 'v' : s;
}

export class GraphBuilder implements GraphWriter {
  readonly name: string;
  readonly float: FloatType;
  readonly docString: string | undefined;
  readonly nchwcBlock: number;
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers = new Map<string, Initializer>();
  readonly nodes: GraphNode[] = [];
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly constCache = new Map<string, string>();
  /** Source object of each parameter initializer, so re-adding the same tensor is a no-op. */
  private readonly paramSources = new Map<string, unknown>();
  /** Values made once per graph (GraphWriter.once). */
  private readonly made = new Map<string, unknown>();

  constructor(options: GraphBuilderOptions = {}) {
    this.name = options.name ?? 'odeness';
    this.float = options.float ?? 'float32';
    this.docString = options.docString;
    this.nchwcBlock = options.nchwcBlock ?? 0;
  }

  /** A name not used yet in this graph, derived from the hint. */
  fresh(hint: string): string {
    const base = sanitize(hint);
    if (!this.used.has(base)) {
      this.used.add(base);
      return base;
    }
    let n = this.counters.get(base) ?? 1;
    while (this.used.has(`${base}_${n}`)) n++;
    this.counters.set(base, n + 1);
    const name = `${base}_${n}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is already used`);
    this.used.add(name);
    return name;
  }

  has(name: string): boolean {
    return this.used.has(name);
  }

  /** Declare a graph input; its exact name is kept. */
  input(name: string, dtype: DType, shape: readonly Dim[]): string {
    this.inputs.push({ name: this.claim(name), dtype, shape: [...shape] });
    return name;
  }

  /**
   * Declare a graph output. `from` is the value that becomes the output; when it
   * has another name an Identity node is added (prefer passing `out` names to
   * the appending functions so no Identity is needed).
   */
  output(name: string, dtype: DType, shape: readonly Dim[], from: string = name): string {
    if (from !== name) this.node('Identity', [from], {}, [name]);
    else if (!this.used.has(name)) throw new Error(`graph ${this.name}: output "${name}" is not produced by any node`);
    this.outputs.push({ name, dtype, shape: [...shape] });
    return name;
  }

  /** Add an initializer under a fresh name derived from the hint. */
  initializer(hint: string, dtype: DType, shape: readonly number[], data: InitData): string {
    if (data.length !== product(shape)) {
      throw new Error(
        `graph ${this.name}: initializer ${hint} has ${data.length} values for shape [${shape.join(', ')}]`,
      );
    }
    const name = this.fresh(hint);
    this.initializers.set(name, { name, dtype, shape: [...shape], data });
    return name;
  }

  once<T>(key: string, make: () => T): T {
    if (this.made.has(key)) return this.made.get(key) as T;
    const value = make();
    this.made.set(key, value);
    return value;
  }

  /** Float data converted to the builder's float type. */
  floatData(data: ArrayLike<number>): Float32Array | Float64Array {
    return this.float === 'float32' ? Float32Array.from(data) : Float64Array.from(data);
  }

  /**
   * A named parameter (e.g. "field.0.weight") as an initializer with exactly that
   * name, converted to the builder's float type. Adding the same source tensor
   * again returns the existing name (parameters shared by every solver stage).
   */
  param(name: string, tensor: { readonly shape: readonly number[]; readonly data: Float32Array }): string {
    const prev = this.paramSources.get(name);
    if (prev !== undefined) {
      if (prev !== tensor) throw new Error(`graph ${this.name}: parameter ${name} added twice with different values`);
      return name;
    }
    if (tensor.data.length !== product(tensor.shape)) {
      throw new Error(
        `graph ${this.name}: parameter ${name} has ${tensor.data.length} values for shape [${tensor.shape.join(', ')}]`,
      );
    }
    this.claim(name);
    this.initializers.set(name, {
      name,
      dtype: this.float,
      shape: [...tensor.shape],
      data: this.floatData(tensor.data),
    });
    this.paramSources.set(name, tensor);
    return name;
  }

  /** A float constant in the builder's float type (shape [] by default), shared by value. */
  scalar(value: number, shape: readonly number[] = []): string {
    const key = `f:${shape.join('x')}:${Object.is(value, -0) ? '-0' : String(value)}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initializer('c', this.float, shape, this.floatData(new Array(product(shape)).fill(value)));
      this.constCache.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant (shapes, pads, axes), shared by value. */
  int64s(values: readonly number[]): string {
    const key = `i:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.initializer('shape', 'int64', [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
      this.constCache.set(key, name);
    }
    return name;
  }

  /**
   * Append a node. `outputs` is a count of fresh outputs (default 1) or explicit
   * names. Returns the output names.
   */
  node(
    op: string,
    inputs: readonly string[],
    attrs: Record<string, Attr> = {},
    outputs: number | readonly string[] = 1,
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.used.has(i))
        throw new Error(`graph ${this.name}: ${op} reads "${i}", which is not defined yet`);
    }
    const hint = splitOp(op).opType;
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(hint.toLowerCase()))
        : outputs.map((o) => this.claim(o));
    this.nodes.push({ name: this.fresh(`n_${hint}`), op, inputs: [...inputs], outputs: outs, attrs: { ...attrs } });
    return outs;
  }

  /** A single-output node; `out` names its output (fresh name otherwise). */
  op(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.node(op, inputs, attrs, out === undefined ? 1 : [out])[0]!;
  }

  toModelProto(): InstanceType<typeof onnx.ModelProto> {
    if (os.endianness() !== 'LE') throw new Error('ONNX raw tensor data is little-endian; this machine is big-endian');
    const valueInfo = (v: ValueInfo) =>
      onnx.ValueInfoProto.create({
        name: v.name,
        type: {
          tensorType: {
            elemType: DATA_TYPE[v.dtype],
            shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
          },
        },
      });
    const tensor = (t: Initializer) =>
      onnx.TensorProto.create({
        name: t.name,
        dataType: DATA_TYPE[t.dtype],
        dims: [...t.shape],
        rawData: new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)),
      });
    const attribute = (name: string, a: Attr) => {
      const T = onnx.AttributeProto.AttributeType;
      switch (a.kind) {
        case 'int':
          return onnx.AttributeProto.create({ name, type: T.INT, i: a.value });
        case 'ints':
          return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...a.value] });
        case 'float':
          return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.value });
        case 'floats':
          return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...a.value] });
        case 'string':
          return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(a.value) });
      }
    };
    const graph = onnx.GraphProto.create({
      name: this.name,
      docString: this.docString,
      node: this.nodes.map((n) =>
        onnx.NodeProto.create({
          name: n.name,
          ...splitOp(n.op),
          input: [...n.inputs],
          output: [...n.outputs],
          attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a)),
        }),
      ),
      initializer: [...this.initializers.values()].map(tensor),
      input: this.inputs.map(valueInfo),
      output: this.outputs.map(valueInfo),
    });
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [
        { domain: '', version: OPSET },
        ...[...new Set(this.nodes.map((n) => splitOp(n.op).domain).filter((d) => d !== ''))].map((domain) => ({
          domain,
          version: 1,
        })),
      ],
      producerName: 'odeness',
      producerVersion: '0.1.0',
      graph,
    });
  }

  toBytes(): Uint8Array {
    if (this.outputs.length === 0) throw new Error(`graph ${this.name}: no outputs declared`);
    return onnx.ModelProto.encode(this.toModelProto()).finish();
  }

  async save(file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, this.toBytes());
  }
}

/** Decode ONNX bytes (for inspection and tests); throws on malformed protobuf. */
export function decodeModel(bytes: Uint8Array): InstanceType<typeof onnx.ModelProto> {
  return onnx.ModelProto.decode(bytes);
}
