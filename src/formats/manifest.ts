/**
 * manifest.json of a bundle directory (src/onnx/bundle.ts): optional; the
 * same schema serves the writer and the reader. t0/t1 default to 0 and 1.
 */
import * as z from 'zod';
import { finite, positiveInt, record, str } from './common.js';

export const BUNDLE_FORMAT_VERSION = 1;

/** Bounds on what a reader allocates from a foreign manifest. */
export const MANIFEST_LIMITS = { stateRank: 8, classes: 1_000_000 } as const;

export const BundleManifestSchema = record(
  {
    formatVersion: z.literal(BUNDLE_FORMAT_VERSION, { error: `expected formatVersion ${BUNDLE_FORMAT_VERSION}` }),
    /** Integration interval (defaults 0 and 1). */
    t0: finite().default(0),
    t1: finite().default(1),
    /** Per-sample state shape: [d] or [C, H, W]. */
    stateShape: z
      .array(positiveInt(), { error: 'expected a non-empty array of positive integers' })
      .min(1, { error: 'expected a non-empty array of positive integers' })
      .max(MANIFEST_LIMITS.stateRank, { error: `expected at most ${MANIFEST_LIMITS.stateRank} dimensions` }),
    classes: positiveInt('a class count, a positive integer', MANIFEST_LIMITS.classes),
    /** Solver spec the model was trained with, e.g. "rk4:0.1". */
    trainSolver: str().optional(),
    /** Dataset spec or name. */
    dataset: str().optional(),
    seed: z.union([finite(), str()], { error: 'expected a number or a string' }).optional(),
    /** Free-form: who made it, how, from what. */
    provenance: z.record(z.string(), z.unknown(), { error: 'expected a JSON object' }).optional(),
  },
  'a JSON object',
).superRefine((m, ctx) => {
  if (m.t0 === m.t1) ctx.addIssue({ code: 'custom', message: `expected an end time different from t0 (${m.t0})`, input: m.t1, path: ['t1'] });
});

export type BundleManifest = z.output<typeof BundleManifestSchema>;
