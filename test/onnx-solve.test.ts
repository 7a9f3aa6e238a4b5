/**
 * Foreign vector fields: ONNX graphs written directly with onnx-proto (not by
 * the odeness exporter), solved with solveField and compared to closed forms.
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxPkg from 'onnx-proto';
import { FileFormatError, ShapeError } from '../src/errors.js';
import { solveField } from '../src/onnx/evaluate.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

const { onnx } = onnxPkg;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

type Dim = number | string;
const valueInfo = (name: string, dims: Dim[] | undefined) =>
  onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        ...(dims
          ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } }
          : {}),
      },
    },
  });
const floatTensor = (name: string, dims: number[], values: number[]) =>
  onnx.TensorProto.create({ name, dataType: FLOAT, dims, floatData: values });

interface ForeignField {
  /** Matrix A of z' = A z (2×2) or z' = t·A z when timeDependent. */
  A: number[][];
  /** 'none': only z; 'vec': t [1]; 'scalar': t []. */
  time: 'none' | 'vec' | 'scalar';
  timeDependent?: boolean;
  zName?: string;
  tName?: string;
  outName?: string;
  /** Declare t before z. */
  tFirst?: boolean;
  /** Output dims as declared (default [batch, 2]); null = undeclared. */
  outDims?: Dim[] | null;
  /** Columns of the output (default 2: a proper field). */
  outCols?: number;
}

