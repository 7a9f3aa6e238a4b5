/**
 * Where a compiled training step spends its time: runs the ort training graph
 * of one workload with onnxruntime's profiler on and sums kernel time per op
 * type (and the top nodes). For speed work on the graph writers.
 *
 *   npx tsx scripts/profile-train.ts [--field conv1d] [--dim 900 | --input 1,28,28 --classes 10] [--solver euler:steps=8]
 *       [--batch 128] [--steps 5] [--top 15] [--dump FILE.onnx]
 */
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseFieldSpec } from '../src/models/spec.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { nchwcBlockSize } from '../src/onnx/nchwc.js';
import { createSession } from '../src/onnx/runtime/session.js';
import { trainGraph } from '../src/onnx/lower/train-graph.js';
import { paramShapes } from '../src/models/params.js';
import { Rng } from '../src/random.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const inputShape = opt('input', opt('dim', '900')).split(',').map(Number);
const dim = inputShape.reduce((a, b) => a * b, 1);
const classes = Number(opt('classes', '2'));
const batch = Number(opt('batch', '128'));
const steps = Number(opt('steps', '5'));
const top = Number(opt('top', '15'));
const config = {
  inputShape,
  augment: 0,
  stateShape: inputShape,
  classes,
  field: parseFieldSpec(opt('field', 'conv1d')),
  t0: 0,
  t1: 1,
};
const spec = parseSolverSpec(opt('solver', 'euler:steps=8'));
const g = trainGraph(config, spec, { batch, nchwcBlock: await nchwcBlockSize() });
const bytes = g.builder.toBytes();
const dump = opt('dump', '');
if (dump) writeFileSync(dump, bytes);
const dir = mkdtempSync(path.join(os.tmpdir(), 'odeness-profile-'));
const session = await createSession(bytes, { profilePrefix: path.join(dir, 'p') });
const rng = new Rng(1);
const feeds: Record<string, ort.Tensor> = {
  x: new ort.Tensor(
    'float32',
    Float32Array.from({ length: batch * dim }, () => rng.normal()),
    [batch, ...inputShape],
  ),
  labels: new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % classes)),
    [batch],
  ),
};
for (const p of paramShapes(config)) {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const std = p.fanIn ? Math.sqrt(2 / p.fanIn) : 0;
  feeds[p.name] = new ort.Tensor(
    'float32',
    Float32Array.from({ length: n }, () => std * rng.normal()),
    [...p.shape],
  );
}
const wall: number[] = [];
for (let i = 0; i < steps + 1; i++) {
  const t0 = performance.now();
  await session.run(feeds);
  if (i > 0) wall.push(performance.now() - t0);
}
(session as unknown as { endProfiling(): void }).endProfiling();
await session.release();
const file = (await import('node:fs')).readdirSync(dir).find((f) => f.endsWith('.json'))!;
const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
  cat: string;
  name: string;
  dur: number;
  args?: {
    op_name?: string;
    output_size?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}[];
rmSync(dir, { recursive: true, force: true });
const byOp = new Map<string, { us: number; n: number }>();
const byNode = new Map<string, { op: string; us: number; shapes: string }>();
let total = 0;
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const op = e.args?.op_name ?? '?';
  const r = byOp.get(op) ?? { us: 0, n: 0 };
  r.us += e.dur;
  r.n++;
  byOp.set(op, r);
  const node = e.name.replace(/_kernel_time$/, '');
  const shapes = `${(e.args?.input_type_shape ?? []).map((t) => JSON.stringify(Object.values(t)[0])).join(' ')} → ${(e.args?.output_type_shape ?? []).map((t) => JSON.stringify(Object.values(t)[0])).join(' ')}`;
  const s = byNode.get(node) ?? { op, us: 0, shapes };
  s.us += e.dur;
  byNode.set(node, s);
  total += e.dur;
}
const runs = steps + 1;
wall.sort((a, b) => a - b);
console.log(
  `${g.builder.nodes.length} graph nodes; median wall ${wall[wall.length >> 1]!.toFixed(1)} ms/step; kernel time ${(total / runs / 1000).toFixed(1)} ms/step (profiled runs incl. warm-up)`,
);
for (const [op, r] of [...byOp].sort((a, b) => b[1].us - a[1].us))
  console.log(
    `${op.padEnd(22)} ${(r.us / runs / 1000).toFixed(2).padStart(8)} ms  ${((100 * r.us) / total).toFixed(1).padStart(5)} %  ${String(r.n / runs).padStart(5)} nodes`,
  );
console.log('--- top nodes');
for (const [name, r] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, top))
  console.log(`${(r.us / runs / 1000).toFixed(2).padStart(8)} ms  ${r.op.padEnd(16)} ${name.padEnd(24)} ${r.shapes}`);
