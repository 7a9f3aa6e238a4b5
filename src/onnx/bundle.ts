/**
 * The bundle: a directory any tool can produce and odeness re-evaluates.
 *
 *   field.onnx     z [batch, ...state] (+ optional t [] or [1]) → dz, same shape as z
 *   head.onnx      z [batch, ...state] (or [batch, S]) → logits [batch, classes]
 *   encoder.onnx   optional: x [batch, ...input] → z [batch, ...state]; identity when absent
 *   manifest.json  optional: BundleManifest below
 *
 * A directory with only field.onnx and head.onnx is valid: t0 = 0, t1 = 1, the
 * state shape comes from field.onnx's declared input and the class count from
 * head.onnx's declared output. The same type and validator serve the writer
 * and the reader.
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileFormatError, ShapeError } from '../errors.js';
import { BUNDLE_FORMAT_VERSION, BundleManifestSchema, describeIssue, parseWith, type BundleManifest } from '../formats/index.js';
import { fieldKind } from '../models/fields/index.js';
import { formatFieldSpec } from '../models/spec.js';
import type { Model } from '../models/types.js';
import { formatSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { checkModel, encoderGraph, fieldGraph, headGraph } from './model-graphs.js';
import { formatDims, OnnxField, OnnxMap, product, type SessionOptions } from './session.js';

export const FIELD_FILE = 'field.onnx';
export const HEAD_FILE = 'head.onnx';
export const ENCODER_FILE = 'encoder.onnx';
export const MANIFEST_FILE = 'manifest.json';

export { BUNDLE_FORMAT_VERSION, type BundleManifest } from '../formats/index.js';

/**
 * Validate a parsed manifest (writer and reader alike); applies the t0/t1
 * defaults. Errors name the file, the offending key, the value and what is allowed.
 */
export function validateManifest(raw: unknown, file: string): BundleManifest {
  return parseWith(BundleManifestSchema, raw, (i) =>
    // An unknown top-level key: the message names it and the keys a manifest may have.
    new FileFormatError(file, i.unknownKey && !i.path.includes('.') ? i.expected.replace('allowed keys:', 'expected') : describeIssue(i)),
  );
}

export interface BundleMeta {
  trainSolver?: SolverSpec | string;
  dataset?: string;
  seed?: number | string;
  provenance?: Record<string, unknown>;
}

