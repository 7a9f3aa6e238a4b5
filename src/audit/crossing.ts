/**
 * Trajectory crossing — finding 2 of Ott et al. (2021).
 *
 * An exact ODE flow is a homeomorphism: distinct trajectories never meet and,
 * in 1-D, the order of the points is preserved at all times. A coarse solver
 * can move points across each other. This module counts, for discrete
 * trajectories (the states after every solver step on a shared time grid),
 * the *crossing pairs*: pairs of trajectories whose straight segments over the
 * SAME step intersect.
 *
 * Geometry and conventions (deliberate, see `classifyPair2d` / `classifyPair1d`):
 *  - The segment of trajectory i over step k is the chord z_i(t_k) → z_i(t_{k+1}).
 *  - 1-D: a pair crosses over step k when its order changes:
 *      s0 = sign(x_i(t_k) − x_j(t_k)), s1 = sign(x_i(t_{k+1}) − x_j(t_{k+1})).
 *      s0 = s1 = 0            identical states (duplicates)      → no crossing
 *      s0 ≠ 0, s1 = 0         two distinct states merge           → 'touch'
 *      s0 = 0, s1 ≠ 0         coincident states separate          → 'touch'
 *      s0 · s1 < 0            the order swaps                      → 'order'
 *    A merge is a real defect (the step is not injective), so 'touch' counts by
 *    default; `countTouching: false` keeps only strict swaps.
 *  - 2-D, exact segment–segment intersection with robust orientation
 *    predicates (floating-point filter + exact BigInt fallback, so the sign of
 *    every orientation is the sign of the exact determinant of the given doubles):
 *      proper: the two chords cross at one interior point   → 'proper'
 *      touch : an endpoint lies on the other chord (incl. a shared end point,
 *              i.e. a merge), chords not collinear           → 'touch'
 *      collinear chords: judged like 1-D along their common line — a swap of
 *              order is 'collinear', a merge/split is 'touch'; two points
 *              sliding along one line in order (a translation) do NOT cross
 *              even though their chords overlap.
 *      identical chords (duplicate trajectories) never cross.
 *      nearly collinear chords (angle below ~2.9°) travelling the same way whose
 *              order along the motion is kept are the same "sliding in order"
 *              case and do not cross (see GRAZING_SINE).
 *  - d > 2: all visited states are projected onto their 2 leading principal
 *    components (PCA computed here) and the 2-D test is applied to the
 *    projection; the result says `projected: true` with the explained-variance
 *    fraction. A crossing in a projection is not proof of a crossing in R^d.
 *
 * Caveat: a chord crossing is a discretisation-level signal. For a smooth
 * field and small steps it matches a true crossing; with very large steps the
 * chords of a genuine flow (e.g. a rotation by a large angle) can intersect.
 * The fold check (`fold.ts`, sign of the step map's Jacobian) is the rigorous
 * companion.
 *
 * Speed: per step, a uniform grid over the chords' bounding boxes yields the
 * candidate pairs (pairs whose boxes overlap, each reported once by the
 * "lower-left corner of the overlap" rule); chords spanning many cells go to a
 * short list compared against all others. 1-D uses a sort-and-sweep over the
 * intervals. `method: 'brute'` compares all N(N−1)/2 pairs (reference).
 */
import { ShapeError, SpecError } from '../errors.js';

/** Flat float arrays accepted as states. */
export type Floats = Float64Array | Float32Array;

/**
 * Trajectories of N points in dimension d over K steps, states at K+1 times:
 * either one flat array of shape [K+1, N, d] (row-major) or an array of K+1
 * per-time arrays of length N·d.
 */
export type TrajectoryInput = Floats | readonly Floats[];

