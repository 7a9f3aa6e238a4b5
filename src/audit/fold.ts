/**
 * The fold check: does one solver step fold space?
 *
 * The time-h flow map φ_h of an ODE z' = f(t, z) has Jacobian determinant
 * det ∂φ_h/∂z = exp(∫ tr ∂f/∂z dt) > 0 everywhere (Liouville). A solver step
 * Ψ_h whose Jacobian determinant is ≤ 0 at some state reverses orientation
 * (or collapses a direction) there: near that state the step folds space,
 * which no flow does. Example: the Euler step of z' = −k z is z ↦ (1 − hk) z,
 * with derivative 1 − hk < 0 when hk > 1.
 *
 * We estimate the Jacobian of the step map at each visited state by central
 * finite differences (all 2d perturbations of all states of one step batched
 * into as few calls as `maxRows` allows), and its determinant by LU with
 * partial pivoting (sign and log|det|). A positive determinant everywhere is
 * necessary, not sufficient, for the step to be injective.
 *
 * Cost: N·2d rows through the step map per step, and N LU factorisations of
 * d×d (O(N·d³) flops) — fine for low-dimensional states; for d in the
 * hundreds, check a subsample of points.
 */
import { ShapeError, SpecError } from '../errors.js';
import { logDet } from '../linalg/lu.js';
import { type Floats, type TrajectoryInput, trajectorySteps } from './states.js';

/**
 * One solver step applied to a batch: `z` holds `n` states of dimension `d`
 * (row-major, length n·d); returns the n states after one step. `stepIndex` is
 * the index k of the step (from t_k to t_{k+1}), for time-dependent fields.
 */
export type StepMap = (z: Float64Array, n: number, d: number, stepIndex: number) => Promise<Floats>;

export interface JacobianOptions {
  /**
   * Relative finite-difference step: δ_c = eps · max(1, |z_c|). Default
   * 6e-6 ≈ (2^-52)^(1/3), right for float64 maps; use ~5e-3 for float32 maps.
   */
  readonly eps?: number;
  /** Most rows passed to one call of the step map (default 65 536). */
  readonly maxRows?: number;
  /** Step index passed to the map (default 0). */
  readonly stepIndex?: number;
}

export interface JacobianDeterminants {
  readonly sign: Int8Array;
  readonly logAbsDet: Float64Array;
}

/**
 * Sign and log|det| of the Jacobian of `step` at each of the `n` states in
 * `states` (length n·d), by central finite differences.
 */
export async function jacobianDeterminants(
  step: StepMap,
  states: Floats,
  n: number,
  d: number,
  options: JacobianOptions = {},
): Promise<JacobianDeterminants> {
  if (states.length !== n * d)
    throw new ShapeError(`jacobianDeterminants: states have length ${states.length}, expected n·d = ${n * d}`);
  const eps = options.eps ?? 6e-6;
  if (!(eps > 0) || !Number.isFinite(eps)) throw new SpecError(`fold check: eps must be a positive number, got ${eps}`);
  const maxRows = options.maxRows ?? 65_536;
  if (!Number.isInteger(maxRows) || maxRows < 1)
    throw new SpecError(`fold check: maxRows must be a positive integer, got ${maxRows}`);
  const stepIndex = options.stepIndex ?? 0;
  const rowsPerState = 2 * d;
  const perCall = Math.max(1, Math.floor(maxRows / rowsPerState));
  const sign = new Int8Array(n);
  const logAbsDet = new Float64Array(n);
  const J = new Float64Array(d * d);
  for (let s0 = 0; s0 < n; s0 += perCall) {
    const m = Math.min(perCall, n - s0);
    const rows = m * rowsPerState;
    const batch = new Float64Array(rows * d);
    const denom = new Float64Array(m * d);
    for (let s = 0; s < m; s++) {
      const z = states.subarray((s0 + s) * d, (s0 + s + 1) * d);
      for (let c = 0; c < d; c++) {
        const zc = z[c]!;
        const delta = eps * Math.max(1, Math.abs(zc));
        const plus = zc + delta;
        const minus = zc - delta;
        denom[s * d + c] = plus - minus; // the representable difference
        const rp = (s * rowsPerState + 2 * c) * d;
        const rm = rp + d;
        batch.set(z, rp);
        batch.set(z, rm);
        batch[rp + c] = plus;
        batch[rm + c] = minus;
      }
    }
    const out = await step(batch, rows, d, stepIndex);
    if (out.length !== rows * d) {
      throw new ShapeError(
        `fold check: step map returned ${out.length} values for ${rows} states of dimension ${d} (expected ` +
          `${rows * d})`,
      );
    }
    for (let s = 0; s < m; s++) {
      // Row c of J^T is ∂Ψ/∂z_c; det(J^T) = det(J).
      for (let c = 0; c < d; c++) {
        const rp = (s * rowsPerState + 2 * c) * d;
        const rm = rp + d;
        const h = denom[s * d + c]!;
        for (let r = 0; r < d; r++) J[c * d + r] = (out[rp + r]! - out[rm + r]!) / h;
      }
      const ld = logDet(J, d);
      sign[s0 + s] = ld.sign;
      logAbsDet[s0 + s] = ld.logAbsDet;
    }
  }
  return { sign, logAbsDet };
}

