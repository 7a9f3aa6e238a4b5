/**
 * The 2-D orientation predicate, exact for every pair of finite doubles: the
 * sign of det[a − c, b − c] is the sign of the exact determinant of the given
 * numbers, never of a rounded one. Segment classification rests on it.
 */

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