/** Normalise a trajectory input to K+1 views of length n·d (no copy). */
export function trajectorySteps(traj: TrajectoryInput, n: number, d: number, what = 'trajectory'): Floats[] {
  if (!Number.isInteger(n) || n < 1) throw new SpecError(`${what}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(d) || d < 1) throw new SpecError(`${what}: d must be a positive integer, got ${d}`);
  const size = n * d;
  if (ArrayBuffer.isView(traj)) {
    const flat = traj as Floats;
    if (flat.length === 0 || flat.length % size !== 0) {
      throw new ShapeError(`${what}: flat array of length ${flat.length} is not [K+1, ${n}, ${d}] (a positive multiple of ${size})`);
    }
    const out: Floats[] = [];
    for (let o = 0; o < flat.length; o += size) out.push(flat.subarray(o, o + size));
    return out;
  }
  const steps = traj as readonly Floats[];
  if (steps.length === 0) throw new ShapeError(`${what}: no states given`);
  steps.forEach((s, k) => {
    if (s.length !== size) throw new ShapeError(`${what}: state ${k} has length ${s.length}, expected n·d = ${n}·${d} = ${size}`);
  });
  return steps.slice();
}

function assertFinite(steps: readonly Floats[], d: number, what: string): void {
  for (let k = 0; k < steps.length; k++) {
    const s = steps[k]!;
    for (let q = 0; q < s.length; q++) {
      if (!Number.isFinite(s[q]!)) {
        throw new ShapeError(`${what}: non-finite value ${s[q]} at time index ${k}, point ${Math.floor(q / d)}, component ${q % d}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Robust orientation predicate
// ---------------------------------------------------------------------------

/** Shewchuk's error bound for the floating-point 2-D orientation determinant. */
const EPSILON = 2 ** -53;
const CCW_ERRBOUND_A = (3 + 16 * EPSILON) * EPSILON;

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
const MANT_MASK = (1n << 52n) - 1n;

/** x = m · 2^e exactly, m a signed BigInt. */
function decompose(x: number): [bigint, number] {
  f64[0] = x;
  const bits = u64[0]!;
  const neg = bits >> 63n === 1n;
  const expBits = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & MANT_MASK;
  let m: bigint;
  let e: number;
  if (expBits === 0) {
    m = frac;
    e = -1074;
  } else {
    m = frac | (1n << 52n);
    e = expBits - 1075;
  }
  return [neg ? -m : m, e];
}

/** Exact sign of (a − c) × (b − c) for finite doubles, by integer arithmetic. */
function orientExact(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): number {
  const parts = [ax, ay, bx, by, cx, cy].map(decompose);
  let emin = Infinity;
  for (const [m, e] of parts) if (m !== 0n && e < emin) emin = e;
  if (emin === Infinity) return 0; // all zeros
  const v = parts.map(([m, e]) => (m === 0n ? 0n : m << BigInt(e - emin)));
  const acx = v[0]! - v[4]!;
  const acy = v[1]! - v[5]!;
  const bcx = v[2]! - v[4]!;
  const bcy = v[3]! - v[5]!;
  const det = acx * bcy - acy * bcx;
  return det > 0n ? 1 : det < 0n ? -1 : 0;
}

/**
 * Sign (−1, 0, +1) of the orientation of the triangle (a, b, c): +1 when c is
 * to the left of a→b. Exact for any finite doubles: a floating-point filter
 * with Shewchuk's bound, and exact integer arithmetic when the filter cannot
 * decide (near-collinear points, underflow, overflow).
 */
export function orient2d(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): number {
  const acx = ax - cx;
  const bcy = by - cy;
  const acy = ay - cy;
  const bcx = bx - cx;
  const detleft = acx * bcy;
  const detright = acy * bcx;
  const det = detleft - detright;
  if (Number.isFinite(det)) {
    let detsum: number;
    if (detleft > 0) {
      if (detright <= 0) return det > 0 ? 1 : det < 0 ? -1 : orientExact(ax, ay, bx, by, cx, cy);
      detsum = detleft + detright;
    } else if (detleft < 0) {
      if (detright >= 0) return det < 0 ? -1 : det > 0 ? 1 : orientExact(ax, ay, bx, by, cx, cy);
      detsum = -detleft - detright;
    } else {
      // detleft is 0: exact only if a factor is exactly 0 (not an underflow).
      if ((acx === 0 || bcy === 0) && (detright !== 0 || acy === 0 || bcx === 0)) {
        return detright > 0 ? -1 : detright < 0 ? 1 : 0;
      }
      return orientExact(ax, ay, bx, by, cx, cy);
    }
    // Below ~1e-290 the products may be subnormal and the relative bound fails.
    if (detsum > 1e-290) {
      const errbound = CCW_ERRBOUND_A * detsum;
      if (det >= errbound && det > 0) return 1;
      if (-det >= errbound && det < 0) return -1;
    }
  }
  return orientExact(ax, ay, bx, by, cx, cy);
}

// ---------------------------------------------------------------------------
// Pair classification
// ---------------------------------------------------------------------------

/** How two chords meet. */
export type CrossingKind = 'proper' | 'touch' | 'collinear' | 'order';

const NONE = 0;
const PROPER = 1;
const TOUCH = 2;
const COLLINEAR = 3;
const ORDER = 4;
const KIND_NAMES: readonly CrossingKind[] = ['proper', 'proper', 'touch', 'collinear', 'order'];

function sgn(a: number, b: number): number {
  return a > b ? 1 : a < b ? -1 : 0;
}

/** 1-D order rule (see module doc). Returns NONE, TOUCH or ORDER. */
function order1d(a0: number, a1: number, b0: number, b1: number): number {
  const s0 = sgn(a0, b0);
  const s1 = sgn(a1, b1);
  if (s0 === 0 && s1 === 0) return NONE;
  if (s0 === 0 || s1 === 0) return TOUCH;
  return s0 !== s1 ? ORDER : NONE;
}

function onBox(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): boolean {
  return cx >= Math.min(ax, bx) && cx <= Math.max(ax, bx) && cy >= Math.min(ay, by) && cy <= Math.max(ay, by);
}

/**
 * Chords at an angle below this (sine) that keep their order along their
 * common direction are two points sliding one behind the other along nearly
 * the same streamline — the near-collinear case of the translation rule. Such
 * chords of a smooth flow intersect whenever the streamlines are closer than
 * the chords' sagitta (measured: two nearby test points of an rk4:0.01 solve
 * on 2-D spheres, 0.6° apart), so they are not counted.
 */
const GRAZING_SINE = 0.05;

function slidingInOrder(px: number, py: number, p2x: number, p2y: number, qx: number, qy: number, q2x: number, q2y: number): boolean {
  const rx = p2x - px;
  const ry = p2y - py;
  const sx = q2x - qx;
  const sy = q2y - qy;
  const lr = Math.hypot(rx, ry);
  const ls = Math.hypot(sx, sy);
  if (lr === 0 || ls === 0) return false;
  if (Math.abs(rx * sy - ry * sx) >= GRAZING_SINE * lr * ls) return false;
  // Same direction of travel (a head-on pass is a real crossing).
  if (rx * sx + ry * sy <= 0) return false;
  const ux = rx / lr + sx / ls;
  const uy = ry / lr + sy / ls;
  return order1d(px * ux + py * uy, p2x * ux + p2y * uy, qx * ux + qy * uy, q2x * ux + q2y * uy) === NONE;
}

/** 2-D classification of chords p→p2 and q→q2 (see module doc). */
function classify2d(px: number, py: number, p2x: number, p2y: number, qx: number, qy: number, q2x: number, q2y: number): number {
  if (px === qx && py === qy && p2x === q2x && p2y === q2y) return NONE;
  const o1 = orient2d(px, py, p2x, p2y, qx, qy);
  const o2 = orient2d(px, py, p2x, p2y, q2x, q2y);
  const o3 = orient2d(qx, qy, q2x, q2y, px, py);
  const o4 = orient2d(qx, qy, q2x, q2y, p2x, p2y);
  if (o1 === 0 && o2 === 0 && o3 === 0 && o4 === 0) {
    // Collinear: order along the common line. On a non-vertical line the
    // order along it is the order of x; on a vertical line, of y (exact).
    const vertical = px === p2x && px === qx && px === q2x;
    const r = vertical ? order1d(py, p2y, qy, q2y) : order1d(px, p2x, qx, q2x);
    return r === ORDER ? COLLINEAR : r;
  }
  if (o1 * o2 < 0 && o3 * o4 < 0) return slidingInOrder(px, py, p2x, p2y, qx, qy, q2x, q2y) ? NONE : PROPER;
  if (
    (o1 === 0 && onBox(px, py, p2x, p2y, qx, qy)) ||
    (o2 === 0 && onBox(px, py, p2x, p2y, q2x, q2y)) ||
    (o3 === 0 && onBox(qx, qy, q2x, q2y, px, py)) ||
    (o4 === 0 && onBox(qx, qy, q2x, q2y, p2x, p2y))
  ) {
    return TOUCH;
  }
  return NONE;
}

/** Classify two chords in 2-D: null when they do not cross under the module's rules. */
export function classifyPair2d(p: readonly [number, number], p2: readonly [number, number], q: readonly [number, number], q2: readonly [number, number]): CrossingKind | null {
  const r = classify2d(p[0], p[1], p2[0], p2[1], q[0], q[1], q2[0], q2[1]);
  return r === NONE ? null : KIND_NAMES[r]!;
}

/** Classify two 1-D trajectories over one step: null when their order is kept. */
export function classifyPair1d(a0: number, a1: number, b0: number, b1: number): CrossingKind | null {
  const r = order1d(a0, a1, b0, b1);
  return r === NONE ? null : KIND_NAMES[r]!;
}

/** Where the two chords meet (float arithmetic; for display only). */
function meetPoint2d(kind: number, px: number, py: number, p2x: number, p2y: number, qx: number, qy: number, q2x: number, q2y: number): number[] {
  const rx = p2x - px;
  const ry = p2y - py;
  const sx = q2x - qx;
  const sy = q2y - qy;
  if (kind === PROPER) {
    const denom = rx * sy - ry * sx;
    const t = ((qx - px) * sy - (qy - py) * sx) / denom;
    return [px + t * rx, py + t * ry];
  }
  if (kind === TOUCH) {
    const o = [orient2d(px, py, p2x, p2y, qx, qy), orient2d(px, py, p2x, p2y, q2x, q2y), orient2d(qx, qy, q2x, q2y, px, py), orient2d(qx, qy, q2x, q2y, p2x, p2y)];
    const collinear = o.every((v) => v === 0);
    if (!collinear) {
      if (o[1] === 0 && onBox(px, py, p2x, p2y, q2x, q2y)) return [q2x, q2y];
      if (o[3] === 0 && onBox(qx, qy, q2x, q2y, p2x, p2y)) return [p2x, p2y];
      if (o[0] === 0 && onBox(px, py, p2x, p2y, qx, qy)) return [qx, qy];
      return [px, py];
    }
  }
  // Collinear (swap or merge/split): where the straight-line interpolants meet in time.
  const vertical = px === p2x && px === qx && px === q2x;
  const d0 = vertical ? py - qy : px - qx;
  const d1 = vertical ? p2y - q2y : p2x - q2x;
  const s = d0 === d1 ? 0 : d0 / (d0 - d1);
  return [px + s * rx, py + s * ry];
}

// ---------------------------------------------------------------------------
// Candidate generation
// ---------------------------------------------------------------------------

/** Chords of one step, as bounding boxes (indices into the trajectory set). */
interface Boxes {
  readonly count: number;
  readonly x0: Float64Array;
  readonly y0: Float64Array;
  readonly x1: Float64Array;
  readonly y1: Float64Array;
}

/** A chord whose box spans more cells than this is handled by the short "large" list. */
const LARGE_CELLS = 64;

/**
 * Calls visit(a, b) (a < b) once for every pair of boxes that overlap
 * (closed boxes). Uniform grid; returns the number of visits.
 */
function gridPairs(b: Boxes, visit: (a: number, c: number) => void): number {
  const m = b.count;
  if (m < 2) return 0;
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  let ext = 0;
  for (let i = 0; i < m; i++) {
    if (b.x0[i]! < minx) minx = b.x0[i]!;
    if (b.y0[i]! < miny) miny = b.y0[i]!;
    if (b.x1[i]! > maxx) maxx = b.x1[i]!;
    if (b.y1[i]! > maxy) maxy = b.y1[i]!;
    ext += Math.max(b.x1[i]! - b.x0[i]!, b.y1[i]! - b.y0[i]!);
  }
  const W = maxx - minx;
  const H = maxy - miny;
  let cell = Math.max(ext / m, Math.sqrt((W * H) / m));
  if (!(cell > 0) || !Number.isFinite(cell)) cell = Math.max(W, H) / m;
  let gx = 1;
  let gy = 1;
  if (cell > 0 && Number.isFinite(cell)) {
    gx = Math.max(1, Math.ceil(W / cell));
    gy = Math.max(1, Math.ceil(H / cell));
    const maxCells = 4 * m + 16;
    if (gx * gy > maxCells) {
      const f = Math.sqrt((gx * gy) / maxCells);
      gx = Math.max(1, Math.floor(gx / f));
      gy = Math.max(1, Math.floor(gy / f));
    }
  }
  const cw = W > 0 ? W / gx : 1;
  const ch = H > 0 ? H / gy : 1;
  const cellX = (x: number): number => Math.min(gx - 1, Math.floor((x - minx) / cw));
  const cellY = (y: number): number => Math.min(gy - 1, Math.floor((y - miny) / ch));

  const cx0 = new Int32Array(m);
  const cx1 = new Int32Array(m);
  const cy0 = new Int32Array(m);
  const cy1 = new Int32Array(m);
  const isLarge = new Uint8Array(m);
  const large: number[] = [];
  const nCells = gx * gy;
  const counts = new Int32Array(nCells + 1);
  for (let i = 0; i < m; i++) {
    const a = cellX(b.x0[i]!);
    const c = cellX(b.x1[i]!);
    const e = cellY(b.y0[i]!);
    const f = cellY(b.y1[i]!);
    cx0[i] = a;
    cx1[i] = c;
    cy0[i] = e;
    cy1[i] = f;
    if ((c - a + 1) * (f - e + 1) > LARGE_CELLS) {
      isLarge[i] = 1;
      large.push(i);
      continue;
    }
    for (let y = e; y <= f; y++) for (let x = a; x <= c; x++) counts[y * gx + x + 1]!++;
  }
  for (let c = 0; c < nCells; c++) counts[c + 1]! += counts[c]!;
  const fill = counts.slice(0, nCells);
  const entries = new Int32Array(counts[nCells]!);
  for (let i = 0; i < m; i++) {
    if (isLarge[i]) continue;
    for (let y = cy0[i]!; y <= cy1[i]!; y++) for (let x = cx0[i]!; x <= cx1[i]!; x++) entries[fill[y * gx + x]!++] = i;
  }
  let visits = 0;
  const { x0, y0, x1, y1 } = b;
  for (let c = 0; c < nCells; c++) {
    const start = counts[c]!;
    const end = counts[c + 1]!;
    if (end - start < 2) continue;
    const cellx = c % gx;
    const celly = (c - cellx) / gx;
    for (let u = start; u < end; u++) {
      const i = entries[u]!;
      const ix0 = x0[i]!;
      const iy0 = y0[i]!;
      const ix1 = x1[i]!;
      const iy1 = y1[i]!;
      for (let w = u + 1; w < end; w++) {
        const j = entries[w]!;
        if (x0[j]! > ix1 || x1[j]! < ix0 || y0[j]! > iy1 || y1[j]! < iy0) continue;
        // Report the pair only in the cell holding the overlap's lower-left corner.
        const lx = ix0 > x0[j]! ? cx0[i]! : cx0[j]!;
        const ly = iy0 > y0[j]! ? cy0[i]! : cy0[j]!;
        if (lx !== cellx || ly !== celly) continue;
        visits++;
        if (i < j) visit(i, j);
        else visit(j, i);
      }
    }
  }
  for (const i of large) {
    for (let j = 0; j < m; j++) {
      if (j === i || (isLarge[j] && j < i)) continue;
      if (x0[j]! > x1[i]! || x1[j]! < x0[i]! || y0[j]! > y1[i]! || y1[j]! < y0[i]!) continue;
      visits++;
      if (i < j) visit(i, j);
      else visit(j, i);
    }
  }
  return visits;
}

/** 1-D sort-and-sweep over closed intervals [lo, hi]; visit(a, b) with a < b. */
function sweepPairs(lo: Float64Array, hi: Float64Array, visit: (a: number, b: number) => void): number {
  const m = lo.length;
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => lo[a]! - lo[b]!);
  let visits = 0;
  for (let u = 0; u < m; u++) {
    const i = order[u]!;
    const h = hi[i]!;
    for (let w = u + 1; w < m; w++) {
      const j = order[w]!;
      if (lo[j]! > h) break;
      visits++;
      if (i < j) visit(i, j);
      else visit(j, i);
    }
  }
  return visits;
}

function allPairs(m: number, visit: (a: number, b: number) => void): number {
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) visit(i, j);
  return (m * (m - 1)) / 2;
}

