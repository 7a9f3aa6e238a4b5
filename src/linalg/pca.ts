/**
 * The two leading principal components of a set of states — the projection
 * the crossing audit tests when the state has more than 2 dimensions.
 */
import { ShapeError } from '../errors.js';
import { Rng } from '../random.js';
import { symmetricEigen } from './eigen.js';

/** Flat float arrays accepted as rows of states. */
export type Floats = Float64Array | Float32Array;

export interface Pca2 {
  /** Mean of the states used. */
  readonly mean: Float64Array;
  /** Two orthonormal leading principal directions (length d each). */
  readonly components: readonly [Float64Array, Float64Array];
  /** Variances along them (eigenvalues of the covariance, λ1 ≥ λ2). */
  readonly eigenvalues: readonly [number, number];
  /** Total variance (trace of the covariance). */
  readonly totalVariance: number;
  /** (λ1 + λ2) / total variance, in [0, 1]; 1 when the total variance is 0. */
  readonly explainedVariance: number;
  /** Number of states (rows) the estimate used. */
  readonly rowsUsed: number;
  /** Subspace iterations run. */
  readonly iterations: number;
}

export interface PcaOptions {
  /**
   * Largest number of states (rows) used to estimate the components; evenly strided subsample beyond.
   * Default 20 000 (2 000 when d > 128).
   */
  readonly maxRows?: number;
  /** Seed of the start block of the subspace iteration (the project's seeded Rng). Default 1. */
  readonly seed?: number;
}

/**
 * Two leading principal components of the rows of the given states (each
 * array holds n rows of dimension d). Block subspace iteration (block of
 * min(d, 6) vectors, Rayleigh–Ritz each round) on the covariance, applied
 * explicitly for d ≤ 128 and through the data otherwise.
 */
export function pca2(states: readonly Floats[], n: number, d: number, options: PcaOptions = {}): Pca2 {
  if (d < 2) throw new ShapeError(`pca2: need d ≥ 2, got ${d}`);
  // Rows cost M·d per product on the data path (d > 128): fewer rows there.
  const sample = centredSample(states, n, d, options.maxRows ?? (d <= 128 ? 20_000 : 2_000));
  const { M, total } = sample;
  const b = Math.min(d, 6);
  const applyBlock = d <= 128 ? explicitCovariance(sample, d) : covarianceThroughData(sample, d, b);
  const rng = new Rng(options.seed ?? 1).fork('pca2');
  const rand = (): number => rng.uniform();
  let Q: Float64Array[] = Array.from({ length: b }, () => Float64Array.from({ length: d }, () => rand() - 0.5));
  Q = orthonormalise(Q, d, rand);
  const maxIter = d <= 128 ? 500 : 30;
  let values: Float64Array = new Float64Array(b);
  let ritz: Float64Array[] = Q;
  const AQ = Array.from({ length: b }, () => new Float64Array(d));
  let prev0 = NaN;
  let prev1 = NaN;
  let iterations = 0;
  for (let it = 0; it < maxIter; it++) {
    iterations = it + 1;
    applyBlock(Q, AQ);
    const rr = rayleighRitz(Q, AQ, d, b);
    values = rr.values;
    ritz = rr.ritz;
    // Converged when the block spans R^d, when the top-2 Ritz values (the
    // captured variance) have settled, or when the top-2 residuals are tiny.
    const settled =
      it > 0 && Math.abs(values[0]! - prev0) + Math.abs(values[1]! - prev1) <= 1e-6 * Math.abs(values[0]! + values[1]!);
    prev0 = values[0]!;
    prev1 = values[1]!;
    const converged = b === d || settled || topResidualsTiny(rr, d);
    if (converged || total === 0) break;
    Q = orthonormalise(rr.Aritz, d, rand);
  }
  const l1 = Math.max(0, values[0]!);
  const l2 = Math.max(0, values[1]!);
  const explained = total > 0 ? Math.min(1, (l1 + l2) / total) : 1;
  return {
    mean: sample.mean,
    components: [ritz[0]!, ritz[1]!],
    eigenvalues: [l1, l2],
    totalVariance: total,
    explainedVariance: explained,
    rowsUsed: M,
    iterations,
  };
}

/** The rows used (evenly strided) centred, X (M × d); their mean; the total variance (trace of the covariance). */
interface CentredSample {
  readonly X: Float64Array;
  readonly M: number;
  readonly mean: Float64Array;
  readonly total: number;
}

function centredSample(states: readonly Floats[], n: number, d: number, maxRows: number): CentredSample {
  const totalRows = states.length * n;
  const stride = Math.max(1, Math.ceil(totalRows / maxRows));
  const rows: number[] = [];
  for (let r = 0; r < totalRows; r += stride) rows.push(r);
  const M = rows.length;
  const row = (r: number): Floats => {
    const k = Math.floor(r / n);
    const i = r - k * n;
    return states[k]!.subarray(i * d, i * d + d);
  };
  const mean = new Float64Array(d);
  for (const r of rows) {
    const z = row(r);
    for (let c = 0; c < d; c++) mean[c]! += z[c]!;
  }
  for (let c = 0; c < d; c++) mean[c]! /= M;
  // Centered data matrix (M × d).
  const X = new Float64Array(M * d);
  let total = 0;
  rows.forEach((r, m) => {
    const z = row(r);
    for (let c = 0; c < d; c++) {
      const v = z[c]! - mean[c]!;
      X[m * d + c] = v;
      total += v * v;
    }
  });
  total /= M;
  return { X, M, mean, total };
}

