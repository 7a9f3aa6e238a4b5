/**
 * The bundle: a directory any tool can produce and odeness re-evaluates.
 *
 *   field.onnx     z [batch, ...state] (+ optional t [] or [1]) → dz, same shape as z
 *   head.onnx      z [batch, ...state] (or [batch, S]) → logits [batch, classes]
 *   encoder.onnx   optional: x [batch, ...input] → z [batch, ...state]; identity when absent
 *   manifest.json  optional: BundleManifest below, with each file's role and SHA-256
 *
 * `export --effective` writes a directory of its own: effective.onnx (x → logits,
 * a fixed-step solve unrolled) and a manifest.json recording it.
 *
 * A directory with only field.onnx and head.onnx is valid: t0 = 0, t1 = 1, the
 * state shape comes from field.onnx's declared input and the class count from
 * head.onnx's declared output. The same type and validator serve the writer
 * and the reader. A manifest with `files` is a promise: a file whose bytes or
 * role differ from it is refused (a replaced field.onnx, a head copied over
 * it); a manifest without (written before hashes were recorded) is accepted,
 * and the reader says its files are unverified.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FileFormatError, ShapeError } from '../errors.js';
import {
  BUNDLE_FORMAT_VERSION,
  BundleManifestSchema,
  describeIssue,
  parseWith,
  type BundleManifest,
  type FileRole,
} from '../formats/index.js';
import { fieldKind } from '../models/fields/index.js';
import { formatFieldSpec } from '../models/spec.js';
import type { Model } from '../models/types.js';
import { formatSolverSpec, type FixedSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { checkModel, effectiveModelGraph, encoderGraph, fieldGraph, headGraph } from './lower/model-graphs.js';
import { formatDims, OnnxField, OnnxMap, product, readOnnxFile, type SessionOptions } from './session.js';

export const FIELD_FILE = 'field.onnx';
export const HEAD_FILE = 'head.onnx';
export const ENCODER_FILE = 'encoder.onnx';
export const MANIFEST_FILE = 'manifest.json';
/** The file `export --effective` writes: x → logits with a fixed-step solve unrolled. */
export const EFFECTIVE_FILE = 'effective.onnx';

/** The role each file name of a bundle stands for. */
export const FILE_ROLE: Readonly<Record<string, FileRole>> = {
  [FIELD_FILE]: 'field',
  [HEAD_FILE]: 'head',
  [ENCODER_FILE]: 'encoder',
  [EFFECTIVE_FILE]: 'effective',
};

const ROLE_TEXT: Record<FileRole, string> = {
  field: 'a vector field z → dz',
  head: 'a head z → logits',
  encoder: 'an encoder x → z',
  effective: 'an effective model x → logits',
};

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A graph to open: its bytes, and the file name messages give it (a path, or a label for an in-memory graph). */
export interface GraphPart {
  readonly file: string;
  readonly bytes: Uint8Array;
}

export { BUNDLE_FORMAT_VERSION, type BundleManifest } from '../formats/index.js';

/**
 * Validate a parsed manifest (writer and reader alike); applies the t0/t1
 * defaults. Errors name the file, the offending key, the value and what is allowed.
 */
export function validateManifest(raw: unknown, file: string): BundleManifest {
  return parseWith(
    BundleManifestSchema,
    raw,
    (i) =>
      // An unknown top-level key: the message names it and the keys a manifest may have.
      new FileFormatError(
        file,
        i.unknownKey && !i.path.includes('.') ? i.expected.replace('allowed keys:', 'expected') : describeIssue(i),
      ),
  );
}

export interface BundleMeta {
  trainSolver?: SolverSpec | string;
  dataset?: string;
  seed?: number | string;
  provenance?: Record<string, unknown>;
}

