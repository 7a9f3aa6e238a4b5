/**
 * The ONNX reader: an ONNX protobuf file (onnx-proto's generated decoder for onnx.proto) → the graph IR
 * of an imported vector field (ImportedGraph), checked against the ops and attributes the compiler covers
 * (opsets 13–20, as torch.onnx.export writes them) before anything is built from it. Every refusal is one
 * line naming the op, the node and the file.
 */
import onnxPkg from 'onnx-proto';
import { FileFormatError } from '../../errors.js';
import type { Attr } from './attrs.js';

const { onnx } = onnxPkg;

export type TensorType = 'float32' | 'float64' | 'int64' | 'bool';

/** A constant tensor of the file: an initializer or a Constant node's value. */
export interface ImportedTensor {
  readonly name: string;
  readonly dtype: TensorType;
  readonly shape: readonly number[];
  /** Float32Array for float32 (the trainable kind), else plain numbers (int64 as doubles: shape arithmetic). */
  readonly data: Float32Array | Float64Array | readonly number[];
}

export interface ImportedNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

export interface ImportedInput {
  readonly name: string;
  /** Declared dims: a number, or a name / undefined for a symbolic dimension. */
  readonly shape: readonly (number | string | undefined)[];
}

export interface ImportedGraph {
  readonly file: string;
  readonly opset: number;
  readonly z: ImportedInput;
  readonly t?: ImportedInput;
  readonly output: string;
  /** Initializers and Constant-node values, by value name. */
  readonly tensors: ReadonlyMap<string, ImportedTensor>;
  /** The float32 initializers: what may be trained. */
  readonly floatInitializers: readonly string[];
  /** Nodes in file order (topological, as ONNX requires), Constant nodes removed (their values are in `tensors`). */
  readonly nodes: readonly ImportedNode[];
}

/** Opsets whose exports of the covered ops the reader accepts (torch.onnx.export: 13–20). */
export const IMPORT_OPSETS = { min: 13, max: 20 } as const;

/** Every op the reader accepts, with the attributes it understands (others are refused). */
export const IMPORT_OPS: Readonly<Record<string, readonly string[]>> = {
  Gemm: ['alpha', 'beta', 'transA', 'transB'],
  MatMul: [],
  Add: [],
  Sub: [],
  Mul: [],
  Div: [],
  Neg: [],
  Tanh: [],
  Relu: [],
  LeakyRelu: ['alpha'],
  Sigmoid: [],
  Softplus: [],
  Elu: ['alpha'],
  Exp: [],
  Sin: [],
  Cos: [],
  Pow: [],
  Conv: ['kernel_shape', 'pads', 'strides', 'dilations', 'group', 'auto_pad'],
  Concat: ['axis'],
  Reshape: ['allowzero'],
  Flatten: ['axis'],
  Unsqueeze: ['axes'],
  Squeeze: ['axes'],
  Transpose: ['perm'],
  Expand: [],
  ReduceMean: ['axes', 'keepdims', 'noop_with_empty_axes'],
  ReduceSum: ['axes', 'keepdims', 'noop_with_empty_axes'],
  Identity: [],
  Constant: ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'],
  Shape: ['start', 'end'],
  Gather: ['axis'],
  ConstantOfShape: ['value'],
  Equal: [],
  Where: [],
  Cast: ['to', 'saturate'],
};

/** Attribute values the compiler does not implement, by op and attribute. */
const UNSUPPORTED_VALUE: Readonly<Record<string, (a: Attr) => boolean>> = {
  'Conv.auto_pad': (a) => a.kind === 'string' && a.value !== 'NOTSET',
  'Reshape.allowzero': (a) => a.kind === 'int' && a.value !== 0,
  'Cast.to': (a) => a.kind === 'int' && ![1, 6, 7, 9, 11].includes(a.value),
};

const DTYPES: Record<number, TensorType> = { 1: 'float32', 11: 'float64', 7: 'int64', 6: 'int64', 9: 'bool' };

