/**
 * model.json of a model directory (src/models/io.ts): configuration, training
 * provenance and the index into params.bin (float32, little-endian).
 *
 * The field spec inside `config` is checked by its owner (models/spec.ts) after
 * this schema, since field kinds and their options live above this layer.
 */
import * as z from 'zod';
import { count, finite, positiveInt, record, str } from './common.js';

export const MODEL_FORMAT_VERSION = 1;
export const MODEL_KIND = 'odeness-model';

/**
 * Bounds on what a reader allocates from a model.json, and on a model's size:
 * `values` float32 parameters in all (2^26 = 256 MiB; Adam keeps two more copies).
 */
export const MODEL_LIMITS = { rank: 8, params: 1024, dim: 1 << 24, values: 1 << 26 } as const;

const shape = z
  .array(positiveInt('a positive integer', MODEL_LIMITS.dim))
  .max(MODEL_LIMITS.rank, { error: `expected at most ${MODEL_LIMITS.rank} dimensions` });

/**
 * complete | diverged (the last good checkpoint was kept) | interrupted (stopped by a signal; `train --resume`
 * continues it)
 */
export const TRAINING_STATUSES = ['complete', 'diverged', 'interrupted'] as const;

export const TrainingInfoSchema = record({
  /** Dataset spec string, e.g. spheres:dupont2019:dim=2 */
  dataset: str(),
  /** Training solver spec at the end of training (after adaptation). */
  solver: str(),
  /** Solver spec training started with (differs when adapted). */
  initialSolver: str().optional(),
  seed: count(),
  iterations: count(),
  batchSize: positiveInt(),
  lr: finite(),
  engine: str().optional(),
  adapt: z.boolean().optional(),
  /** See TRAINING_STATUSES. */
  status: z.enum(TRAINING_STATUSES, { error: `expected one of ${TRAINING_STATUSES.join(', ')}` }),
  /** Iterations asked for, when training stopped before them (interrupted, diverged). */
  targetIterations: positiveInt().optional(),
  note: str().optional(),
});

export const ModelConfigSchema = record({
  /** Per-sample input shape, e.g. [2] for 2-D spheres or [1, 28, 28] for MNIST (CHW). */
  inputShape: shape.min(1),
  /** Zero-augmentation: extra state dims (vectors) or extra channels (images). 0 = none. */
  augment: count('a non-negative integer', MODEL_LIMITS.dim),
  /** Per-sample state shape after the encoder. */
  stateShape: shape.min(1),
  classes: positiveInt('a class count, a positive integer', MODEL_LIMITS.dim),
  /** Checked by models/spec.ts (field kinds live there). */
  field: z.looseObject({ kind: str('a field kind') }) as unknown as z.ZodType<{ readonly kind: string }>,
  t0: finite(),
  t1: finite(),
});

export const ParamEntrySchema = record({
  name: str(),
  shape: z.array(count('a non-negative integer', MODEL_LIMITS.dim)).max(MODEL_LIMITS.rank),
  offset: count(),
  length: count(),
});

export const ModelFileSchema = record({
  formatVersion: z.literal(MODEL_FORMAT_VERSION, {
    error: `expected formatVersion ${MODEL_FORMAT_VERSION} (this version of odeness reads only that)`,
  }),
  kind: z.literal(MODEL_KIND, { error: `expected "${MODEL_KIND}"` }),
  config: ModelConfigSchema,
  training: TrainingInfoSchema,
  params: z
    .array(ParamEntrySchema)
    .max(MODEL_LIMITS.params, { error: `expected at most ${MODEL_LIMITS.params} parameter tensors` }),
  createdAt: str('an ISO time'),
});

export type TrainingInfo = z.output<typeof TrainingInfoSchema>;
export type ModelFile = z.output<typeof ModelFileSchema>;