// ---------------------------------------------------------------------------
// PCA (2 leading components)
// ---------------------------------------------------------------------------

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

/** Deterministic xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi), descending. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += A[i * n + i]! ** 2;
      for (let j = i + 1; j < n; j++) off += A[i * n + j]! ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (apq === 0) continue;
        const app = A[p * n + p]!;
        const aqq = A[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const idx = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[j * n + j]! - A[i * n + i]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n); // column k = eigenvector k
  idx.forEach((src, k) => {
    values[k] = A[src * n + src]!;
    for (let r = 0; r < n; r++) vectors[r * n + k] = V[r * n + src]!;
  });
  return { values, vectors };
}

export interface PcaOptions {
  /** Largest number of states (rows) used to estimate the components; evenly strided subsample beyond. Default 20 000 (2 000 when d > 128). */
  readonly maxRows?: number;
  /** Seed of the start block of the subspace iteration. Default 1. */
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
  const totalRows = states.length * n;
  // Rows cost M·d per product on the data path (d > 128): fewer rows there.
  const maxRows = options.maxRows ?? (d <= 128 ? 20_000 : 2_000);
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

  const b = Math.min(d, 6);
  // applyBlock(Q, out): out[k] = C · Q[k] for every vector of the block.
  let applyBlock: (vs: readonly Float64Array[], outs: readonly Float64Array[]) => void;
  if (d <= 128) {
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
    applyBlock = (vs, outs) => {
      vs.forEach((v, k) => {
        const out = outs[k]!;
        for (let i = 0; i < d; i++) {
          let s = 0;
          for (let j = 0; j < d; j++) s += C[i * d + j]! * v[j]!;
          out[i] = s;
        }
      });
    };
  } else {
    // One pass over the rows per round: C·v = Xᵀ(X v) / M for all block vectors.
    const t = new Float64Array(b);
    applyBlock = (vs, outs) => {
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

  const rand = rng(options.seed ?? 1);
  let Q: Float64Array[] = Array.from({ length: b }, () => Float64Array.from({ length: d }, () => rand() - 0.5));
  const orthonormalise = (vs: Float64Array[]): Float64Array[] => {
    const out: Float64Array[] = [];
    for (const v0 of vs) {
      const v = Float64Array.from(v0);
      for (let pass = 0; pass < 2; pass++) {
        for (const u of out) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += u[c]! * v[c]!;
          for (let c = 0; c < d; c++) v[c]! -= dot * u[c]!;
        }
      }
      let norm = 0;
      for (let c = 0; c < d; c++) norm += v[c]! * v[c]!;
      norm = Math.sqrt(norm);
      if (norm < 1e-300) {
        // Replace a collapsed vector with a fresh random one (re-orthogonalised next round).
        const w = Float64Array.from({ length: d }, () => rand() - 0.5);
        for (const u of out) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += u[c]! * w[c]!;
          for (let c = 0; c < d; c++) w[c]! -= dot * u[c]!;
        }
        let wn = 0;
        for (let c = 0; c < d; c++) wn += w[c]! * w[c]!;
        wn = Math.sqrt(wn);
        for (let c = 0; c < d; c++) w[c]! /= wn || 1;
        out.push(w);
      } else {
        for (let c = 0; c < d; c++) v[c]! /= norm;
        out.push(v);
      }
    }
    return out;
  };
  Q = orthonormalise(Q);
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
    // Rayleigh–Ritz on span(Q).
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
    values = eig.values;
    ritz = [];
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
    // Converged when the block spans R^d, when the top-2 Ritz values (the
    // captured variance) have settled, or when the top-2 residuals are tiny.
    const settled = it > 0 && Math.abs(eig.values[0]! - prev0) + Math.abs(eig.values[1]! - prev1) <= 1e-6 * Math.abs(eig.values[0]! + eig.values[1]!);
    prev0 = eig.values[0]!;
    prev1 = eig.values[1]!;
    let converged = b === d || settled;
    if (!converged) {
      const scale = Math.max(Math.abs(values[0]!), 1e-300);
      converged = true;
      for (let k = 0; k < 2; k++) {
        let res = 0;
        for (let c = 0; c < d; c++) res += (Aritz[k]![c]! - values[k]! * ritz[k]![c]!) ** 2;
        if (Math.sqrt(res) > 1e-9 * scale) converged = false;
      }
    }
    if (converged || total === 0) break;
    Q = orthonormalise(Aritz);
  }
  const l1 = Math.max(0, values[0]!);
  const l2 = Math.max(0, values[1]!);
  const explained = total > 0 ? Math.min(1, (l1 + l2) / total) : 1;
  return {
    mean,
    components: [ritz[0]!, ritz[1]!],
    eigenvalues: [l1, l2],
    totalVariance: total,
    explainedVariance: explained,
    rowsUsed: M,
    iterations,
  };
}

