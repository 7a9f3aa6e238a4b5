/**
 * checkpoint.json of a model directory (src/train/checkpoint.ts): the settings
 * of the training run and how far it got, so `train --resume DIR` can
 * continue it. Written beside model.json by every training with --out.
 */
import * as z from 'zod';
import { count, EngineChoiceSchema, finite, positiveInt, record, str } from './common.js';
import { TRAINING_STATUSES } from './model-file.js';

export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_KIND = 'odeness-checkpoint';

const AdaptSettingsSchema = z.union([
  z.literal(false),
  record({
    threshold: finite().optional(),
    checkEvery: positiveInt().optional(),
    maxSteps: positiveInt().optional(),
    start: z.enum(['hairer', 'spec']).optional(),
    startTol: finite().optional(),
    folds: z.boolean().optional(),
  }),
]);

/** TrainRunSpec as stored (src/train/run.ts). */
export const TrainRunSettingsSchema = record({
  dataset: str(),
  field: str(),
  solver: str(),
  seed: count(),
  batchSize: positiveInt(),
  lr: finite(),
  betas: z.tuple([finite(), finite()]).optional(),
  augment: count().optional(),
  t0: finite().optional(),
  t1: finite().optional(),
  adapt: AdaptSettingsSchema.optional(),
  logEvery: positiveInt().optional(),
  engine: EngineChoiceSchema.optional(),
});

export const CheckpointFileSchema = record({
  kind: z.literal(CHECKPOINT_KIND, { error: `expected "${CHECKPOINT_KIND}"` }),
  formatVersion: z.literal(CHECKPOINT_FORMAT_VERSION, { error: `expected formatVersion ${CHECKPOINT_FORMAT_VERSION}` }),
  run: TrainRunSettingsSchema,
  /** Iterations asked for. */
  targetIterations: positiveInt(),
  /** Iterations whose parameters params.bin holds. */
  iterations: count(),
  /** The training solver at that point (after adaptation). */
  solver: str(),
  status: z.enum(TRAINING_STATUSES),
});

export type CheckpointFile = z.output<typeof CheckpointFileSchema>;