/** applyBlock(Q, out): out[k] = C · Q[k] for every vector of the block. */
type ApplyBlock = (vs: readonly Float64Array[], outs: readonly Float64Array[]) => void;

/** C applied as a d × d matrix, formed once (d ≤ 128). */
function explicitCovariance({ X, M }: CentredSample, d: number): ApplyBlock {
  const C = new Float64Array(d * d);
  for (let m = 0; m < M; m++) {
    const o = m * d;
    for (let i = 0; i < d; i++) {
      const xi = X[o + i]!;
      if (xi === 0) continue;
      const ci = i * d;
      for (let j = i; j < d; j++) C[ci + j]! += xi * X[o + j]!;
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      C[i * d + j]! /= M;
      C[j * d + i] = C[i * d + j]!;
    }
  }
  return (vs, outs) => {
    vs.forEach((v, k) => {
      const out = outs[k]!;
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += C[i * d + j]! * v[j]!;
        out[i] = s;
      }
    });
  };
}

/** One pass over the rows per round: C·v = Xᵀ(X v) / M for all b block vectors (d > 128). */
function covarianceThroughData({ X, M }: CentredSample, d: number, b: number): ApplyBlock {
  const t = new Float64Array(b);
  return (vs, outs) => {
    for (const out of outs) out.fill(0);
    for (let m = 0; m < M; m++) {
      const o = m * d;
      for (let k = 0; k < b; k++) {
        const v = vs[k]!;
        let s = 0;
        for (let c = 0; c < d; c++) s += X[o + c]! * v[c]!;
        t[k] = s / M;
      }
      for (let k = 0; k < b; k++) {
        const tk = t[k]!;
        if (tk === 0) continue;
        const out = outs[k]!;
        for (let c = 0; c < d; c++) out[c]! += tk * X[o + c]!;
      }
    }
  };
}

/** v minus its projections on the (orthonormal) vectors of `basis`, in place. */
function subtractProjections(v: Float64Array, basis: readonly Float64Array[], d: number): void {
  for (const u of basis) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += u[c]! * v[c]!;
    for (let c = 0; c < d; c++) v[c]! -= dot * u[c]!;
  }
}

function norm2(v: Float64Array, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) s += v[c]! * v[c]!;
  return Math.sqrt(s);
}

/** Gram–Schmidt twice over; a collapsed vector is replaced with a fresh random one (re-orthogonalised next round). */
function orthonormalise(vs: readonly Float64Array[], d: number, rand: () => number): Float64Array[] {
  const out: Float64Array[] = [];
  for (const v0 of vs) {
    const v = Float64Array.from(v0);
    subtractProjections(v, out, d);
    subtractProjections(v, out, d);
    const norm = norm2(v, d);
    if (norm < 1e-300) {
      const w = Float64Array.from({ length: d }, () => rand() - 0.5);
      subtractProjections(w, out, d);
      const wn = norm2(w, d);
      for (let c = 0; c < d; c++) w[c]! /= wn || 1;
      out.push(w);
    } else {
      for (let c = 0; c < d; c++) v[c]! /= norm;
      out.push(v);
    }
  }
  return out;
}

/** Ritz values (descending, from symmetricEigen), Ritz vectors and C applied to them, on span(Q). */
interface RitzPairs {
  readonly values: Float64Array;
  readonly ritz: Float64Array[];
  readonly Aritz: Float64Array[];
}

function rayleighRitz(Q: readonly Float64Array[], AQ: readonly Float64Array[], d: number, b: number): RitzPairs {
  const H = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = i; j < b; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += Q[i]![c]! * AQ[j]![c]!;
      H[i * b + j] = s;
      H[j * b + i] = s;
    }
  }
  const eig = symmetricEigen(H, b);
  const ritz: Float64Array[] = [];
  const Aritz: Float64Array[] = [];
  for (let k = 0; k < b; k++) {
    const v = new Float64Array(d);
    const av = new Float64Array(d);
    for (let i = 0; i < b; i++) {
      const w = eig.vectors[i * b + k]!;
      if (w === 0) continue;
      for (let c = 0; c < d; c++) {
        v[c]! += w * Q[i]![c]!;
        av[c]! += w * AQ[i]![c]!;
      }
    }
    ritz.push(v);
    Aritz.push(av);
  }
  return { values: eig.values, ritz, Aritz };
}

/** The residuals ‖C·r − λ·r‖ of the top two Ritz pairs are below 1e-9 · |λ1|. */
function topResidualsTiny({ values, ritz, Aritz }: RitzPairs, d: number): boolean {
  const scale = Math.max(Math.abs(values[0]!), 1e-300);
  let tiny = true;
  for (let k = 0; k < 2; k++) {
    let res = 0;
    for (let c = 0; c < d; c++) res += (Aritz[k]![c]! - values[k]! * ritz[k]![c]!) ** 2;
    if (Math.sqrt(res) > 1e-9 * scale) tiny = false;
  }
  return tiny;
}

/** Project every state onto (c1, c2) around `mean`: returns K+1 arrays of length 2n. */
export function projectStates(
  states: readonly Floats[],
  n: number,
  d: number,
  pca: Pick<Pca2, 'mean' | 'components'>,
): Float64Array[] {
  const [u, v] = pca.components;
  return states.map((s) => {
    const out = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      let a = 0;
      let b = 0;
      const o = i * d;
      for (let c = 0; c < d; c++) {
        const z = s[o + c]! - pca.mean[c]!;
        a += z * u[c]!;
        b += z * v[c]!;
      }
      out[2 * i] = a;
      out[2 * i + 1] = b;
    }
    return out;
  });
}