/** Project every state onto (c1, c2) around `mean`: returns K+1 arrays of length 2n. */
export function projectStates(states: readonly Floats[], n: number, d: number, pca: Pick<Pca2, 'mean' | 'components'>): Float64Array[] {
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

// ---------------------------------------------------------------------------
// Crossing count
// ---------------------------------------------------------------------------

export interface CrossingOptions {
  /** Number of trajectories. */
  readonly n: number;
  /** State dimension. */
  readonly d: number;
  /** 'grid' (default; sort-and-sweep in 1-D) or 'brute' (all pairs, for reference). */
  readonly method?: 'grid' | 'brute';
  /** Count 'touch' events (merges, an end point on the other chord) as crossings. Default true. */
  readonly countTouching?: boolean;
  /** Number of examples kept. Default 5. */
  readonly maxExamples?: number;
  /** Also list every crossing pair with its first step (can be large). Default false. */
  readonly listPairs?: boolean;
  /** Also count intersections of chords of different trajectories at DIFFERENT steps. Default false. */
  readonly differentSteps?: boolean;
  /** PCA options when d > 2. */
  readonly pca?: PcaOptions;
}

export interface CrossingExample {
  readonly i: number;
  readonly j: number;
  /** Step index k: the chords from t_k to t_{k+1}. */
  readonly step: number;
  /** Where the chords meet, in the coordinates tested (1-D, 2-D, or the 2-D projection). */
  readonly point: number[];
  readonly kind: CrossingKind;
}

export interface DifferentStepExample {
  readonly i: number;
  readonly stepI: number;
  readonly j: number;
  readonly stepJ: number;
  readonly point: number[];
}

export interface DifferentStepResult {
  /**
   * A WEAKER signal than `crossings`: distinct trajectory pairs whose chords at
   * different steps cross properly. Orbits of an autonomous ODE never
   * intersect, but a time-dependent field's trajectories may cross at
   * different times. Only proper (transversal) crossings are counted: touching
   * and collinear overlaps are what two points on one orbit produce.
   */
  readonly pairs: number;
  /** (chord, chord) pairs that cross properly. */
  readonly segmentPairs: number;
  readonly candidatePairs: number;
  readonly examples: DifferentStepExample[];
}

export interface CrossingResult {
  readonly n: number;
  readonly d: number;
  /** Number of steps K (K+1 states). */
  readonly steps: number;
  /** Distinct trajectory pairs that cross at one step or more. */
  readonly crossings: number;
  /** (pair, step) events counted (a pair crossing at 3 steps counts 3). */
  readonly crossingEvents: number;
  /** Of `crossings`, the pairs whose every crossing was a 'touch' (0 when countTouching is false). */
  readonly touchingPairs: number;
  /** firstStepHistogram[k] = pairs whose first crossing is over step k (length K). */
  readonly firstStepHistogram: number[];
  /** Earliest step with a crossing, or null. */
  readonly firstStep: number | null;
  readonly examples: CrossingExample[];
  /** Every crossing pair (i < j) with its first step, when `listPairs` was set. */
  readonly pairs?: { i: number; j: number; firstStep: number }[];
  /** True when d > 2 and the test ran on the 2-D PCA projection. */
  readonly projected: boolean;
  /** Fraction of the variance the tested coordinates keep (1 unless projected). */
  readonly explainedVariance: number;
  /** The PCA used, when projected. */
  readonly pca?: Pca2;
  /** Logically compared trajectory pairs: N(N−1)/2. */
  readonly pairsChecked: number;
  /** Logically compared (pair, step) combinations: K·N(N−1)/2. */
  readonly pairStepsChecked: number;
  /** (pair, step) combinations actually tested with the exact predicate. */
  readonly candidatePairs: number;
  readonly method: 'grid' | 'brute';
  readonly countTouching: boolean;
  /** Present when `differentSteps` was set and d ≥ 2. */
  readonly differentStepIntersections?: DifferentStepResult;
}

/**
 * Count crossing pairs of discrete trajectories (see the module doc for the
 * exact rules). Throws ShapeError for malformed or non-finite input.
 */
export function countCrossings(traj: TrajectoryInput, options: CrossingOptions): CrossingResult {
  const { n, d } = options;
  const method = options.method ?? 'grid';
  if (method !== 'grid' && method !== 'brute') throw new SpecError(`countCrossings: method must be 'grid' or 'brute', got ${String(method)}`);
  const countTouching = options.countTouching ?? true;
  const maxExamples = options.maxExamples ?? 5;
  const raw = trajectorySteps(traj, n, d);
  assertFinite(raw, d, 'countCrossings');
  const K = raw.length - 1;

  let states: Floats[] = raw;
  let dim = d;
  let pca: Pca2 | undefined;
  if (d > 2) {
    pca = pca2(raw, n, d, options.pca);
    states = projectStates(raw, n, d, pca);
    dim = 2;
  }

  const seen = new PairSet(n); // pairs that crossed at some step
  const properSeen = new PairSet(n); // pairs with a non-touch crossing
  const firstI: number[] = [];
  const firstJ: number[] = [];
  const firstK: number[] = [];
  const firstStepHistogram = new Array<number>(K).fill(0);
  const examples: CrossingExample[] = [];
  let events = 0;
  let candidates = 0;

  const record = (i: number, j: number, k: number, kind: number, point: () => number[]): void => {
    if (kind === TOUCH && !countTouching) return;
    events++;
    if (seen.add(i, j)) {
      firstI.push(i);
      firstJ.push(j);
      firstK.push(k);
      firstStepHistogram[k]!++;
    }
    if (kind !== TOUCH) properSeen.add(i, j);
    if (examples.length < maxExamples) examples.push({ i, j, step: k, point: point(), kind: KIND_NAMES[kind]! });
  };

  for (let k = 0; k < K; k++) {
    const A = states[k]!;
    const B = states[k + 1]!;
    if (dim === 1) {
      const visit = (i: number, j: number): void => {
        const r = order1d(A[i]!, B[i]!, A[j]!, B[j]!);
        if (r !== NONE) {
          record(i, j, k, r, () => {
            const d0 = A[i]! - A[j]!;
            const d1 = B[i]! - B[j]!;
            const s = d0 === d1 ? 0 : d0 / (d0 - d1);
            return [A[i]! + s * (B[i]! - A[i]!)];
          });
        }
      };
      if (method === 'brute') {
        candidates += allPairs(n, visit);
      } else {
        const lo = new Float64Array(n);
        const hi = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          lo[i] = Math.min(A[i]!, B[i]!);
          hi[i] = Math.max(A[i]!, B[i]!);
        }
        candidates += sweepPairs(lo, hi, visit);
      }
    } else {
      const visit = (i: number, j: number): void => {
        const px = A[2 * i]!;
        const py = A[2 * i + 1]!;
        const p2x = B[2 * i]!;
        const p2y = B[2 * i + 1]!;
        const qx = A[2 * j]!;
        const qy = A[2 * j + 1]!;
        const q2x = B[2 * j]!;
        const q2y = B[2 * j + 1]!;
        const r = classify2d(px, py, p2x, p2y, qx, qy, q2x, q2y);
        if (r !== NONE) record(i, j, k, r, () => meetPoint2d(r, px, py, p2x, p2y, qx, qy, q2x, q2y));
      };
      if (method === 'brute') {
        candidates += allPairs(n, visit);
      } else {
        candidates += gridPairs(chordBoxes([A], [B], n), visit);
      }
    }
  }

  let firstStep: number | null = null;
  for (let k = 0; k < K; k++) {
    if (firstStepHistogram[k]! > 0) {
      firstStep = k;
      break;
    }
  }
  const crossings = seen.size;
  const result: {
    -readonly [P in keyof CrossingResult]: CrossingResult[P];
  } = {
    n,
    d,
    steps: K,
    crossings,
    crossingEvents: events,
    touchingPairs: crossings - properSeen.size,
    firstStepHistogram,
    firstStep,
    examples,
    projected: pca !== undefined,
    explainedVariance: pca ? pca.explainedVariance : 1,
    pairsChecked: (n * (n - 1)) / 2,
    pairStepsChecked: (K * n * (n - 1)) / 2,
    candidatePairs: candidates,
    method,
    countTouching,
  };
  if (pca) result.pca = pca;
  if (options.listPairs) {
    result.pairs = firstI
      .map((i, q) => ({ i, j: firstJ[q]!, firstStep: firstK[q]! }))
      .sort((a, b) => a.firstStep - b.firstStep || a.i - b.i || a.j - b.j);
  }
  if (options.differentSteps && dim === 2) {
    result.differentStepIntersections = differentStepCrossings(states, n, K, method, maxExamples);
  }
  return result;
}

