/** Determinants by LU factorisation with partial pivoting (the fold check's Jacobians). */
import { ShapeError } from '../errors.js';

export interface LogDet {
  /** Sign of the determinant: −1, 0 or +1. */
  readonly sign: -1 | 0 | 1;
  /** log|det| (−Infinity when det = 0). */
  readonly logAbsDet: number;
}

/**
 * Determinant of the d×d row-major matrix `a` by LU with partial pivoting.
 * `a` is left untouched (a copy is factorised).
 */
export function logDet(a: ArrayLike<number>, d: number): LogDet {
  if (a.length !== d * d) throw new ShapeError(`logDet: matrix has ${a.length} entries, expected ${d}×${d}`);
  const m = Float64Array.from(a);
  let sign: -1 | 1 = 1;
  let logAbs = 0;
  for (let c = 0; c < d; c++) {
    let p = c;
    let best = Math.abs(m[c * d + c]!);
    for (let r = c + 1; r < d; r++) {
      const v = Math.abs(m[r * d + c]!);
      if (v > best) {
        best = v;
        p = r;
      }
    }
    if (best === 0 || Number.isNaN(best)) return { sign: 0, logAbsDet: -Infinity };
    if (p !== c) {
      for (let k = 0; k < d; k++) {
        const t = m[c * d + k]!;
        m[c * d + k] = m[p * d + k]!;
        m[p * d + k] = t;
      }
      sign = sign === 1 ? -1 : 1;
    }
    const piv = m[c * d + c]!;
    if (piv < 0) sign = sign === 1 ? -1 : 1;
    logAbs += Math.log(Math.abs(piv));
    for (let r = c + 1; r < d; r++) {
      const f = m[r * d + c]! / piv;
      if (f === 0) continue;
      for (let k = c + 1; k < d; k++) m[r * d + k]! -= f * m[c * d + k]!;
    }
  }
  return { sign, logAbsDet: logAbs };
}