/** z' = A z as dz = z·Aᵀ (MatMul), optionally + 0·t or × t. */
function foreignField(f: ForeignField): Uint8Array {
  const z = f.zName ?? 'z';
  const t = f.tName ?? 't';
  const out = f.outName ?? 'dz';
  const cols = f.outCols ?? 2;
  const AT: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < cols; j++) AT.push(f.A[j]?.[i] ?? 0.5);
  const nodes = [];
  const inits = [floatTensor('AT', [2, cols], AT)];
  if (f.time === 'none') {
    nodes.push(onnx.NodeProto.create({ name: 'mm', opType: 'MatMul', input: [z, 'AT'], output: [out] }));
  } else {
    nodes.push(onnx.NodeProto.create({ name: 'mm', opType: 'MatMul', input: [z, 'AT'], output: ['Az'] }));
    if (f.timeDependent) {
      nodes.push(onnx.NodeProto.create({ name: 'mul', opType: 'Mul', input: ['Az', t], output: [out] }));
    } else {
      inits.push(floatTensor('zero', [], [0]));
      nodes.push(onnx.NodeProto.create({ name: 'mul', opType: 'Mul', input: [t, 'zero'], output: ['t0'] }));
      nodes.push(onnx.NodeProto.create({ name: 'add', opType: 'Add', input: ['Az', 't0'], output: [out] }));
    }
  }
  const zInfo = valueInfo(z, ['N', 2]);
  const tInfo = f.time === 'none' ? [] : [valueInfo(t, f.time === 'vec' ? [1] : [])];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 15 }],
    producerName: 'hand-written test',
    graph: onnx.GraphProto.create({
      name: 'foreign',
      node: nodes,
      initializer: inits,
      input: f.tFirst ? [...tInfo, zInfo] : [zInfo, ...tInfo],
      output: [valueInfo(out, f.outDims === null ? undefined : (f.outDims ?? ['N', cols]))],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** exp(s·A) for a 2×2 matrix, closed form. */
function expm2(A: number[][], s: number): number[][] {
  const m = [
    [s * A[0]![0]!, s * A[0]![1]!],
    [s * A[1]![0]!, s * A[1]![1]!],
  ];
  const tau = m[0]![0]! + m[1]![1]!;
  const det = m[0]![0]! * m[1]![1]! - m[0]![1]! * m[1]![0]!;
  const disc = (tau * tau) / 4 - det;
  let c: number;
  let sq: number; // sinh(q)/q, sin(q)/q or 1
  if (disc > 0) {
    const q = Math.sqrt(disc);
    c = Math.cosh(q);
    sq = Math.sinh(q) / q;
  } else if (disc < 0) {
    const q = Math.sqrt(-disc);
    c = Math.cos(q);
    sq = Math.sin(q) / q;
  } else {
    c = 1;
    sq = 1;
  }
  const e = Math.exp(tau / 2);
  return [
    [e * (c + sq * (m[0]![0]! - tau / 2)), e * sq * m[0]![1]!],
    [e * sq * m[1]![0]!, e * (c + sq * (m[1]![1]! - tau / 2))],
  ];
}

const apply = (M: number[][], v: readonly number[]) => [
  M[0]![0]! * v[0]! + M[0]![1]! * v[1]!,
  M[1]![0]! * v[0]! + M[1]![1]! * v[1]!,
];

const A_COMPLEX = [
  [-0.5, 1.2],
  [-1.0, -0.3],
];
const A_REAL = [
  [0.2, 0.5],
  [0.3, -0.4],
];
const Z0 = [
  [1, 0],
  [0, 1],
  [0.3, -0.7],
  [-2, 0.5],
];

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'odeness-onnx-solve-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeField(name: string, f: ForeignField): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, foreignField(f));
  return file;
}

function maxErr(got: number[][], want: number[][]): number {
  let e = 0;
  got.forEach((row, i) => row.forEach((v, j) => (e = Math.max(e, Math.abs(v - want[i]![j]!)))));
  return e;
}

test('autonomous linear field (only z): rk4 and dopri5 match exp(A)·z0', async (t) => {
  for (const A of [A_COMPLEX, A_REAL]) {
    const file = await writeField(`auto-${A[0]![0]}.onnx`, { A, time: 'none' });
    const exact = Z0.map((z) => apply(expm2(A, 1), z));
    const rk4 = await solveField(file, Z0, parseSolverSpec('rk4:0.01'));
    t.true(maxErr(rk4.z1, exact) < 1e-5, `rk4 error ${maxErr(rk4.z1, exact)}`);
    t.deepEqual([rk4.nfe, rk4.accepted, rk4.rejected], [400, 100, 0]);
    const dp = await solveField(file, Z0, parseSolverSpec('dopri5:1e-6'));
    t.true(maxErr(dp.z1, exact) < 1e-4, `dopri5 error ${maxErr(dp.z1, exact)}`);
    t.true(dp.accepted > 0 && dp.nfe > 6 * dp.accepted);
  }
});

test('field with t [1] that ignores it (A z + 0·t)', async (t) => {
  const file = await writeField('t-vec-zero.onnx', { A: A_COMPLEX, time: 'vec' });
  const exact = Z0.map((z) => apply(expm2(A_COMPLEX, 1), z));
  const r = await solveField(file, Z0, parseSolverSpec('rk4:steps=50'));
  t.true(maxErr(r.z1, exact) < 1e-5, `error ${maxErr(r.z1, exact)}`);
  t.is(r.nfe, 200);
});

test('time-dependent field t·A z with scalar t: z(1) = exp(A/2)·z0', async (t) => {
  const file = await writeField('t-scalar.onnx', { A: A_REAL, time: 'scalar', timeDependent: true });
  const exact = Z0.map((z) => apply(expm2(A_REAL, 0.5), z));
  const r = await solveField(file, Z0, parseSolverSpec('rk4:0.02'));
  t.true(maxErr(r.z1, exact) < 1e-5, `error ${maxErr(r.z1, exact)}`);
});

test('time-dependent field with t [1] on [0.5, 1.5]: z = exp(A (t1² − t0²)/2)·z0', async (t) => {
  const file = await writeField('t-vec.onnx', { A: A_COMPLEX, time: 'vec', timeDependent: true });
  const exact = Z0.map((z) => apply(expm2(A_COMPLEX, (1.5 ** 2 - 0.5 ** 2) / 2), z));
  const r = await solveField(file, Z0, parseSolverSpec('dopri5:rtol=1e-7,atol=1e-8'), { t0: 0.5, t1: 1.5 });
  t.true(maxErr(r.z1, exact) < 1e-4, `error ${maxErr(r.z1, exact)}`);
});

test('inputs matched by rank when not named t/z (time first, named "time" and "state")', async (t) => {
  for (const time of ['vec', 'scalar'] as const) {
    const file = await writeField(`ranked-${time}.onnx`, {
      A: A_REAL,
      time,
      timeDependent: true,
      zName: 'state',
      tName: 'time',
      outName: 'out',
      tFirst: true,
    });
    const exact = Z0.map((z) => apply(expm2(A_REAL, 0.5), z));
    const r = await solveField(file, Z0, parseSolverSpec('rk4:0.05'));
    t.true(maxErr(r.z1, exact) < 1e-4, `${time}: error ${maxErr(r.z1, exact)}`);
  }
});

test('a field whose declared output shape differs from its input is rejected, naming the file', async (t) => {
  const file = await writeField('wide-out.onnx', { A: A_REAL, time: 'none', outCols: 3 });
  const e = await t.throwsAsync(solveField(file, Z0, parseSolverSpec('euler:0.5')), { instanceOf: ShapeError });
  t.true(e!.message.includes(file), e!.message);
  t.regex(e!.message, /output dz has shape \[N, 3\] but input z has shape \[N, 2\]/);
});

test('a field with an undeclared output shape that differs is caught at the first evaluation', async (t) => {
  const file = await writeField('undeclared-out.onnx', { A: A_REAL, time: 'none', outCols: 3, outDims: null });
  const e = await t.throwsAsync(solveField(file, Z0, parseSolverSpec('euler:0.5')), { instanceOf: ShapeError });
  t.true(e!.message.includes(file), e!.message);
  t.false(e!.message.includes('\n'));
});

test('missing and truncated field files are FileFormatErrors naming the file', async (t) => {
  const missing = path.join(dir, 'nope', 'field.onnx');
  const e1 = await t.throwsAsync(solveField(missing, Z0, parseSolverSpec('euler:0.5')), {
    instanceOf: FileFormatError,
  });
  t.is(e1!.message, `${missing}: file not found`);

  const bytes = foreignField({ A: A_REAL, time: 'none' });
  const truncated = path.join(dir, 'truncated.onnx');
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const e2 = await t.throwsAsync(solveField(truncated, Z0, parseSolverSpec('euler:0.5')), {
    instanceOf: FileFormatError,
  });
  t.true(e2!.message.startsWith(`${truncated}: not a valid ONNX model`), e2!.message);
  t.false(e2!.message.includes('\n'));

  const garbage = path.join(dir, 'garbage.onnx');
  await writeFile(garbage, 'this is not protobuf at all');
  const e3 = await t.throwsAsync(solveField(garbage, Z0, parseSolverSpec('euler:0.5')), {
    instanceOf: FileFormatError,
  });
  t.true(e3!.message.startsWith(`${garbage}: `), e3!.message);
});

test('initial states of the wrong width are rejected, naming the file', async (t) => {
  const file = await writeField('auto-width.onnx', { A: A_REAL, time: 'none' });
  const e = await t.throwsAsync(solveField(file, [[1, 2, 3]], parseSolverSpec('euler:0.5')), {
    instanceOf: ShapeError,
  });
  t.true(e!.message.includes(file), e!.message);
});
