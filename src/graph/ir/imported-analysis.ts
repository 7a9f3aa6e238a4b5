/** The shape pass's result type for an imported graph, shared by imported-field.ts and imported-chains.ts. */
import type { ValueMeta } from '../ops/index.js';

/** What the shape pass learns about an imported graph for a per-sample state shape. */
export interface ImportedAnalysis {
  /** Every value's dtype and shape (batch = PROBE_BATCH), with the folded values of its shape arithmetic. */
  readonly metas: ReadonlyMap<string, ValueMeta>;
  /** Node outputs that are folded (never written into a graph). */
  readonly folded: ReadonlySet<string>;
  /** The widest float value per sample (sizes evaluation chunks). */
  readonly hiddenValues: number;
  /** Float values per sample over every node output (what a backward pass may keep: sizes training memory). */
  readonly activationValues: number;
}