function manifestOf(model: Model, meta: BundleMeta, extra: Record<string, unknown>, file: string): BundleManifest {
  const { config } = model;
  return validateManifest(
    {
      formatVersion: BUNDLE_FORMAT_VERSION,
      t0: config.t0,
      t1: config.t1,
      stateShape: [...config.stateShape],
      classes: config.classes,
      ...(meta.trainSolver !== undefined
        ? { trainSolver: typeof meta.trainSolver === 'string' ? meta.trainSolver : formatSolverSpec(meta.trainSolver) }
        : {}),
      ...(meta.dataset !== undefined ? { dataset: meta.dataset } : {}),
      ...(meta.seed !== undefined ? { seed: meta.seed } : {}),
      ...extra,
      provenance: {
        producer: 'odeness',
        field: formatFieldSpec(config.field),
        inputShape: [...config.inputShape],
        augment: config.augment,
        ...(meta.provenance ?? {}),
      },
    },
    file,
  );
}

/** A model's bundle files in memory, by file name (field, head, and the encoder when the state is augmented). */
export function bundleGraphs(model: Model): Map<string, Uint8Array> {
  checkModel(model);
  const files = new Map<string, Uint8Array>([
    [FIELD_FILE, fieldGraph(model).toBytes()],
    [HEAD_FILE, headGraph(model).toBytes()],
  ]);
  if (model.config.augment > 0) files.set(ENCODER_FILE, encoderGraph(model).toBytes());
  return files;
}

function fileRecords(files: Map<string, Uint8Array>): Record<string, { role: FileRole; sha256: string }> {
  return Object.fromEntries(
    [...files].map(([name, bytes]) => [name, { role: FILE_ROLE[name]!, sha256: sha256(bytes) }]),
  );
}

/** Write a model as a bundle directory; returns the manifest written (with each file's role and SHA-256). */
export async function writeBundle(model: Model, dir: string, meta: BundleMeta = {}): Promise<BundleManifest> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const files = bundleGraphs(model);
  // A field brought as a file is exported as that file with the trained weights (its names kept).
  const ownGraph = fieldKind(model.config.field).exportGraph?.(model.config.field, model.params);
  if (ownGraph) files.set(FIELD_FILE, ownGraph);
  const manifest = manifestOf(model, meta, { files: fileRecords(files) }, manifestFile);
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(path.join(dir, name), bytes);
  // A stale encoder would change the bundle's meaning; a stale effective model would contradict it.
  if (!files.has(ENCODER_FILE)) rmSync(path.join(dir, ENCODER_FILE), { force: true });
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/**
 * `export --effective`: DIR/effective.onnx (x → logits, `spec` unrolled) and
 * DIR/manifest.json recording its role, hash and the unrolled solver.
 */
export async function writeEffective(
  model: Model,
  spec: FixedSolverSpec,
  dir: string,
  meta: BundleMeta & { float?: 'float32' | 'float64' } = {},
) {
  const graph = effectiveModelGraph(model, spec, { float: meta.float });
  const files = new Map([[EFFECTIVE_FILE, graph.toBytes()]]);
  const file = path.join(dir, EFFECTIVE_FILE);
  const manifest = manifestOf(
    model,
    meta,
    { files: fileRecords(files), effectiveSolver: formatSolverSpec(spec) },
    path.join(dir, MANIFEST_FILE),
  );
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, files.get(EFFECTIVE_FILE)!);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return { file, manifest, nodes: graph.nodes.length };
}

