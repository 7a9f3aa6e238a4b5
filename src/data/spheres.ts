/**
 * Concentric spheres in any dimension d ≥ 1 (Ott et al. 2021; Dupont et al. 2019).
 *
 * Each shell {rMin, rMax, label, share} receives a share of the N points
 * (largest-remainder rounding, so counts always sum to N). A point is
 *   direction = g / ‖g‖ with g ~ N(0, I_d),
 *   radius    = rMin + (rMax − rMin) · u^(1/d), u ~ U(0, 1),
 * exactly as in the reference implementation. Train and test come from the
 * separate streams fork('spheres').fork('train' | 'test') of the given stream; the
 * sample order is shuffled (labels are not grouped).
 */
import { SpecError } from '../errors.js';
import { isPositiveInt } from '../formats/index.js';
import { checkDataSize } from './limits.js';
import { formatDatasetSpec } from './format.js';
import type { Rng } from '../random.js';
import type { Dataset, Split } from './types.js';

export interface Shell {
  readonly rMin: number;
  readonly rMax: number;
  readonly label: number;
  /** Relative weight; shares are normalised over all shells. */
  readonly share: number;
}

export const SPHERE_PRESETS = {
  /** Paper variant: inner and outer shell class 0, middle shell class 1; N/4, N/2, N/4 points. */
  ott2021: [
    { rMin: 0.1, rMax: 0.15, label: 0, share: 0.25 },
    { rMin: 0.25, rMax: 0.3, label: 1, share: 0.5 },
    { rMin: 0.4, rMax: 0.45, label: 0, share: 0.25 },
  ],
  /** Dupont et al. 2019: ball r ∈ [0, 0.5] (class 0) vs annulus r ∈ [1, 1.5] (class 1), equal shares. */
  dupont2019: [
    { rMin: 0, rMax: 0.5, label: 0, share: 0.5 },
    { rMin: 1, rMax: 1.5, label: 1, share: 0.5 },
  ],
} as const satisfies Record<string, readonly Shell[]>;

export type SpherePreset = keyof typeof SPHERE_PRESETS;
export const SPHERE_PRESET_NAMES = Object.keys(SPHERE_PRESETS) as SpherePreset[];

export const DEFAULT_SPHERES_TRAIN = 2000;
export const DEFAULT_SPHERES_TEST = 1000;

export interface SpheresOptions {
  readonly dim: number;
  /** A preset name or explicit shells. */
  readonly shells: SpherePreset | readonly Shell[];
  /** Training-set size (default 2000). */
  readonly nTrain?: number;
  /** Test-set size (default 1000). */
  readonly nTest?: number;
  /** The run's random stream: the loader draws from its own fork of it ('spheres'). */
  readonly rng: Rng;
}

function checkPositiveInt(what: string, v: number): void {
  if (!isPositiveInt(v)) throw new SpecError(`spheres: ${what} must be a positive integer, got ${v}`);
}

export function validateShells(shells: readonly Shell[]): void {
  if (shells.length === 0) throw new SpecError('spheres: at least one shell is required');
  shells.forEach((s, i) => {
    const where = `spheres: shell ${i}`;
    if (!Number.isFinite(s.rMin) || !Number.isFinite(s.rMax) || s.rMin < 0 || s.rMax < s.rMin) {
      throw new SpecError(`${where}: need finite radii 0 ≤ rMin ≤ rMax, got rMin=${s.rMin}, rMax=${s.rMax}`);
    }
    if (!Number.isInteger(s.label) || s.label < 0)
      throw new SpecError(`${where}: label must be a non-negative integer, got ${s.label}`);
    if (!Number.isFinite(s.share) || s.share <= 0) throw new SpecError(`${where}: share must be > 0, got ${s.share}`);
  });
}

/** Points per shell for n samples: shares normalised, largest remainder (ties → earlier shell). */
export function shellCounts(shells: readonly Shell[], n: number): number[] {
  const total = shells.reduce((a, s) => a + s.share, 0);
  const exact = shells.map((s) => (s.share / total) * n);
  const counts = exact.map((e) => Math.floor(e));
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) counts[order[k]!.i]! += 1;
  return counts;
}

/** Draw n points from the shells in dimension `dim` using `rng`. */
export function sampleSpheres(dim: number, shells: readonly Shell[], n: number, rng: Rng): Split {
  checkPositiveInt('dim', dim);
  validateShells(shells);
  if (!Number.isInteger(n) || n < 0)
    throw new SpecError(`spheres: sample count must be a non-negative integer, got ${n}`);
  checkDataSize('spheres', n, dim);
  const counts = shellCounts(shells, n);
  // Which shell each row comes from, shuffled so the classes are interleaved.
  const which = new Int32Array(n);
  let row = 0;
  counts.forEach((c, s) => {
    which.fill(s, row, row + c);
    row += c;
  });
  rng.shuffle(which);

  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  const g = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const shell = shells[which[i]!]!;
    let norm2 = 0;
    do {
      norm2 = 0;
      for (let j = 0; j < dim; j++) {
        const v = rng.normal();
        g[j] = v;
        norm2 += v * v;
      }
    } while (norm2 === 0);
    const u = rng.uniform();
    const r = shell.rMin + (shell.rMax - shell.rMin) * Math.pow(u, 1 / dim);
    const scale = r / Math.sqrt(norm2);
    const base = i * dim;
    for (let j = 0; j < dim; j++) x[base + j] = g[j]! * scale;
    y[i] = shell.label;
  }
  return { x, y, n };
}

export function resolveShells(shells: SpherePreset | readonly Shell[]): readonly Shell[] {
  if (typeof shells !== 'string') return shells;
  const preset = SPHERE_PRESETS[shells];
  if (!preset)
    throw new SpecError(`spheres: unknown preset "${shells}"; expected one of ${SPHERE_PRESET_NAMES.join(', ')}`);
  return preset;
}

/** The concentric-spheres dataset; same options and stream (seed) → identical arrays on every machine. */
export function makeSpheres(opts: SpheresOptions): Dataset {
  const { dim } = opts;
  checkPositiveInt('dim', dim);
  const shells = resolveShells(opts.shells);
  validateShells(shells);
  const nTrain = opts.nTrain ?? DEFAULT_SPHERES_TRAIN;
  const nTest = opts.nTest ?? DEFAULT_SPHERES_TEST;
  checkPositiveInt('training-set size', nTrain);
  checkPositiveInt('test-set size', nTest);
  checkDataSize(`spheres:dim=${dim}`, Math.max(nTrain, nTest), dim);
  const root = opts.rng.fork('spheres');
  const train = sampleSpheres(dim, shells, nTrain, root.fork('train'));
  const test = sampleSpheres(dim, shells, nTest, root.fork('test'));
  const classes = Math.max(...shells.map((s) => s.label)) + 1;
  const preset = typeof opts.shells === 'string' ? opts.shells : 'custom';
  // Custom shells have no spec syntax; their spec string is descriptive only.
  const spec =
    typeof opts.shells === 'string'
      ? formatDatasetSpec({ kind: 'spheres', preset: opts.shells, dim, n: opts.nTrain, testN: opts.nTest })
      : `spheres:custom:dim=${dim},n=${nTrain},testN=${nTest}`;
  return {
    spec,
    name: `spheres-${preset}-d${dim}`,
    inputShape: [dim],
    classes,
    train,
    test,
  };
}