/** The decoded protobuf as plain objects (onnx-proto's toObject: defaults filled, 64-bit integers as numbers). */
interface TensorProto {
  name: string;
  dataType: number;
  dims: number[];
  rawData: Uint8Array;
  floatData: number[];
  doubleData: number[];
  int64Data: number[];
  int32Data: number[];
  dataLocation: number;
}
interface AttrProto {
  name: string;
  type: number;
  i: number;
  ints: number[];
  f: number;
  floats: number[];
  s: Uint8Array;
  t?: TensorProto;
}
interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { shape?: { dim?: { dimParam?: string; dimValue?: number }[] } } };
}
interface ModelObject {
  opsetImport: { domain: string; version: number }[];
  graph?: {
    node: { name: string; opType: string; domain: string; input: string[]; output: string[]; attribute: AttrProto[] }[];
    initializer: TensorProto[];
    input: ValueInfoProto[];
    output: ValueInfoProto[];
  };
}

function tensorData(
  t: TensorProto,
  dtype: TensorType,
  count: number,
  fail: (m: string) => never,
): ImportedTensor['data'] {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (raw) {
    const bytes = { float32: 4, float64: 8, int64: 8, bool: 1 }[dtype];
    if (raw.length !== count * bytes) fail(`tensor ${t.name} has ${raw.length} bytes for ${count} values`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (dtype === 'float32') return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
    if (dtype === 'float64') return Float64Array.from({ length: count }, (_, i) => view.getFloat64(8 * i, true));
    if (dtype === 'int64') return Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    return Array.from(raw, (v) => (v ? 1 : 0));
  }
  const values =
    dtype === 'float32'
      ? t.floatData
      : dtype === 'float64'
        ? t.doubleData
        : dtype === 'int64' && t.dataType === 7
          ? t.int64Data
          : t.int32Data;
  if (values.length !== count) fail(`tensor ${t.name} has ${values.length} values for shape [${t.dims.join(', ')}]`);
  return dtype === 'float32'
    ? Float32Array.from(values as number[])
    : dtype === 'float64'
      ? Float64Array.from(values as number[])
      : Array.from(values as number[]);
}

function readTensor(t: TensorProto, name: string, fail: (m: string) => never): ImportedTensor {
  const dtype = DTYPES[t.dataType];
  if (!dtype)
    fail(
      `tensor ${name} has element type ` +
        `${(onnx.TensorProto.DataType as unknown as Record<number, string>)[t.dataType] ?? t.dataType}` +
        `; expected float, double, int64 or bool`,
    );
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
    fail(`tensor ${name} is stored in an external file; export with the weights inside`);
  const shape = t.dims;
  return {
    name,
    dtype,
    shape,
    data: tensorData(
      t,
      dtype,
      shape.reduce((a, b) => a * b, 1),
      fail,
    ),
  };
}

function readAttr(a: AttrProto, where: string, fail: (m: string) => never): Attr | ImportedTensor {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT:
      return { kind: 'int', value: a.i };
    case T.INTS:
      return { kind: 'ints', value: a.ints };
    case T.FLOAT:
      return { kind: 'float', value: a.f };
    case T.FLOATS:
      return { kind: 'floats', value: [...a.floats] };
    case T.STRING:
      return { kind: 'string', value: new TextDecoder().decode(a.s) };
    case T.TENSOR:
      return readTensor(a.t!, `${where} attribute ${a.name}`, fail);
    default:
      return fail(
        `${where}: attribute ${a.name} has type ` +
          `${(T as unknown as Record<number, string>)[a.type] ?? a.type}` +
          `, which the importer does not read`,
      );
  }
}

const isTensor = (v: Attr | ImportedTensor): v is ImportedTensor => 'dtype' in v;

/** A Constant node's value as a tensor. */
function constantValue(
  name: string,
  attrs: Record<string, Attr | ImportedTensor>,
  fail: (m: string) => never,
): ImportedTensor {
  const [key, v] = Object.entries(attrs)[0] ?? [];
  if (v === undefined) return fail(`Constant ${name} has no value`);
  if (isTensor(v)) return { ...v, name };
  if (v.kind === 'float') return { name, dtype: 'float32', shape: [], data: Float32Array.of(v.value) };
  if (v.kind === 'floats') return { name, dtype: 'float32', shape: [v.value.length], data: Float32Array.from(v.value) };
  if (v.kind === 'int') return { name, dtype: 'int64', shape: [], data: [v.value] };
  if (v.kind === 'ints') return { name, dtype: 'int64', shape: [v.value.length], data: [...v.value] };
  return fail(`Constant ${name}: attribute ${key} is not a value`);
}