export interface FoldExample {
  /** Step index k (the step from t_k to t_{k+1}). */
  readonly step: number;
  /** Point index. */
  readonly index: number;
  /** The state the step starts from. */
  readonly state: number[];
  /** det of the step's Jacobian there (may under/overflow to 0/±Infinity for large d; see logAbsDet). */
  readonly det: number;
  readonly sign: -1 | 0 | 1;
  readonly logAbsDet: number;
}

export interface FoldOptions extends JacobianOptions {
  readonly n: number;
  readonly d: number;
  /** Examples of folded states kept (default 5). */
  readonly maxExamples?: number;
  /** Keep the per-step sign and log|det| arrays in the result (default false). */
  readonly keepDeterminants?: boolean;
}

export interface FoldResult {
  readonly n: number;
  readonly d: number;
  /** Steps checked (K). */
  readonly steps: number;
  /** States checked: N·K. */
  readonly states: number;
  /** States where det ≤ 0 (the step folds space there). */
  readonly folded: number;
  readonly foldedFraction: number;
  /** foldedPerStep[k] = folded states among those at t_k. */
  readonly foldedPerStep: number[];
  /** First step with a folded state, or null. */
  readonly firstStep: number | null;
  /** Smallest determinant seen, and where. */
  readonly minDet: number;
  readonly minDetAt: { step: number; index: number } | null;
  /** Smallest log|det| among positive determinants (how close to folding the non-folded states come). */
  readonly minPositiveLogAbsDet: number;
  /** Up to maxExamples folded states, earliest steps first. */
  readonly examples: FoldExample[];
  /** Per step sign / log|det| arrays, when keepDeterminants was set. */
  readonly determinants?: JacobianDeterminants[];
}

const detValue = (sign: number, logAbs: number): number => (sign === 0 ? 0 : sign * Math.exp(logAbs));

/**
 * Fold check along trajectories: `trajectory` holds the states at K+1 times
 * ([K+1][N·d] or flat); the step k map is checked at the K·N states
 * z_i(t_k), k = 0 … K−1 (the last state starts no step). With a single state
 * (K+1 = 1), that state is checked as step 0.
 */
export async function foldCheck(step: StepMap, trajectory: TrajectoryInput, options: FoldOptions): Promise<FoldResult> {
  const { n, d } = options;
  const all = trajectorySteps(trajectory, n, d, 'fold check');
  const starts = all.length === 1 ? all : all.slice(0, -1);
  const K = starts.length;
  const maxExamples = options.maxExamples ?? 5;
  const foldedPerStep = new Array<number>(K).fill(0);
  const examples: FoldExample[] = [];
  const determinants: JacobianDeterminants[] = [];
  let folded = 0;
  let minDet = Infinity;
  let minKey = Infinity; // ordering key: (sign, ±logAbs)
  let minDetAt: { step: number; index: number } | null = null;
  let minPositiveLogAbsDet = Infinity;
  for (let k = 0; k < K; k++) {
    const z = starts[k]!;
    const det = await jacobianDeterminants(step, z, n, d, { ...options, stepIndex: k });
    if (options.keepDeterminants) determinants.push(det);
    for (let i = 0; i < n; i++) {
      const s = det.sign[i]! as -1 | 0 | 1;
      const la = det.logAbsDet[i]!;
      // Compare determinants through (sign, log|det|) so that the order survives under/overflow.
      const key = s === 0 ? 0 : s > 0 ? Math.atan(la) + Math.PI : -(Math.atan(la) + Math.PI);
      if (key < minKey) {
        minKey = key;
        minDet = detValue(s, la);
        minDetAt = { step: k, index: i };
      }
      if (s > 0) {
        if (la < minPositiveLogAbsDet) minPositiveLogAbsDet = la;
        continue;
      }
      folded++;
      foldedPerStep[k]!++;
      if (examples.length < maxExamples) {
        examples.push({
          step: k,
          index: i,
          state: Array.from(z.subarray(i * d, (i + 1) * d)),
          det: detValue(s, la),
          sign: s,
          logAbsDet: la,
        });
      }
    }
  }
  const firstIdx = foldedPerStep.findIndex((c) => c > 0);
  const result: { -readonly [P in keyof FoldResult]: FoldResult[P] } = {
    n,
    d,
    steps: K,
    states: n * K,
    folded,
    foldedFraction: folded / (n * K),
    foldedPerStep,
    firstStep: firstIdx < 0 ? null : firstIdx,
    minDet,
    minDetAt,
    minPositiveLogAbsDet,
    examples,
  };
  if (options.keepDeterminants) result.determinants = determinants;
  return result;
}
