/**
 * One SHA-1 per ONNX graph the project writes, to show that a refactor leaves every graph byte-identical:
 * training (with and without gradients), step and step-VJP, field and field-VJP, head-loss, solve and
 * effective-model graphs, and the field/head/encoder files writeBundle writes, for every field kind under the
 * 5 fixed solvers and dopri5 (the step graphs under every tableau), in float32 and float64, portable and with
 * an NCHWc block of 8 where a graph takes one.
 *
 *   npx tsx scripts/graph-hashes.ts > /tmp/hashes.txt     # one "sha1  name" line per graph
 *
 * Models are seeded, so the hashes depend on the graph writers alone.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../src/random.js';
import { initParams } from '../src/models/params.js';
import { parseFieldSpec } from '../src/models/spec.js';
import { augmentedShape, type Model, type ModelConfig } from '../src/models/types.js';
import { ENCODER_FILE, FIELD_FILE, HEAD_FILE, writeBundle } from '../src/onnx/bundle.js';
import type { FloatType, GraphBuilder } from '../src/graph/ir/graph.js';
import {
  effectiveModelGraph,
  encoderGraph,
  fieldGraph,
  headGraph,
  solveGraph,
} from '../src/onnx/lower/model-graphs.js';
import { fieldVjpGraph, stepGraph } from '../src/onnx/lower/step-graph.js';
import { headLossGraph, trainGraph } from '../src/onnx/lower/train-graph.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { FIXED_METHODS, getTableau, METHODS } from '../src/solvers/tableau.js';

const FIELDS: readonly [field: string, inputShape: number[], augment: number][] = [
  ['mlp:width=8,act=tanh,time', [3], 1],
  ['mlp:width=6,depth=2,act=softplus', [2], 0],
  ['conv1d:channels=16', [5], 1],
  ['conv2d:channels=8', [1, 4, 4], 1],
];
const FLOATS: readonly FloatType[] = ['float32', 'float64'];
const BATCH = 3;
/** h = 0.3 over [0, 1]: four steps, the last one shorter (the grid's remainder). */
const TRAIN_SOLVERS = [...FIXED_METHODS.map((m) => `${m}:0.3`), 'rk4:steps=2', 'dopri5:1e-5'];

function modelFor(fieldSpec: string, inputShape: number[], augment: number): Model {
  const stateShape = augmentedShape(inputShape, augment);
  const field = parseFieldSpec(fieldSpec);
  const config: ModelConfig = { inputShape, augment, stateShape, classes: 3, field, t0: 0, t1: 1 };
  const rng = new Rng(7);
  return { config, params: initParams(config, () => rng.normal()) };
}

function sha1(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

const lines: string[] = [];
const emit = (name: string, write: () => GraphBuilder): void => {
  let hash: string;
  try {
    hash = sha1(write().toBytes());
  } catch (e) {
    // A refusal (an adaptive solver has no unrolled graph) is part of the baseline too.
    hash = `refused: ${(e as Error).message.split('\n')[0]}`;
  }
  lines.push(`${hash}  ${name}`);
};

for (const [field, inputShape, augment] of FIELDS) {
  const model = modelFor(field, inputShape, augment);
  const { config } = model;
  const blocks = field.startsWith('conv') ? [0, 8] : [0];
  for (const float of FLOATS) {
    for (const nchwcBlock of blocks) {
      const at = `${field} ${float} nchwc=${nchwcBlock}`;
      emit(`field ${at}`, () => fieldGraph(model, { float, nchwcBlock }));
      emit(`field-vjp ${at}`, () => fieldVjpGraph(config, { batch: BATCH, float, nchwcBlock }).builder);
      for (const method of METHODS) {
        const tab = getTableau(method);
        emit(`step ${method} ${at}`, () => stepGraph(config, tab, { batch: BATCH, float, nchwcBlock }).builder);
        const vjp = { batch: BATCH, float, nchwcBlock, vjp: true };
        emit(`step-vjp ${method} ${at}`, () => stepGraph(config, tab, vjp).builder);
      }
      for (const s of TRAIN_SOLVERS) {
        const spec = parseSolverSpec(s);
        emit(`train ${s} ${at}`, () => trainGraph(config, spec, { batch: BATCH, float, nchwcBlock }).builder);
        const forward = { batch: BATCH, float, nchwcBlock, gradients: false, logits: true };
        emit(`loss ${s} ${at}`, () => trainGraph(config, spec, forward).builder);
      }
    }
    const at = `${field} ${float}`;
    emit(`head ${at}`, () => headGraph(model, { float }));
    emit(`encoder ${at}`, () => encoderGraph(model, { float }));
    emit(`head-loss ${at}`, () => headLossGraph(config, { batch: BATCH, float }).builder);
    for (const s of TRAIN_SOLVERS) {
      const spec = parseSolverSpec(s);
      emit(`solve ${s} ${at}`, () => solveGraph(model, spec, { float }));
      emit(`effective ${s} ${at}`, () => effectiveModelGraph(model, spec, { float }));
      emit(`effective ${s} ${at} [0.5,2]`, () => effectiveModelGraph(model, spec, { float, t0: 0.5, t1: 2 }));
    }
  }
}
// The files of an exported bundle (onnx/bundle.ts), as written to disk.
const dir = await mkdtemp(path.join(os.tmpdir(), 'graph-hashes-'));
try {
  for (const [field, inputShape, augment] of FIELDS) {
    await writeBundle(modelFor(field, inputShape, augment), dir);
    for (const file of [FIELD_FILE, HEAD_FILE, ENCODER_FILE]) {
      const at = path.join(dir, file);
      if (existsSync(at)) lines.push(`${sha1(await readFile(at))}  bundle ${file} ${field}`);
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(lines.join('\n') + '\n');