/** A set of index pairs (i < j < n): a bitset while n² bits fit in 16 MiB, else a hash set. */
class PairSet {
  private bits: Uint8Array | undefined;
  private readonly keys: Set<number> | undefined;
  size = 0;
  constructor(private readonly n: number) {
    if (n * n > 2 ** 27) this.keys = new Set<number>();
  }
  /** Add (i, j); true when it was not present. */
  add(i: number, j: number): boolean {
    const key = i * this.n + j;
    if (this.keys) {
      if (this.keys.has(key)) return false;
      this.keys.add(key);
    } else {
      // Allocated on first use: most trajectory sets have no crossing at all.
      this.bits ??= new Uint8Array(Math.ceil((this.n * this.n) / 8));
      const byte = key >>> 3;
      const mask = 1 << (key & 7);
      if (this.bits[byte]! & mask) return false;
      this.bits[byte]! |= mask;
    }
    this.size++;
    return true;
  }
}

/** Bounding boxes of the chords starts[s][i] → ends[s][i] for every s, i (segment id s·n + i). */
function chordBoxes(starts: readonly Floats[], ends: readonly Floats[], n: number): Boxes {
  const count = starts.length * n;
  const x0 = new Float64Array(count);
  const y0 = new Float64Array(count);
  const x1 = new Float64Array(count);
  const y1 = new Float64Array(count);
  for (let s = 0; s < starts.length; s++) {
    const A = starts[s]!;
    const B = ends[s]!;
    for (let i = 0; i < n; i++) {
      const id = s * n + i;
      const ax = A[2 * i]!;
      const ay = A[2 * i + 1]!;
      const bx = B[2 * i]!;
      const by = B[2 * i + 1]!;
      x0[id] = Math.min(ax, bx);
      x1[id] = Math.max(ax, bx);
      y0[id] = Math.min(ay, by);
      y1[id] = Math.max(ay, by);
    }
  }
  return { count, x0, y0, x1, y1 };
}

