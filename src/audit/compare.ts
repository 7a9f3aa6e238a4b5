/**
 * Grid search vs adaptation (the paper's Table 1): what a grid over step sizes
 * (or tolerances) costs to find a configuration that keeps ODE semantics,
 * against one adaptation run.
 */
import { checkThreshold, DEFAULT_THRESHOLD } from './critical.js';

export interface RunCost {
  /** Training solver (final solver for adaptation runs). */
  readonly spec: string;
  /** Test accuracy under the training solver. */
  readonly trainAccuracy: number;
  /** Test accuracy under a finer test solver. */
  readonly testAccuracy: number;
  /** NFE spent in training: forward + backward (+ adaptation checks). */
  readonly totalNfe: number;
}

export interface RunVerdict extends RunCost {
  /** Keeps ODE semantics: |train − test accuracy| ≤ threshold. */
  readonly pass: boolean;
}

export interface GridVsAdaptation {
  readonly threshold: number;
  readonly grid: {
    readonly runs: RunVerdict[];
    /** NFE of the whole grid search (every configuration must be trained to find the boundary). */
    readonly totalNfe: number;
    /** Cheapest configuration that keeps ODE semantics, or null. */
    readonly cheapestPassing: RunVerdict | null;
  };
  readonly adaptation: RunVerdict;
  /** The adaptation run keeps ODE semantics and costs less than the whole grid. */
  readonly adaptationWins: boolean;
}

export function compareGridAdaptation(
  grid: readonly RunCost[],
  adaptation: RunCost,
  threshold = DEFAULT_THRESHOLD,
): GridVsAdaptation {
  checkThreshold(threshold);
  const verdict = (r: RunCost): RunVerdict => ({
    ...r,
    pass: Math.abs(r.trainAccuracy - r.testAccuracy) <= threshold + 1e-12,
  });
  const runs = grid.map(verdict);
  const passing = runs.filter((r) => r.pass).sort((a, b) => a.totalNfe - b.totalNfe);
  const totalNfe = runs.reduce((s, r) => s + r.totalNfe, 0);
  const a = verdict(adaptation);
  return {
    threshold,
    grid: { runs, totalNfe, cheapestPassing: passing[0] ?? null },
    adaptation: a,
    adaptationWins: a.pass && a.totalNfe < totalNfe,
  };
}
