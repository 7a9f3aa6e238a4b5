/**
 * Model directories: `model.json` (configuration, training provenance and a
 * parameter index) and `params.bin` (float32, little-endian, concatenated).
 * Enough to re-evaluate the model later on another machine.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FileFormatError, OdenessError } from '../errors.js';
import {
  describeIssue,
  MODEL_FORMAT_VERSION,
  MODEL_KIND,
  ModelFileSchema,
  parseWith,
  type ModelFile,
  type TrainingInfo,
} from '../formats/index.js';
import { formatFieldSpec, parseFieldSpec } from './spec.js';
import { checkParams } from './params.js';
import type { FieldSpec, Model, ModelConfig, Params } from './types.js';

export { MODEL_FORMAT_VERSION, type ModelFile, type TrainingInfo } from '../formats/index.js';

export interface SavedModel extends Model {
  readonly training: TrainingInfo;
  readonly dir: string;
}

/** Synchronous, like a bundle's files (onnx/bundle.ts): a job writes its model with nothing else to do. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

export async function saveModel(dir: string, model: Model, training: TrainingInfo): Promise<void> {
  mkdirSync(dir, { recursive: true });
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
  const file: ModelFile = {
    formatVersion: MODEL_FORMAT_VERSION,
    kind: MODEL_KIND,
    config: {
      ...model.config,
      field: await keepFieldFile(dir, model.config.field),
      inputShape: [...model.config.inputShape],
      stateShape: [...model.config.stateShape],
    },
    training,
    params: index,
    createdAt: new Date().toISOString(),
  };
  // params first, then the JSON that points at them: a reader never sees an index without data.
  writeAtomic(path.join(dir, 'params.bin'), new Uint8Array(all.buffer));
  writeAtomic(path.join(dir, 'model.json'), JSON.stringify(file, null, 2) + '\n');
}

/** An imported field's file, copied beside the model (its bytes checked by hash when read). */
const FIELD_SOURCE = 'field-source.onnx';

/**
 * A model directory carries its imported field's ONNX file, so it evaluates on any machine: a model trained
 * by a cluster worker would otherwise name the worker's cached copy. model.json names it relative to itself.
 */
async function keepFieldFile(dir: string, field: FieldSpec): Promise<FieldSpec> {
  if (field.kind !== 'onnx') return field;
  const target = path.join(dir, FIELD_SOURCE);
  if (path.resolve(field.file) !== path.resolve(target)) writeAtomic(target, await fs.readFile(field.file));
  return { ...field, file: FIELD_SOURCE };
}

/** A relative field file in model.json lies in the model directory. */
function locateStoredField(field: { kind: string; file?: unknown }, dir: string): { kind: string; file?: unknown } {
  if (field.kind !== 'onnx' || typeof field.file !== 'string' || path.isAbsolute(field.file)) return field;
  return { ...field, file: path.resolve(dir, field.file) };
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
  if (!stat.isDirectory())
    throw new FileFormatError(dir, 'is not a directory (expected a model directory with model.json and params.bin)');
  let text: string;
  try {
    text = await fs.readFile(jsonFile, 'utf8');
  } catch {
    throw new FileFormatError(jsonFile, 'missing; is this a model directory written by `odeness train`?');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(jsonFile, `not valid JSON (${(e as Error).message})`);
  }
  const file = parseWith(ModelFileSchema, raw, (i) => new FileFormatError(jsonFile, describeIssue(i)));
  const config = {
    ...file.config,
    field: checkField(locateStoredField(file.config.field, dir), jsonFile),
  } as ModelConfig;
  let bin: Buffer;
  try {
    bin = await fs.readFile(binFile);
  } catch {
    throw new FileFormatError(binFile, 'missing');
  }
  const total = file.params.reduce((n, p) => n + p.length, 0);
  if (bin.byteLength !== total * 4)
    throw new FileFormatError(binFile, `has ${bin.byteLength} bytes, expected ${total * 4} (${total} float32 values)`);
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const params: Params = {};
  for (const p of file.params) params[p.name] = { shape: p.shape, data: all.slice(p.offset, p.offset + p.length) };
  checkParams(config, params, jsonFile);
  return { config, params, training: file.training, dir };
}

/** The field spec stored in model.json, checked by the field parser (its kinds and options live there). */
function checkField(field: { kind: string }, file: string): FieldSpec {
  try {
    const parsed = parseFieldSpec(formatFieldSpec(field as FieldSpec, { located: true }));
    if (!isDeepStrictEqual(parsed, field)) throw new OdenessError(`expected a field like ${JSON.stringify(parsed)}`);
    return parsed;
  } catch (e) {
    if (e instanceof OdenessError || e instanceof TypeError)
      throw new FileFormatError(file, `config.field: ${e.message}, got ${JSON.stringify(field).slice(0, 80)}`);
    throw e;
  }
}
