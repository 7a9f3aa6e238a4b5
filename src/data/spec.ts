/**
 * Dataset specs: the string syntax used by the CLI and study files.
 *
 *   spheres:<preset>:dim=<d>[,n=<train>][,testN=<test>]   preset: ott2021 | dupont2019
 *   mnist[:size=<28|14|7|4>][,n=<train>][,testN=<test>]
 *   cifar10:dir=<path>[,limit=<train>][,testN=<test>]      (or cifar10:<path>)
 *   json:<file>[:split=<test fraction>|none][,classes=<k>][,shape=<CxHxW>]   (or json:file=<file>)
 *
 * Options are key=value pairs, separated by ':' or ','. A separator only
 * counts when a `key=` follows it, so paths may contain ':' and ','.
 */
import { SizeError, SpecError } from '../errors.js';
import { DATA_LIMITS } from './limits.js';
import { isPositiveInt, tokenizeSpec } from '../formats/index.js';
import { loadCifar10 } from './cifar10.js';
import { formatDatasetSpec, type DatasetSpec } from './format.js';
import { loadJsonDataset } from './json.js';
import { loadMnist, MNIST_SIZES } from './mnist.js';
import { Rng, type Seed } from '../random.js';
import { makeSpheres, SPHERE_PRESET_NAMES, type SpherePreset } from './spheres.js';
import type { Dataset } from './types.js';

export type { DatasetSpec } from './format.js';
export { formatDatasetSpec } from './format.js';

export const DATASET_NAMES = ['spheres', 'mnist', 'cifar10', 'json'] as const;

/**
 * The dataset spec of every row of a JSON file, unsplit (its "test split" is the whole file): what a bare file path
 * meant where a --data file.json was taken.
 */
export function jsonFileSpec(file: string): string {
  return `json:${file}:split=none`;
}

const FORMS = 'spheres:<preset>:dim=<d>, mnist[:size=14], cifar10:dir=<path>, json:<file>';

const ALLOWED: Record<(typeof DATASET_NAMES)[number], readonly string[]> = {
  spheres: ['dim', 'n', 'testN'],
  mnist: ['size', 'n', 'testN'],
  cifar10: ['dir', 'limit', 'testN'],
  json: ['file', 'split', 'classes', 'shape'],
};

export function parseDatasetSpec(spec: string): DatasetSpec {
  if (spec.trim() === '') throw new SpecError(`empty dataset spec; expected one of ${FORMS}`);
  const { head: name, items } = tokenizeSpec(spec, { pathSafe: true });
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    failSpec(spec, `unknown dataset "${name}"; expected one of ${DATASET_NAMES.join(', ')} (${FORMS})`);
  }
  const o = new SpecOptions(spec, name as DatasetName, items);
  switch (o.kind) {
    case 'spheres':
      return spheresSpec(o);
    case 'mnist': {
      if (o.positional !== undefined)
        return o.fail(`unexpected "${o.positional}"; expected mnist or mnist:size=<${MNIST_SIZES.join('|')}>`);
      const size = o.posInt('size');
      if (size !== undefined && !(MNIST_SIZES as readonly number[]).includes(size)) {
        return o.fail(`size must be one of ${MNIST_SIZES.join(', ')} (28 divided by an integer), got ${size}`);
      }
      return defined({ kind: o.kind, size, n: o.posInt('n'), testN: o.posInt('testN') });
    }
    case 'cifar10': {
      if (o.positional !== undefined && o.named.has('dir'))
        return o.fail('give the directory once: cifar10:dir=<path>');
      const dir = o.positional ?? o.named.get('dir');
      if (dir === undefined || dir.trim() === '')
        return o.fail('missing directory; expected cifar10:dir=<path> (folder with data_batch_*.bin)');
      return defined({ kind: o.kind, dir, limit: o.posInt('limit'), testN: o.posInt('testN') });
    }
    case 'json':
      return jsonSpec(o);
  }
}

type DatasetName = (typeof DATASET_NAMES)[number];

function failSpec(spec: string, msg: string): never {
  throw new SpecError(`dataset spec "${spec}": ${msg}`);
}

/** The object without its undefined fields (a spec holds only what was given). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** A spec's options after its name: the bare first item (a preset or path) and the checked key=value pairs. */
class SpecOptions {
  readonly positional: string | undefined;
  readonly named = new Map<string, string>();

