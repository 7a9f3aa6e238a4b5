/**
 * manifest.json of a bundle directory (src/onnx/bundle.ts): optional; the
 * same schema serves the writer and the reader. t0/t1 default to 0 and 1.
 */
import * as z from 'zod';
import { finite, positiveInt, record, str } from './common.js';

export const BUNDLE_FORMAT_VERSION = 1 as const;

/** Bounds on what a reader allocates from a foreign manifest. */
export const MANIFEST_LIMITS = { stateRank: 8, classes: 1_000_000 } as const;

/** What an ONNX file of a bundle is: z → dz, z → logits, x → z, or x → logits with the solve unrolled. */
export const FILE_ROLES = ['field', 'head', 'encoder', 'effective'] as const;
export type FileRole = (typeof FILE_ROLES)[number];

export const ManifestFileSchema = record(
  {
    role: z.enum(FILE_ROLES, { error: `expected a role: ${FILE_ROLES.join(', ')}` }),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected 64 lowercase hex digits (SHA-256)' }),
  },
  'a JSON object {"role", "sha256"}',
);

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
    /**
     * Each ONNX file of the directory: its role and the SHA-256 of its bytes.
     * Readers refuse a file whose hash or role does not match (a replaced
     * field.onnx, a head copied over it). Manifests written before this field
     * existed have none; readers accept them with a note.
     */
    files: z
      .record(z.string(), ManifestFileSchema, { error: 'expected {"<file>.onnx": {"role", "sha256"}}' })
      .optional(),
    /** effective.onnx only: the fixed-step solver unrolled into it, e.g. "euler:0.5". */
    effectiveSolver: str().optional(),
    /** Free-form: who made it, how, from what. */
    provenance: z.record(z.string(), z.unknown(), { error: 'expected a JSON object' }).optional(),
  },
  'a JSON object',
).superRefine((m, ctx) => {
  if (m.t0 === m.t1)
    ctx.addIssue({
      code: 'custom',
      message: `expected an end time different from t0 (${m.t0})`,
      input: m.t1,
      path: ['t1'],
    });
});

export type BundleManifest = z.output<typeof BundleManifestSchema>;
