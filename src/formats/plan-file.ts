/** plan.json of a study directory: the planned jobs, written by `study run` and read by status/report. */
import * as z from 'zod';
import { DeviceSchema, positiveInt, str } from './common.js';
import { JobSchema } from './job.js';

/** Most jobs a plan file may hold (a reader checks this before reading the jobs). */
export const MAX_PLAN_JOBS = 1_000_000;

/**
 * Values of the study file a run overrode (`study run --iterations N
 * --test-points N --batch-size N`): a smoke run of a big study, not its result.
 */
export const PlanOverridesSchema = z.object({
  iterations: positiveInt().optional(),
  testPoints: positiveInt().optional(),
  batchSize: positiveInt().optional(),
  /** --device: where every job's sessions run (cpu drops the study file's device). */
  device: DeviceSchema.optional(),
});

export type PlanOverrides = z.output<typeof PlanOverridesSchema>;

const STUDY_HASH = /^[0-9a-f]{16}$/;

export const PlanFileSchema = z.looseObject({
  name: str().optional(),
  writtenAt: str('an ISO time'),
  /** Hash of the normalised study last run into the directory (study/plan.ts studyHash). */
  studyHash: z.string().regex(STUDY_HASH, { error: 'expected a study hash, 16 hex digits' }).optional(),
  /** Every study hash the directory belongs to (more than one after `study run --extend`). */
  studies: z
    .array(z.string().regex(STUDY_HASH, { error: 'expected a study hash, 16 hex digits' }))
    .max(1000)
    .optional(),
  /** That study, normalised: to say what differs when another one is run into the directory. */
  study: z.unknown().optional(),
  overrides: PlanOverridesSchema.optional(),
  /** Plan files of odeness 0.1 recorded only `--iterations N`, here. */
  iterationsOverride: positiveInt().optional(),
  jobs: z
    .array(JobSchema, { error: 'expected a list of jobs' })
    .max(MAX_PLAN_JOBS, { error: `expected at most ${MAX_PLAN_JOBS} jobs` }),
});

export type PlanFile = z.output<typeof PlanFileSchema>;

/** The overrides a plan file records (either spelling); undefined if none. */
export function planFileOverrides(file: PlanFile): PlanOverrides | undefined {
  const o = {
    ...(file.iterationsOverride !== undefined ? { iterations: file.iterationsOverride } : {}),
    ...file.overrides,
  };
  return Object.keys(o).length > 0 ? o : undefined;
}