/** Write a model as a bundle directory; returns the manifest written. */
export async function writeBundle(model: Model, dir: string, meta: BundleMeta = {}): Promise<BundleManifest> {
  checkModel(model);
  const { config } = model;
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = validateManifest(
    {
      formatVersion: BUNDLE_FORMAT_VERSION,
      t0: config.t0,
      t1: config.t1,
      stateShape: [...config.stateShape],
      classes: config.classes,
      ...(meta.trainSolver !== undefined ? { trainSolver: typeof meta.trainSolver === 'string' ? meta.trainSolver : formatSolverSpec(meta.trainSolver) } : {}),
      ...(meta.dataset !== undefined ? { dataset: meta.dataset } : {}),
      ...(meta.seed !== undefined ? { seed: meta.seed } : {}),
      provenance: {
        producer: 'odeness',
        field: formatFieldSpec(config.field),
        inputShape: [...config.inputShape],
        augment: config.augment,
        ...(meta.provenance ?? {}),
      },
    },
    manifestFile,
  );
  await mkdir(dir, { recursive: true });
  // A field brought as a file is exported as that file with the trained weights (its names kept).
  const ownGraph = fieldKind(config.field).exportGraph?.(config.field, model.params);
  if (ownGraph) await writeFile(path.join(dir, FIELD_FILE), ownGraph);
  else await fieldGraph(model).save(path.join(dir, FIELD_FILE));
  await headGraph(model).save(path.join(dir, HEAD_FILE));
  const encoderFile = path.join(dir, ENCODER_FILE);
  if (config.augment > 0) await encoderGraph(model).save(encoderFile);
  else await rm(encoderFile, { force: true }); // a stale encoder would change the bundle's meaning
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

export interface Bundle {
  readonly dir: string;
  readonly manifest: BundleManifest;
  /** Whether manifest.json was present (otherwise defaults and inferred shapes). */
  readonly hasManifest: boolean;
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

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** Open a bundle directory: validate the manifest, load the sessions, cross-check the declared shapes. */
export async function readBundle(dir: string, options: SessionOptions = {}): Promise<Bundle> {
  const fieldFile = path.join(dir, FIELD_FILE);
  const headFile = path.join(dir, HEAD_FILE);
  const encoderFile = path.join(dir, ENCODER_FILE);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  if (!(await exists(dir))) throw new FileFormatError(dir, 'bundle directory not found');
  for (const f of [fieldFile, headFile]) if (!(await exists(f))) throw new FileFormatError(f, 'file not found (a bundle needs field.onnx and head.onnx)');

  let given: BundleManifest | undefined;
  const hasManifest = await exists(manifestFile);
  if (hasManifest) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(manifestFile, 'utf8'));
    } catch (e) {
      throw new FileFormatError(manifestFile, `not valid JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    given = validateManifest(raw, manifestFile);
  }

  const opened: { release(): Promise<void> }[] = [];
  try {
    const field = await OnnxField.load(fieldFile, { ...options, stateShape: given?.stateShape });
    opened.push(field);
    const stateShape = field.stateShape;
    const S = product(stateShape);

    const head = await OnnxMap.load(headFile, { ...options, input: 'z', output: 'logits' });
    opened.push(head);
    let headInputDims: readonly number[];
    if (!head.inputDims) headInputDims = stateShape;
    else if (product(head.inputDims) === S) headInputDims = head.inputDims;
    else {
      throw new ShapeError(
        `${headFile}: input ${head.input.name} takes ${product(head.inputDims)} values per sample (${formatDims(head.input.shape)}) but the state of ${fieldFile} has ${S} ${formatDims(stateShape)}`,
      );
    }
    let classes = head.outputDims && head.outputDims.length === 1 ? head.outputDims[0]! : undefined;
    if (classes === undefined) {
      // Undeclared: run the head once on a zero state.
      const probe = await head.run(new Float32Array(S), 1, headInputDims);
      classes = probe.data.length;
    }
    const nClasses = classes;
    if (given && given.classes !== classes) {
      throw new ShapeError(`${headFile}: output ${head.output.name} has ${classes} classes but ${manifestFile} says ${given.classes}`);
    }

    let encoder: OnnxMap | undefined;
    let inputShape: readonly number[] = stateShape;
    if (await exists(encoderFile)) {
      encoder = await OnnxMap.load(encoderFile, { ...options, input: 'x', output: 'z' });
      opened.push(encoder);
      if (!encoder.inputDims) {
        throw new ShapeError(`${encoderFile}: input ${encoder.input.name} has shape ${formatDims(encoder.input.shape)}; declare fixed per-sample dims after the batch dim`);
      }
      inputShape = encoder.inputDims;
      if (encoder.outputDims && product(encoder.outputDims) !== S) {
        throw new ShapeError(
          `${encoderFile}: output ${encoder.output.name} has ${product(encoder.outputDims)} values per sample (${formatDims(encoder.output.shape)}) but the state of ${fieldFile} has ${S} ${formatDims(stateShape)}`,
        );
      }
    }

    const manifest = validateManifest(
      { ...(given ?? { formatVersion: BUNDLE_FORMAT_VERSION }), stateShape: [...stateShape], classes },
      hasManifest ? manifestFile : `${dir} (inferred manifest)`,
    );

    return {
      dir,
      manifest,
      hasManifest,
      inputShape,
      field,
      head,
      encoder,
      headInputDims,
      async encode(x, n) {
        if (!encoder) return Float32Array.from(x);
        const { data } = await encoder.run(x, n);
        if (data.length !== n * S) {
          throw new ShapeError(`${encoderFile}: output ${encoder.output.name} has ${data.length / n} values per sample but the state of ${fieldFile} has ${S}`);
        }
        return data;
      },
      async logits(z, n) {
        const { data } = await head.run(z, n, headInputDims);
        if (data.length !== n * nClasses) throw new ShapeError(`${headFile}: output ${head.output.name} has ${data.length / n} values per sample, expected ${nClasses}`);
        return data;
      },
      async release() {
        await Promise.all(opened.map((s) => s.release()));
      },
    };
  } catch (e) {
    await Promise.all(opened.map((s) => s.release()));
    throw e;
  }
}
