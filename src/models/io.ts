/**
 * Model directories: `model.json` (configuration, training provenance and a
 * parameter index) and `params.bin` (float32, little-endian, concatenated).
 * Enough to re-evaluate the model later on another machine.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { FileFormatError } from '../errors.js';
import { checkParams } from './params.js';
import type { Model, ModelConfig, Params } from './types.js';

export const MODEL_FORMAT_VERSION = 1;

export interface TrainingInfo {
  /** Dataset spec string, e.g. spheres:dupont2019:dim=2 */
  readonly dataset: string;
  /** Training solver spec at the end of training (after adaptation). */
  readonly solver: string;
  /** Solver spec training started with (differs when adapted). */
  readonly initialSolver?: string;
  readonly seed: number;
  readonly iterations: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly engine?: string;
  readonly adapt?: boolean;
  /** complete | diverged (the last good checkpoint was kept) */
  readonly status: 'complete' | 'diverged';
  readonly note?: string;
}

export interface ModelFile {
  readonly formatVersion: number;
  readonly kind: 'odeness-model';
  readonly config: ModelConfig;
  readonly training: TrainingInfo;
  readonly params: { name: string; shape: number[]; offset: number; length: number }[];
  readonly createdAt: string;
}

export interface SavedModel extends Model {
  readonly training: TrainingInfo;
  readonly dir: string;
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

export async function saveModel(dir: string, model: Model, training: TrainingInfo): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const names = Object.keys(model.params).sort();
  let offset = 0;
  const index = names.map((name) => {
    const p = model.params[name]!;
    const entry = { name, shape: [...p.shape], offset, length: p.data.length };
    offset += p.data.length;
    return entry;
  });
  const all = new Float32Array(offset);
  for (const e of index) all.set(model.params[e.name]!.data, e.offset);
  const file: ModelFile = { formatVersion: MODEL_FORMAT_VERSION, kind: 'odeness-model', config: model.config, training, params: index, createdAt: new Date().toISOString() };
  // params first, then the JSON that points at them: a reader never sees an index without data.
  await writeAtomic(path.join(dir, 'params.bin'), new Uint8Array(all.buffer));
  await writeAtomic(path.join(dir, 'model.json'), JSON.stringify(file, null, 2) + '\n');
}

export async function loadModel(dir: string): Promise<SavedModel> {
  const jsonFile = path.join(dir, 'model.json');
  const binFile = path.join(dir, 'params.bin');
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    throw new FileFormatError(dir, 'model directory does not exist');
  }
  if (!stat.isDirectory()) throw new FileFormatError(dir, 'is not a directory (expected a model directory with model.json and params.bin)');
  let text: string;
  try {
    text = await fs.readFile(jsonFile, 'utf8');
  } catch {
    throw new FileFormatError(jsonFile, 'missing; is this a model directory written by `odeness train`?');
  }
  let file: ModelFile;
  try {
    file = JSON.parse(text) as ModelFile;
  } catch (e) {
    throw new FileFormatError(jsonFile, `not valid JSON (${(e as Error).message})`);
  }
  if (file.kind !== 'odeness-model') throw new FileFormatError(jsonFile, `"kind" must be "odeness-model", got ${JSON.stringify(file.kind)}`);
  if (file.formatVersion !== MODEL_FORMAT_VERSION) throw new FileFormatError(jsonFile, `formatVersion ${file.formatVersion} is not supported (expected ${MODEL_FORMAT_VERSION})`);
  if (!file.config || !Array.isArray(file.params)) throw new FileFormatError(jsonFile, 'missing "config" or "params"');
  let bin: Buffer;
  try {
    bin = await fs.readFile(binFile);
  } catch {
    throw new FileFormatError(binFile, 'missing');
  }
  const total = file.params.reduce((n, p) => n + p.length, 0);
  if (bin.byteLength !== total * 4) throw new FileFormatError(binFile, `has ${bin.byteLength} bytes, expected ${total * 4} (${total} float32 values)`);
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const params: Params = {};
  for (const p of file.params) params[p.name] = { shape: p.shape, data: all.slice(p.offset, p.offset + p.length) };
  checkParams(file.config, params, jsonFile);
  return { config: file.config, params, training: file.training, dir };
}
