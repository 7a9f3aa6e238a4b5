/**
 * Broad phase: which pairs of axis-aligned boxes (closed) overlap. The exact
 * segment tests run only on these candidate pairs.
 *
 * 2-D: a uniform grid over the boxes (each overlapping pair reported once, by
 * the "lower-left corner of the overlap" rule); boxes spanning many cells go
 * to a short list compared against all others. 1-D: sort and sweep.
 */

/** Closed axis-aligned boxes [x0, x1] × [y0, y1], by index. */
export interface Boxes {
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
export function gridPairs(b: Boxes, visit: (a: number, c: number) => void): number {
  if (b.count < 2) return 0;
  const grid = gridOver(b);
  const cells = cellRanges(b, grid);
  const buckets = bucketBoxes(cells, grid);
  return visitCells(b, grid, cells, buckets, visit) + visitLarge(b, cells, visit);
}

/** A uniform grid of gx × gy cells of size cw × ch from (minx, miny). */
interface Grid {
  readonly minx: number;
  readonly miny: number;
  readonly gx: number;
  readonly gy: number;
  readonly cw: number;
  readonly ch: number;
}

/** The grid over the boxes' extent: cells about the size of a box, at most 4·m + 16 of them. */
function gridOver(b: Boxes): Grid {
  const m = b.count;
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
  return { minx, miny, gx, gy, cw: W > 0 ? W / gx : 1, ch: H > 0 ? H / gy : 1 };
}

/** Each box's range of cells [cx0, cx1] × [cy0, cy1]; boxes over LARGE_CELLS cells are listed as large. */
interface CellRanges {
  readonly cx0: Int32Array;
  readonly cx1: Int32Array;
  readonly cy0: Int32Array;
  readonly cy1: Int32Array;
  readonly isLarge: Uint8Array;
  readonly large: number[];
}

function cellRanges(b: Boxes, { minx, miny, gx, gy, cw, ch }: Grid): CellRanges {
  const m = b.count;
  const cellX = (x: number): number => Math.min(gx - 1, Math.floor((x - minx) / cw));
  const cellY = (y: number): number => Math.min(gy - 1, Math.floor((y - miny) / ch));
  const r = {
    cx0: new Int32Array(m),
    cx1: new Int32Array(m),
    cy0: new Int32Array(m),
    cy1: new Int32Array(m),
    isLarge: new Uint8Array(m),
    large: [] as number[],
  };
  for (let i = 0; i < m; i++) {
    const a = cellX(b.x0[i]!);
    const c = cellX(b.x1[i]!);
    const e = cellY(b.y0[i]!);
    const f = cellY(b.y1[i]!);
    r.cx0[i] = a;
    r.cx1[i] = c;
    r.cy0[i] = e;
    r.cy1[i] = f;
    if ((c - a + 1) * (f - e + 1) > LARGE_CELLS) {
      r.isLarge[i] = 1;
      r.large.push(i);
    }
  }
  return r;
}

/** The boxes of each cell (large ones left out): entries[counts[c] .. counts[c + 1]), in box order. */
function bucketBoxes(
  { cx0, cx1, cy0, cy1, isLarge }: CellRanges,
  { gx, gy }: Grid,
): { counts: Int32Array; entries: Int32Array } {
  const m = cx0.length;
  const nCells = gx * gy;
  const counts = new Int32Array(nCells + 1);
  for (let i = 0; i < m; i++) {
    if (isLarge[i]) continue;
    for (let y = cy0[i]!; y <= cy1[i]!; y++) for (let x = cx0[i]!; x <= cx1[i]!; x++) counts[y * gx + x + 1]!++;
  }
  for (let c = 0; c < nCells; c++) counts[c + 1]! += counts[c]!;
  const fill = counts.slice(0, nCells);
  const entries = new Int32Array(counts[nCells]!);
  for (let i = 0; i < m; i++) {
    if (isLarge[i]) continue;
    for (let y = cy0[i]!; y <= cy1[i]!; y++) for (let x = cx0[i]!; x <= cx1[i]!; x++) entries[fill[y * gx + x]!++] = i;
  }
  return { counts, entries };
}

/** Overlapping pairs within each cell, each reported only in the cell holding its overlap's lower-left corner. */
function visitCells(
  b: Boxes,
  { gx, gy }: Grid,
  { cx0, cy0 }: CellRanges,
  { counts, entries }: { counts: Int32Array; entries: Int32Array },
  visit: (a: number, c: number) => void,
): number {
  let visits = 0;
  const { x0, y0, x1, y1 } = b;
  for (let c = 0; c < gx * gy; c++) {
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
        const lx = ix0 > x0[j]! ? cx0[i]! : cx0[j]!;
        const ly = iy0 > y0[j]! ? cy0[i]! : cy0[j]!;
        if (lx !== cellx || ly !== celly) continue;
        visits++;
        if (i < j) visit(i, j);
        else visit(j, i);
      }
    }
  }
  return visits;
}

/** Each large box against every other box (a pair of large boxes once). */
function visitLarge(b: Boxes, { isLarge, large }: CellRanges, visit: (a: number, c: number) => void): number {
  let visits = 0;
  const { x0, y0, x1, y1 } = b;
  for (const i of large) {
    for (let j = 0; j < b.count; j++) {
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
export function sweepPairs(lo: Float64Array, hi: Float64Array, visit: (a: number, b: number) => void): number {
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

export function allPairs(m: number, visit: (a: number, b: number) => void): number {
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) visit(i, j);
  return (m * (m - 1)) / 2;
}
