/** plan.json of a study directory: the planned jobs, written by `study run` and read by status/report. */
import * as z from 'zod';
import { positiveInt, str } from './common.js';
import { JobSchema } from './job.js';

/** Most jobs a plan file may hold (a reader checks this before reading the jobs). */
export const MAX_PLAN_JOBS = 1_000_000;

const STUDY_HASH = /^[0-9a-f]{16}$/;

export const PlanFileSchema = z.looseObject({
  name: str().optional(),
  writtenAt: str('an ISO time'),
  /** Hash of the normalised study last run into the directory (study/plan.ts studyHash). */
  studyHash: z.string().regex(STUDY_HASH, { error: 'expected a study hash, 16 hex digits' }).optional(),
  /** Every study hash the directory belongs to (more than one after `study run --extend`). */
  studies: z.array(z.string().regex(STUDY_HASH, { error: 'expected a study hash, 16 hex digits' })).max(1000).optional(),
  /** That study, normalised: to say what differs when another one is run into the directory. */
  study: z.unknown().optional(),
  /** `study run --iterations N`: every job trains N iterations instead of the study file's. */
  iterationsOverride: positiveInt().optional(),
  jobs: z.array(JobSchema, { error: 'expected a list of jobs' }).max(MAX_PLAN_JOBS, { error: `expected at most ${MAX_PLAN_JOBS} jobs` }),
});

export type PlanFile = z.output<typeof PlanFileSchema>;