export interface Bundle {
  readonly dir: string;
  readonly manifest: BundleManifest;
  /** Whether manifest.json was present (otherwise defaults and inferred shapes). */
  readonly hasManifest: boolean;
  /** Whether every file was checked against a hash in manifest.json. */
  readonly verified: boolean;
  /** Per-sample input shape: the encoder's declared input, or the state shape without an encoder. */
  readonly inputShape: readonly number[];
  readonly field: OnnxField;
  readonly head: OnnxMap;
  readonly encoder?: OnnxMap;
  /** Per-sample dims fed to head.onnx ([...state] or [S]). */
  readonly headInputDims: readonly number[];
  /** x [n × prod(inputShape)] → z(t0) [n × S] (a copy of x without an encoder). */
  encode(x: Float32Array, n: number): Promise<Float32Array>;
  /** z(t1) [n × S] → logits [n × classes]. */
  logits(z: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

// The bundle's small files are read and written synchronously (in async functions): a study job writes and
// reads its bundle with nothing else to do meanwhile, and each fs promise is two hops through libuv's thread
// pool, context switches that cost most where job processes outnumber cores (16 NATS workers on 2 cores).
async function exists(file: string): Promise<boolean> {
  return existsSync(file);
}

/** manifest.json of `dir` when present (validated), else undefined. */
export async function readManifest(dir: string): Promise<BundleManifest | undefined> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  if (!(await exists(manifestFile))) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch (e) {
    throw new FileFormatError(manifestFile, `not valid JSON: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  return validateManifest(raw, manifestFile);
}

/**
 * Check one file's bytes against the manifest of its directory: the hash it
 * records, and the role its name stands for. A manifest without `files` checks nothing.
 */
export function checkFile(
  file: string,
  bytes: Uint8Array,
  manifest: BundleManifest | undefined,
  manifestFile: string,
): void {
  const files = manifest?.files;
  if (!files) return;
  const name = path.basename(file);
  const want = files[name];
  if (!want)
    throw new FileFormatError(
      file,
      `not recorded in ${manifestFile} (it records ${Object.keys(files).join(', ')}); not part of this bundle`,
    );
  const role = FILE_ROLE[name];
  if (role && want.role !== role)
    throw new FileFormatError(
      file,
      `${manifestFile} records it as ${ROLE_TEXT[want.role]}, but ${name} must be ${ROLE_TEXT[role]}`,
    );
  const got = sha256(bytes);
  if (got === want.sha256) return;
  const twin = Object.entries(files).find(([other, r]) => other !== name && r.sha256 === got);
  if (twin)
    throw new FileFormatError(
      file,
      `holds the bytes of ${twin[0]} (${ROLE_TEXT[twin[1].role]}), not ${ROLE_TEXT[want.role]}`,
    );
  throw new FileFormatError(
    file,
    `SHA-256 ${got.slice(0, 12)}… does not match ${manifestFile} (${want.sha256.slice(0, 12)}…): ` +
      'the file was replaced or changed after export',
  );
}

/** A file the manifest records must be there: a bundle missing a recorded encoder means something else. */
function checkNoneMissing(
  dir: string,
  manifest: BundleManifest | undefined,
  present: readonly string[],
  manifestFile: string,
): void {
  for (const name of Object.keys(manifest?.files ?? {})) {
    if (!present.includes(name))
      throw new FileFormatError(path.join(dir, name), `recorded in ${manifestFile} but missing`);
  }
}

/**
 * Open a bundle directory: validate the manifest and the files' hashes, load the sessions, cross-check the declared
 * shapes.
 */
export async function readBundle(dir: string, options: SessionOptions = {}): Promise<Bundle> {
  if (!(await exists(dir))) throw new FileFormatError(dir, 'bundle directory not found');
  const fieldFile = path.join(dir, FIELD_FILE);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  if (!(await exists(fieldFile)) && (await exists(path.join(dir, EFFECTIVE_FILE)))) {
    throw new FileFormatError(
      fieldFile,
      `file not found: ${dir} holds an effective model (${EFFECTIVE_FILE}, x → logits), ` +
        'which has no vector field to solve or audit',
    );
  }
  for (const f of [HEAD_FILE, FIELD_FILE])
    if (!(await exists(path.join(dir, f))))
      throw new FileFormatError(path.join(dir, f), 'file not found (a bundle needs field.onnx and head.onnx)');
  const given = await readManifest(dir);
  const names = [FIELD_FILE, HEAD_FILE, ...((await exists(path.join(dir, ENCODER_FILE))) ? [ENCODER_FILE] : [])];
  const parts = new Map<string, GraphPart>();
  for (const name of names) {
    const file = path.join(dir, name);
    const bytes = await readOnnxFile(file);
    checkFile(file, bytes, given, manifestFile);
    parts.set(name, { file, bytes });
  }
  checkNoneMissing(dir, given, names, manifestFile);
  return openBundle(dir, parts, given, given ? manifestFile : undefined, options);
}

/**
 * Sessions over a bundle's graphs (from files, or in memory from a model),
 * cross-checked against each other and the manifest.
 */
export async function openBundle(
  dir: string,
  parts: ReadonlyMap<string, GraphPart>,
  given: BundleManifest | undefined,
  manifestFile: string | undefined,
  options: SessionOptions = {},
): Promise<Bundle> {
  const fieldPart = parts.get(FIELD_FILE)!;
  const encoderPart = parts.get(ENCODER_FILE);
  const opened: Releasable[] = [];
  try {
    const field = await OnnxField.load(fieldPart.file, {
      ...options,
      stateShape: given?.stateShape,
      bytes: fieldPart.bytes,
    });
    opened.push(field);
    const state: StateOf = { file: fieldPart.file, shape: field.stateShape, S: product(field.stateShape) };
    const head = await openHead(parts.get(HEAD_FILE)!, state, given, manifestFile, options, opened);
    const encoder = encoderPart && (await openEncoder(encoderPart, state, options, opened));
    const manifest = validateManifest(
      { ...(given ?? { formatVersion: BUNDLE_FORMAT_VERSION }), stateShape: [...state.shape], classes: head.classes },
      manifestFile ?? `${dir} (inferred manifest)`,
    );
    return {
      dir,
      manifest,
      hasManifest: given !== undefined,
      verified: given?.files !== undefined,
      inputShape: encoder?.inputDims ?? state.shape,
      field,
      head: head.map,
      encoder: encoder?.map,
      headInputDims: head.inputDims,
      async encode(x, n) {
        return encoder ? encoder.encode(x, n) : Float32Array.from(x);
      },
      logits: (z, n) => head.logits(z, n),
      async release() {
        await Promise.all(opened.map((s) => s.release()));
      },
    };
  } catch (e) {
    await Promise.all(opened.map((s) => s.release()));
    throw e;
  }
}

interface Releasable {
  release(): Promise<void>;
}

/** The state a bundle's field defines: the field's file (for messages), its per-sample shape and size. */
interface StateOf {
  readonly file: string;
  readonly shape: readonly number[];
  readonly S: number;
}

/** head.onnx opened and checked against the state and the manifest's class count. */
async function openHead(
  part: GraphPart,
  state: StateOf,
  given: BundleManifest | undefined,
  manifestFile: string | undefined,
  options: SessionOptions,
  opened: Releasable[],
): Promise<{
  map: OnnxMap;
  inputDims: readonly number[];
  classes: number;
  logits(z: Float32Array, n: number): Promise<Float32Array>;
}> {
  const headFile = part.file;
  const head = await OnnxMap.load(headFile, { ...options, input: 'z', output: 'logits', bytes: part.bytes });
  opened.push(head);
  let inputDims: readonly number[];
  if (!head.inputDims) inputDims = state.shape;
  else if (product(head.inputDims) === state.S) inputDims = head.inputDims;
  else {
    throw new ShapeError(
      `${headFile}: input ${head.input.name} takes ${product(head.inputDims)} values per sample ` +
        `(${formatDims(head.input.shape)}) but the state of ${state.file} has ${state.S} ${formatDims(state.shape)}`,
    );
  }
  let classes = head.outputDims && head.outputDims.length === 1 ? head.outputDims[0]! : undefined;
  if (classes === undefined) {
    // Undeclared: run the head once on a zero state.
    const probe = await head.run(new Float32Array(state.S), 1, inputDims);
    classes = probe.data.length;
  }
  const nClasses = classes;
  if (given && given.classes !== classes) {
    throw new ShapeError(
      `${headFile}: output ${head.output.name} has ${classes} classes but ${manifestFile} says ${given.classes}`,
    );
  }
  return {
    map: head,
    inputDims,
    classes,
    async logits(z, n) {
      const { data } = await head.run(z, n, inputDims);
      if (data.length !== n * nClasses)
        throw new ShapeError(
          `${headFile}: output ${head.output.name} has ${data.length / n} values per sample, expected ${nClasses}`,
        );
      return data;
    },
  };
}

/** encoder.onnx opened and checked: fixed per-sample input dims, an output the size of the state. */
async function openEncoder(
  part: GraphPart,
  state: StateOf,
  options: SessionOptions,
  opened: Releasable[],
): Promise<{ map: OnnxMap; inputDims: readonly number[]; encode(x: Float32Array, n: number): Promise<Float32Array> }> {
  const encoderFile = part.file;
  const encoder = await OnnxMap.load(encoderFile, { ...options, input: 'x', output: 'z', bytes: part.bytes });
  opened.push(encoder);
  if (!encoder.inputDims) {
    throw new ShapeError(
      `${encoderFile}: input ${encoder.input.name} has shape ${formatDims(encoder.input.shape)}; ` +
        'declare fixed per-sample dims after the batch dim',
    );
  }
  if (encoder.outputDims && product(encoder.outputDims) !== state.S) {
    throw new ShapeError(
      `${encoderFile}: output ${encoder.output.name} has ${product(encoder.outputDims)} values per sample ` +
        `(${formatDims(encoder.output.shape)}) but the state of ${state.file} has ` +
        `${state.S} ${formatDims(state.shape)}`,
    );
  }
  return {
    map: encoder,
    inputDims: encoder.inputDims,
    async encode(x, n) {
      const { data } = await encoder.run(x, n);
      if (data.length !== n * state.S) {
        throw new ShapeError(
          `${encoderFile}: output ${encoder.output.name} has ${data.length / n} values per sample ` +
            `but the state of ${state.file} has ${state.S}`,
        );
      }
      return data;
    },
  };
}

export interface EffectiveModel {
  readonly dir: string;
  readonly file: string;
  readonly manifest: BundleManifest;
  /** The fixed-step solver unrolled into the graph. */
  readonly solver: string;
  readonly inputShape: readonly number[];
  readonly map: OnnxMap;
}

/**
 * Open DIR/effective.onnx with the manifest `export --effective` writes beside it (the unrolled solver is recorded
 * only there).
 */
export async function readEffective(dir: string, options: SessionOptions = {}): Promise<EffectiveModel> {
  const file = path.join(dir, EFFECTIVE_FILE);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = await readManifest(dir);
  if (!manifest?.effectiveSolver)
    throw new FileFormatError(
      manifestFile,
      `missing or without "effectiveSolver": ${file} is evaluated under the solver unrolled into it, ` +
        'recorded by export --effective',
    );
  const bytes = await readOnnxFile(file);
  checkFile(file, bytes, manifest, manifestFile);
  checkNoneMissing(dir, manifest, [EFFECTIVE_FILE], manifestFile);
  const map = await OnnxMap.load(file, { ...options, input: 'x', output: 'logits', bytes });
  if (!map.inputDims) {
    await map.release();
    throw new ShapeError(
      `${file}: input ${map.input.name} has shape ${formatDims(map.input.shape)}; ` +
        'declare fixed per-sample dims after the batch dim',
    );
  }
  return { dir, file, manifest, solver: manifest.effectiveSolver, inputShape: map.inputDims, map };
}

/** Whether `dir` holds an effective model (effective.onnx, no field.onnx). */
export async function isEffectiveDir(dir: string): Promise<boolean> {
  return !(await exists(path.join(dir, FIELD_FILE))) && (await exists(path.join(dir, EFFECTIVE_FILE)));
}
