/**
 * How two segments over the same time step meet — the exact rules behind the
 * crossing count (see src/audit/crossing.ts for what a crossing means).
 *
 *  - 1-D: a pair crosses over the step when its order changes:
 *      s0 = sign(a0 − b0), s1 = sign(a1 − b1).
 *      s0 = s1 = 0            identical states (duplicates)      → no crossing
 *      s0 ≠ 0, s1 = 0         two distinct states merge           → 'touch'
 *      s0 = 0, s1 ≠ 0         coincident states separate          → 'touch'
 *      s0 · s1 < 0            the order swaps                      → 'order'
 *  - 2-D, exact segment–segment intersection with the exact orientation
 *    predicate (every decision is the sign of an exact determinant):
 *      proper: the two chords cross at one interior point   → 'proper'
 *      touch : an endpoint lies on the other chord (incl. a shared end point,
 *              i.e. a merge), chords not collinear           → 'touch'
 *      collinear chords: judged like 1-D along their common line — a swap of
 *              order is 'collinear', a merge/split is 'touch'; two points
 *              sliding along one line in order (a translation) do NOT cross
 *              even though their chords overlap.
 *      identical chords (duplicate trajectories) never cross.
 *    There is no angle cut-off: every proper intersection counts, however
 *    grazing. (Whether a chord crossing is evidence is decided by refining the
 *    trajectories, in src/audit/refine.ts, not by discarding intersections.)
 */
import { orient2d } from './orient.js';

/** How two chords meet. */
export type CrossingKind = 'proper' | 'touch' | 'collinear' | 'order';

/** Numeric codes of the hot loops (0 = no crossing); KIND_NAMES maps them to CrossingKind. */
export const NONE = 0;
export const PROPER = 1;
export const TOUCH = 2;
export const COLLINEAR = 3;
export const ORDER = 4;
export const KIND_NAMES: readonly CrossingKind[] = ['proper', 'proper', 'touch', 'collinear', 'order'];

function sgn(a: number, b: number): number {
  return a > b ? 1 : a < b ? -1 : 0;
}

/** 1-D order rule (see module doc). Returns NONE, TOUCH or ORDER. */
export function order1d(a0: number, a1: number, b0: number, b1: number): number {
  const s0 = sgn(a0, b0);
  const s1 = sgn(a1, b1);
  if (s0 === 0 && s1 === 0) return NONE;
  if (s0 === 0 || s1 === 0) return TOUCH;
  return s0 !== s1 ? ORDER : NONE;
}

function onBox(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): boolean {
  return cx >= Math.min(ax, bx) && cx <= Math.max(ax, bx) && cy >= Math.min(ay, by) && cy <= Math.max(ay, by);
}

/** 2-D classification of chords p→p2 and q→q2 (see module doc): a numeric code. */
export function classify2d(
  px: number,
  py: number,
  p2x: number,
  p2y: number,
  qx: number,
  qy: number,
  q2x: number,
  q2y: number,
): number {
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
  if (o1 * o2 < 0 && o3 * o4 < 0) return PROPER;
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
export function classifyPair2d(
  p: readonly [number, number],
  p2: readonly [number, number],
  q: readonly [number, number],
  q2: readonly [number, number],
): CrossingKind | null {
  const r = classify2d(p[0], p[1], p2[0], p2[1], q[0], q[1], q2[0], q2[1]);
  return r === NONE ? null : KIND_NAMES[r]!;
}

/** Classify two 1-D trajectories over one step: null when their order is kept. */
export function classifyPair1d(a0: number, a1: number, b0: number, b1: number): CrossingKind | null {
  const r = order1d(a0, a1, b0, b1);
  return r === NONE ? null : KIND_NAMES[r]!;
}

/** Where the two chords meet (float arithmetic; for display only). */
export function meetPoint2d(
  kind: number,
  px: number,
  py: number,
  p2x: number,
  p2y: number,
  qx: number,
  qy: number,
  q2x: number,
  q2y: number,
): number[] {
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
    const o = [
      orient2d(px, py, p2x, p2y, qx, qy),
      orient2d(px, py, p2x, p2y, q2x, q2y),
      orient2d(qx, qy, q2x, q2y, px, py),
      orient2d(qx, qy, q2x, q2y, p2x, p2y),
    ];
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
