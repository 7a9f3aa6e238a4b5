/**
 * A field brought as an ONNX file (`onnx:my_field.onnx`): any graph from z [batch, …] (and optionally
 * t) to dz/dt of z's shape, e.g. from torch.onnx.export (README: "Bring your own vector field"). Its
 * float initializers are the parameters ("field.<initializer name>"), starting from their stored values
 * (init=keep) or Kaiming (init=kaiming); freeze=NAME|… keeps some fixed as constants of the graph. The
 * spec's canonical form carries the file's name and SHA-256 (not its path), so a job id changes with the
 * file's content and not with where it lies; `file` is where it lies on this machine.
 *   spec: onnx:<file.onnx>[,init=keep|kaiming][,freeze=<name>|…]
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { FileFormatError, ShapeError, SpecError } from '../../errors.js';
import { analyzeImported, appendImported, showShape, type ImportedAnalysis } from '../../graph/ir/imported-field.js';
import { readOnnxField, withInitializers, type ImportedGraph } from '../../graph/ir/read.js';
import type { FieldKind, ParamShape } from './kind.js';

export interface OnnxFieldSpec {
  readonly kind: 'onnx';
  /** Absolute path of the file on this machine (the canonical form keeps its name only). */
  readonly file: string;
  /** SHA-256 of the file's bytes (hex). */
  readonly sha256: string;
  readonly init: 'keep' | 'kaiming';
  /** Float initializers kept at their stored values. */
  readonly freeze: readonly string[];
}

/** The largest field file read (the size bound of other untrusted job data). */
export const ONNX_FIELD_MAX_BYTES = 64 * 1024 * 1024;

/** The decoded file, kept on the spec object (not enumerable: a spec stays plain data in JSON and comparisons). */
interface Source {
  readonly bytes: Uint8Array;
  readonly graph: ImportedGraph;
  readonly analyses: Map<string, ImportedAnalysis>;
}
const SOURCE = 'onnxSource';

function readField(file: string): Uint8Array {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new FileFormatError(file, 'does not exist (expected an ONNX vector field, e.g. from torch.onnx.export)');
  }
  if (size > ONNX_FIELD_MAX_BYTES)
    throw new FileFormatError(file, `has ${size} bytes, more than the limit of ${ONNX_FIELD_MAX_BYTES}`);
  return readFileSync(file);
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The spec's decoded graph: from the spec object, or read again (a copied spec) and checked against its hash. */
function source(spec: OnnxFieldSpec): Source {
  const kept = (spec as unknown as Record<string, Source | undefined>)[SOURCE];
  if (kept) return kept;
  const bytes = readField(spec.file);
  if (sha256(bytes) !== spec.sha256)
    throw new FileFormatError(
      spec.file,
      `changed since the spec was made (sha256 ${sha256(bytes)}, expected ${spec.sha256})`,
    );
  return { bytes, graph: readOnnxField(bytes, spec.file), analyses: new Map() };
}

/** The spec with its decoded bytes attached. */
export function onnxFieldSpec(
  file: string,
  bytes: Uint8Array,
  options: { init?: 'keep' | 'kaiming'; freeze?: readonly string[]; sha256?: string } = {},
): OnnxFieldSpec {
  const hash = sha256(bytes);
  if (options.sha256 && options.sha256 !== hash)
    throw new FileFormatError(file, `has sha256 ${hash}, the spec asks for ${options.sha256}`);
  const graph = readOnnxField(bytes, file);
  for (const name of options.freeze ?? []) {
    if (!graph.floatInitializers.includes(name))
      throw new SpecError(
        `field spec "onnx:${file}": freeze=${name} is not a float initializer of the file; ` +
          `it has ${graph.floatInitializers.join(', ')}`,
      );
  }
  const spec: OnnxFieldSpec = {
    kind: 'onnx',
    file,
    sha256: hash,
    init: options.init ?? 'keep',
    freeze: [...(options.freeze ?? [])],
  };
  Object.defineProperty(spec, SOURCE, {
    value: { bytes, graph, analyses: new Map() } satisfies Source,
    enumerable: false,
  });
  return spec;
}

