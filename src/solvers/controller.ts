/**
 * Step-size controllers (diffrax's ConstantStepSize and PIDController): all
 * the one integrate loop asks between steps — where steps must land, the first
 * step size, a step's error ratio, and whether to accept the step and how
 * large the next one is. The loop itself knows no tolerances and no grids.
 */
import { SolveError } from '../errors.js';
import { initialStep } from './initial-step.js';
import {
  checkStepBudget,
  DEFAULT_MAX_STEPS,
  DEFAULT_SOLVER_LIMITS,
  fixedStepCount,
  type AdaptiveSolverSpec,
  type FixedSolverSpec,
} from './spec.js';
import { JOB_LIMITS } from '../formats/index.js';
import type { FieldGen, VectorOps } from './vector.js';

export interface StepDecision {
  readonly accept: boolean;
  /** Size of the next step attempt (Infinity: up to the next stop). */
  readonly hNext: number;
}

export interface StepController {
  /** Points after t0 that steps must land on: a fixed grid, or the requested output times. */
  stops(t0: number, t1: number, times: readonly number[]): readonly number[];
  /** The first step size, given f0 = f(t0, z0) (Hairer's asks for one more evaluation). */
  init<V>(ops: VectorOps<V>, t0: number, z0: V, f0: V, dir: number): FieldGen<V, number>;
  /**
   * The error ratio of a step from z0 to z1 with error estimate err (≤ 1 accepts); absent when the
   * controller has no error control, and the loop then checks the state's finiteness itself.
   */
  readonly ratio?: <V>(ops: VectorOps<V>, err: V, z0: V, z1: V) => number;
  /** Accept or reject a step of size h (> 0) taken from t, and size the next attempt. */
  adapt(ratio: number, h: number, t: number): StepDecision;
  /** Attempted steps (accepted + rejected) after which the solve gives up. */
  readonly maxSteps: number;
  /** The settings a maxSteps failure names, e.g. "rtol=1e-5, atol=1e-5". */
  readonly settings: string;
}

/** Grid points of a fixed-step solve: t0, t0+h, …, and t1 (a shorter last step when h does not divide). */
export function fixedGrid(spec: FixedSolverSpec, t0: number, t1: number): number[] {
  // The last line of defence (callers check their own limits first): a grid of 10^9 points is a V8 abort, not an error.
  checkStepBudget(spec, t0, t1, { ...DEFAULT_SOLVER_LIMITS, maxSteps: JOB_LIMITS.maxSolverSteps });
  const n = fixedStepCount(spec, t0, t1);
  const dir = Math.sign(t1 - t0);
  const grid: number[] = [];
  for (let k = 0; k < n; k++) {
    // t0 + (t1 − t0)·k/n for step counts, so rounding does not accumulate.
    grid.push(spec.steps !== undefined ? t0 + ((t1 - t0) * k) / spec.steps : t0 + dir * spec.h! * k);
  }
  grid.push(t1);
  return grid;
}

/**
 * Fixed steps (torchdiffeq's grid): every step runs from one grid point to the
 * next, so the controller proposes no limit (the loop lands on the next stop)
 * and accepts every step; requested times between grid points are
 * interpolated linearly by the loop.
 */
export class ConstantStepSize implements StepController {
  readonly maxSteps = Infinity;
  readonly settings: string;

  constructor(private readonly spec: FixedSolverSpec) {
    this.settings = spec.steps !== undefined ? `steps=${spec.steps}` : `h=${spec.h}`;
  }

  stops(t0: number, t1: number): readonly number[] {
    return fixedGrid(this.spec, t0, t1).slice(1);
  }

  *init<V>(): FieldGen<V, number> {
    return Infinity;
  }

  adapt(): StepDecision {
    return { accept: true, hNext: Infinity };
  }
}

const SAFETY = 0.9;
const MAX_FACTOR = 10;
const MIN_FACTOR = 0.2;

/**
 * Error control by rtol/atol, the integral-only case of a PID controller
 * (torchdiffeq's rule): accept when the scaled RMS of the error estimate is
 * ≤ 1, scale the step by 0.9·ratio^(−1/order) within [0.2, 10] (an accepted
 * step never shrinks the next one). The first step is the spec's firstStep or
 * Hairer's in the same scaled norm; minStep floors every step.
 */
export class PIDController implements StepController {
  readonly maxSteps: number;
  readonly settings: string;

  constructor(
    private readonly spec: AdaptiveSolverSpec,
    private readonly order: number,
  ) {
    this.maxSteps = spec.maxSteps ?? DEFAULT_MAX_STEPS;
    this.settings = `rtol=${spec.rtol}, atol=${spec.atol}`;
  }

  stops(_t0: number, _t1: number, times: readonly number[]): readonly number[] {
    return times;
  }

  *init<V>(ops: VectorOps<V>, t0: number, z0: V, f0: V, dir: number): FieldGen<V, number> {
    const { rtol, atol, firstStep, minStep } = this.spec;
    const norm = (v: V) => ops.scaledRms(v, rtol, atol, [z0]);
    const h = firstStep ?? (yield* initialStep(ops, norm, this.order, t0, z0, f0, dir));
    return minStep !== undefined ? Math.max(h, minStep) : h;
  }

  readonly ratio = <V>(ops: VectorOps<V>, err: V, z0: V, z1: V): number => {
    const r = ops.scaledRms(err, this.spec.rtol, this.spec.atol, [z0, z1]);
    return Number.isFinite(r) ? r : Infinity; // a NaN/Inf error estimate forces a rejection
  };

  adapt(ratio: number, h: number, t: number): StepDecision {
    const { method, minStep } = this.spec;
    const accept = ratio <= 1;
    const scaled = SAFETY * Math.pow(ratio, -1 / this.order);
    const factor = ratio === 0 ? MAX_FACTOR : Math.min(MAX_FACTOR, Math.max(accept ? 1 : MIN_FACTOR, scaled));
    let hNext = h * factor;
    if (!accept && !Number.isFinite(hNext)) hNext = h * MIN_FACTOR;
    if (minStep !== undefined && hNext < minStep) {
      if (!accept && h <= minStep) {
        const why = `a step of minStep=${minStep} was rejected at t=${t} (error ratio ${ratio})`;
        throw new SolveError(`${method}: ${why}; the solution may blow up here`, t);
      }
      hNext = minStep;
    }
    if (!accept && ratio === Infinity && hNext < 1e-14 * Math.max(1, Math.abs(t))) {
      throw new SolveError(`${method}: state became NaN/Inf near t=${t}`, t);
    }
    return { accept, hNext };
  }
}