/** Decode and check an ONNX vector field: inputs z (first) and optionally t, one output. */
export function readOnnxField(bytes: Uint8Array, file: string): ImportedGraph {
  const fail = (m: string): never => {
    throw new FileFormatError(file, m);
  };
  let model: ModelObject;
  try {
    model = onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), {
      longs: Number,
      defaults: true,
      arrays: true,
    }) as ModelObject;
  } catch (e) {
    return fail(`not an ONNX model (${(e as Error).message})`);
  }
  const graph = model.graph ?? fail('has no graph');
  const opset = model.opsetImport.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  const version = opset ? opset.version : 0;
  if (version < IMPORT_OPSETS.min || version > IMPORT_OPSETS.max)
    fail(`opset ${version}; the importer reads opsets ${IMPORT_OPSETS.min}–${IMPORT_OPSETS.max}`);
  const tensors = new Map<string, ImportedTensor>();
  for (const t of graph.initializer) tensors.set(t.name, readTensor(t, t.name, fail));
  const inputs = graph.input.filter((i) => !tensors.has(i.name));
  const declared = (i: (typeof inputs)[number]): ImportedInput => ({
    name: i.name,
    shape: (i.type?.tensorType?.shape?.dim ?? []).map((d) =>
      d.dimParam ? d.dimParam : d.dimValue ? d.dimValue : undefined,
    ),
  });
  if (inputs.length < 1 || inputs.length > 2)
    fail(
      `has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); ` +
        `expected the state z and optionally the time t`,
    );
  if (graph.output.length !== 1) fail(`has ${graph.output.length} outputs; expected one, dz/dt`);
  const nodes: ImportedNode[] = [];
  for (const n of graph.node) {
    const where = `node ${n.name || n.output[0]} (${n.opType})`;
    const known = IMPORT_OPS[n.opType];
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') fail(`${where}: op domain "${n.domain}" is not supported`);
    if (!known) fail(`${where}: op ${n.opType} is not supported; supported ops: ${Object.keys(IMPORT_OPS).join(', ')}`);
    const attrs: Record<string, Attr | ImportedTensor> = {};
    for (const a of n.attribute) {
      if (!known!.includes(a.name)) fail(`${where}: attribute ${a.name} is not supported`);
      const v = readAttr(a, where, fail);
      if (!isTensor(v) && UNSUPPORTED_VALUE[`${n.opType}.${a.name}`]?.(v))
        fail(`${where}: attribute ${a.name}=${JSON.stringify(v.value)} is not supported`);
      attrs[a.name] = v;
    }
    if (n.opType === 'Constant') {
      tensors.set(n.output[0]!, constantValue(n.output[0]!, attrs, fail));
      continue;
    }
    nodes.push(readNode(n.name || n.output[0]!, n.opType, [...n.input], [...n.output], attrs, where, fail));
  }
  const floatInitializers = graph.initializer
    .map((t) => t.name)
    .filter((name) => tensors.get(name)!.dtype === 'float32');
  const [z, t] = inputs.map(declared);
  return { file, opset: version, z: z!, t, output: graph.output[0]!.name, tensors, floatInitializers, nodes };
}

/**
 * One node in the IR's form: ConstantOfShape's tensor value becomes the attributes `value` (floats) and
 * `to` (a Cast code), so every IR attribute stays a plain Attr.
 */
function readNode(
  name: string,
  op: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, Attr | ImportedTensor>,
  where: string,
  fail: (m: string) => never,
): ImportedNode {
  const plain: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (!isTensor(v)) {
      plain[k] = v;
      continue;
    }
    if (op !== 'ConstantOfShape' || v.data.length !== 1) fail(`${where}: tensor attribute ${k} is not supported`);
    plain.value = { kind: 'floats', value: [Number(v.data[0])] };
    plain.to = { kind: 'int', value: { float32: 1, float64: 11, int64: 7, bool: 9 }[v.dtype] };
  }
  return { name, op, inputs, outputs, attrs: plain };
}

/**
 * The same ONNX file with some float32 initializers' values replaced (trained weights), every name, node
 * and attribute kept: what `export` writes for an imported field, loadable back into its PyTorch module.
 */
export function withInitializers(
  bytes: Uint8Array,
  values: Readonly<Record<string, Float32Array>>,
  file: string,
): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  for (const t of model.graph?.initializer ?? []) {
    const v = t.name ? values[t.name] : undefined;
    if (v === undefined) continue;
    const count = (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || v.length !== count)
      throw new FileFormatError(file, `initializer ${t.name} does not take ${v.length} float32 values`);
    t.rawData = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    t.floatData = [];
  }
  return onnx.ModelProto.encode(model).finish();
}