function differentStepCrossings(states: readonly Floats[], n: number, K: number, method: 'grid' | 'brute', maxExamples: number): DifferentStepResult {
  const starts = states.slice(0, K);
  const ends = states.slice(1, K + 1);
  const pairs = new Set<number>();
  const examples: DifferentStepExample[] = [];
  let segmentPairs = 0;
  let candidates = 0;
  const visit = (a: number, b: number): void => {
    const ka = Math.floor(a / n);
    const ia = a - ka * n;
    const kb = Math.floor(b / n);
    const ib = b - kb * n;
    if (ka === kb || ia === ib) return;
    candidates++;
    const A0 = starts[ka]!;
    const A1 = ends[ka]!;
    const B0 = starts[kb]!;
    const B1 = ends[kb]!;
    const px = A0[2 * ia]!;
    const py = A0[2 * ia + 1]!;
    const p2x = A1[2 * ia]!;
    const p2y = A1[2 * ia + 1]!;
    const qx = B0[2 * ib]!;
    const qy = B0[2 * ib + 1]!;
    const q2x = B1[2 * ib]!;
    const q2y = B1[2 * ib + 1]!;
    if (classify2d(px, py, p2x, p2y, qx, qy, q2x, q2y) !== PROPER) return;
    segmentPairs++;
    const i = Math.min(ia, ib);
    const j = Math.max(ia, ib);
    pairs.add(i * n + j);
    if (examples.length < maxExamples) {
      const first = ia < ib;
      examples.push({ i, stepI: first ? ka : kb, j, stepJ: first ? kb : ka, point: meetPoint2d(PROPER, px, py, p2x, p2y, qx, qy, q2x, q2y) });
    }
  };
  if (method === 'brute') allPairs(K * n, visit);
  else gridPairs(chordBoxes(starts, ends, n), visit);
  return { pairs: pairs.size, segmentPairs, candidatePairs: candidates, examples };
}