  constructor(
    readonly spec: string,
    readonly kind: DatasetName,
    items: ReturnType<typeof tokenizeSpec>['items'],
  ) {
    for (const [i, item] of items.entries()) {
      if (item.key === undefined) {
        // Only the first item may be bare (the tokenizer splits only before `key=`).
        if (i === 0) this.positional = item.value;
        continue;
      }
      if (!ALLOWED[kind].includes(item.key))
        this.fail(`unknown option "${item.key}" for ${kind}; expected ${ALLOWED[kind].join(', ')}`);
      if (this.named.has(item.key)) this.fail(`option ${item.key} given twice`);
      this.named.set(item.key, item.value);
    }
  }

  fail(msg: string): never {
    return failSpec(this.spec, msg);
  }

  /** A positive integer option within its data limit, or undefined when not given. */
  posInt(key: string): number | undefined {
    const raw = this.named.get(key);
    if (raw === undefined) return undefined;
    const v = raw.trim() === '' ? NaN : Number(raw);
    if (!isPositiveInt(v)) this.fail(`${key} must be a positive integer, got "${raw}"`);
    // Sizes are bounded here, before any loader allocates from them.
    const max = key === 'dim' ? DATA_LIMITS.dim : key === 'classes' ? DATA_LIMITS.classes : DATA_LIMITS.samples;
    if (v > max) throw new SizeError(`dataset spec "${this.spec}": ${key}=${raw} exceeds the limit of ${max}`);
    return v;
  }
}

function spheresSpec(o: SpecOptions): DatasetSpec {
  const preset = o.positional;
  if (preset === undefined || preset === '') {
    return o.fail(
      `missing preset; expected spheres:<preset>:dim=<d> with preset one of ${SPHERE_PRESET_NAMES.join(', ')}`,
    );
  }
  if (!(SPHERE_PRESET_NAMES as string[]).includes(preset)) {
    return o.fail(`unknown spheres preset "${preset}"; expected one of ${SPHERE_PRESET_NAMES.join(', ')}`);
  }
  if (!o.named.has('dim')) return o.fail(`missing dim; expected e.g. spheres:${preset}:dim=2 (dim a positive integer)`);
  return defined({
    kind: 'spheres',
    preset: preset as SpherePreset,
    dim: o.posInt('dim')!,
    n: o.posInt('n'),
    testN: o.posInt('testN'),
  });
}

function jsonSpec(o: SpecOptions): DatasetSpec {
  if (o.positional !== undefined && o.named.has('file'))
    return o.fail('give the file once: json:<file> or json:file=<file>');
  const file = o.positional ?? o.named.get('file');
  if (file === undefined || file.trim() === '') return o.fail('missing file; expected json:<file>');
  let split: number | 'none' | undefined;
  const rawSplit = o.named.get('split');
  if (rawSplit !== undefined) {
    if (rawSplit === 'none') split = 'none';
    else {
      const v = rawSplit.trim() === '' ? NaN : Number(rawSplit);
      if (!(v > 0 && v < 1))
        o.fail(`split must be a test fraction between 0 and 1 (exclusive) or "none", got "${rawSplit}"`);
      split = v;
    }
  }
  let shape: number[] | undefined;
  const rawShape = o.named.get('shape');
  if (rawShape !== undefined) {
    shape = rawShape.split('x').map((s) => (s.trim() === '' ? NaN : Number(s)));
    if (shape.some((s) => !Number.isInteger(s) || s < 1))
      o.fail(`shape must be positive integers joined by "x", e.g. 1x28x28, got "${rawShape}"`);
  }
  return defined({ kind: 'json', file, split, classes: o.posInt('classes'), shape });
}

/** Parse (if needed) and build a dataset; the seed fixes sampling and splits. */
export async function loadDataset(spec: string | DatasetSpec, seed: Seed): Promise<Dataset> {
  return datasetOf(typeof spec === 'string' ? parseDatasetSpec(spec) : spec, new Rng(seed));
}

/** The dataset of a parsed spec, drawn from `rng` (each loader forks its own stream of it). */
export function datasetOf(s: DatasetSpec, rng: Rng): Dataset {
  let ds: Dataset;
  switch (s.kind) {
    case 'spheres':
      ds = makeSpheres({ dim: s.dim, shells: s.preset, nTrain: s.n, nTest: s.testN, rng });
      break;
    case 'mnist':
      ds = loadMnist({ size: s.size, nTrain: s.n, nTest: s.testN, rng });
      break;
    case 'cifar10':
      ds = loadCifar10({ dir: s.dir, limit: s.limit, nTest: s.testN, rng });
      break;
    case 'json':
      ds = loadJsonDataset({ file: s.file, split: s.split, classes: s.classes, shape: s.shape, rng });
      break;
  }
  return { ...ds, spec: formatDatasetSpec(s) };
}