function analysis(spec: OnnxFieldSpec, stateShape: readonly number[]): ImportedAnalysis {
  const src = source(spec);
  const key = stateShape.join('x');
  let a = src.analyses.get(key);
  if (!a) src.analyses.set(key, (a = analyzeImported(src.graph, stateShape)));
  return a;
}

function trainable(spec: OnnxFieldSpec): string[] {
  return source(spec).graph.floatInitializers.filter((n) => !spec.freeze.includes(n));
}

function checkState(spec: OnnxFieldSpec, stateShape: readonly number[]): void {
  const { z } = source(spec).graph;
  const dims = z.shape.slice(1);
  const fits = dims.length === stateShape.length && dims.every((d, i) => typeof d !== 'number' || d === stateShape[i]);
  const shown = `[${z.shape.map((d) => d ?? '?').join(', ')}]`;
  if (!fits)
    throw new ShapeError(
      `field ${spec.file}: its state ${z.name} is ${shown}, ` +
        `the data's state is ${showShape([1_000_003, ...stateShape])}`,
    );
}

export const onnxField: FieldKind<OnnxFieldSpec> = {
  kind: 'onnx',
  usage: 'onnx:<file.onnx>[,init=keep|kaiming,freeze=<name>|…]',
  options: [
    { name: 'file', type: 'path' },
    { name: 'init', type: 'enum', values: ['keep', 'kaiming'], default: 'keep' },
    { name: 'freeze', type: 'list' },
    { name: 'sha256', type: 'text' },
  ],
  fromOptions(o) {
    const file = path.resolve(o.file as string);
    return onnxFieldSpec(file, readField(file), {
      init: o.init as 'keep' | 'kaiming',
      freeze: o.freeze as string[],
      sha256: o.sha256 as string,
    });
  },
  // Canonical: the file's name, not where it lies (a job's id follows the content: src/models/field-files.ts).
  format: (f, located) =>
    `onnx:${located ? f.file : path.basename(f.file)},init=${f.init}` +
    `${f.freeze.length > 0 ? `,freeze=${f.freeze.join('|')}` : ''},sha256=${f.sha256}`,
  ortOnly: true,
  checkState,
  hiddenValues: (f, stateShape) => analysis(f, stateShape).hiddenValues,
  activationValues: (f, stateShape) => analysis(f, stateShape).activationValues,
  params(f, stateShape) {
    checkState(f, stateShape);
    analysis(f, stateShape);
    const { tensors } = source(f).graph;
    return trainable(f).map((name): ParamShape => {
      const shape = tensors.get(name)!.shape;
      return { name: `field.${name}`, shape, fanIn: shape.length >= 2 ? shape.slice(1).reduce((a, b) => a * b, 1) : 0 };
    });
  },
  initial(f) {
    if (f.init !== 'keep') return {};
    const { tensors } = source(f).graph;
    return Object.fromEntries(trainable(f).map((n) => [`field.${n}`, tensors.get(n)!.data as Float32Array]));
  },
  usesTime: (f) => source(f).graph.t !== undefined,
  tfField(f) {
    throw new SpecError(
      `field "${onnxField.format(f)}": the tfjs engine cannot train an imported ONNX field; use --engine ort`,
    );
  },
  appendGraph(f, ctx) {
    const src = source(f);
    const names = new Set(trainable(f));
    return appendImported(src.graph, analysis(f, ctx.stateShape), {
      g: ctx.g,
      z: ctx.z,
      t: ctx.t,
      param: (name) => (names.has(name) ? ctx.param(`field.${name}`) : undefined),
      out: ctx.out,
    });
  },
  exportGraph(f, params) {
    const values = Object.fromEntries(trainable(f).map((n) => [n, params[`field.${n}`]!.data]));
    return withInitializers(source(f).bytes, values, f.file);
  },
};
