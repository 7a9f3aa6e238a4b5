/**
 * Where an imported field's bytes lie. A job names an `onnx:` field by its canonical spec,
 * `onnx:<file name>,init=…,sha256=<hex>`: the name for display, the SHA-256 as identity, never a path, so a
 * job's id does not depend on where the file lies (two copies of one file plan the same jobs). Whoever runs
 * or checks a job holds a FieldFiles (SHA-256 → a path on this machine: the coordinator's own file, a
 * worker's verified cached copy) and parses the job's field located, `onnx:<that path>,…`.
 * Everything here works on spec strings (no file is read): the parser checks the bytes against the hash.
 */
import path from 'node:path';
import { SpecError } from '../errors.js';
import { tokenizeSpec } from '../formats/index.js';

/** SHA-256 (hex) of a field file → its path on this machine. */
export type FieldFiles = Readonly<Record<string, string>>;

const SHA256 = /^[0-9a-f]{64}$/;

interface OnnxParts {
  readonly file: string;
  /** The items after the file, as written (`init=keep`, `sha256=…`). */
  readonly rest: readonly string[];
  readonly sha256?: string;
}

/** An `onnx:` spec's file item, its other items and its hash; undefined for other kinds. */
function onnxParts(spec: string): OnnxParts | undefined {
  const t = tokenizeSpec(spec, { pathSafe: true });
  if (t.head !== 'onnx') return undefined;
  const [first, ...rest] = t.items;
  if (!first || first.key !== undefined) return undefined;
  const sha256 = rest.find((i) => i.key === 'sha256')?.value;
  return { file: first.value, rest: rest.map((i) => i.text), ...(sha256 !== undefined ? { sha256 } : {}) };
}

const join = (file: string, rest: readonly string[]) => [`onnx:${file}`, ...rest].join(',');

/** The SHA-256 an `onnx:` spec names (undefined for other kinds, or a spec without one). */
export function fieldFileDigest(spec: string): string | undefined {
  return onnxParts(spec)?.sha256;
}

/** A located spec (a formatted one, `onnx:/abs/f.onnx,…`) in its canonical form: the file's name only. */
export function canonicalField(located: string): string {
  const p = onnxParts(located);
  return p ? join(path.basename(p.file), p.rest) : located;
}

/** The files that located specs name, by their hashes (specs of other kinds add nothing). */
export function fieldFilesOf(located: readonly string[]): FieldFiles {
  const out: Record<string, string> = {};
  for (const s of located) {
    const p = onnxParts(s);
    if (p?.sha256 && SHA256.test(p.sha256)) out[p.sha256] = p.file;
  }
  return out;
}

/**
 * A job's canonical field located at the file `files` holds for its hash, for the parser; other kinds as
 * they are. The name in the spec is never opened: a name that is not a plain file name, a spec without a
 * hash, or a hash this machine holds no file for is a SpecError.
 */
export function locateField(spec: string, files: FieldFiles): string {
  const p = onnxParts(spec);
  if (!p) return spec;
  if (p.file !== path.basename(p.file) || p.file === '..')
    throw new SpecError(`field "${spec}": a job names its file by name and sha256, not by a path`);
  if (p.sha256 === undefined || !SHA256.test(p.sha256))
    throw new SpecError(`field "${spec}": a job's onnx field needs sha256=<64 hex digits>`);
  const at = files[p.sha256];
  if (at === undefined) throw new SpecError(`field ${p.file} (sha256 ${p.sha256}): its file is not on this machine`);
  return join(at, p.rest);
}

/** The path `files` holds for the field file a spec names (undefined: not an `onnx:` field, or not held). */
export function fieldFileOf(spec: string, files: FieldFiles): string | undefined {
  const sha = fieldFileDigest(spec);
  return sha === undefined ? undefined : files[sha];
}

/** The one-entry FieldFiles of a spec's field file lying at `file`. */
export function fieldFilesFor(spec: string, file: string): FieldFiles {
  const sha = fieldFileDigest(spec);
  return sha === undefined ? {} : { [sha]: file };
}
