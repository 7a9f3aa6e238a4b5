/** plan.json of a study directory: the planned jobs, written by `study run` and read by status/report. */
import * as z from 'zod';
import { str } from './common.js';
import { JobSchema } from './job.js';

/** Most jobs a plan file may hold (a reader checks this before reading the jobs). */
export const MAX_PLAN_JOBS = 1_000_000;

export const PlanFileSchema = z.looseObject({
  name: str().optional(),
  writtenAt: str('an ISO time'),
  jobs: z.array(JobSchema, { error: 'expected a list of jobs' }).max(MAX_PLAN_JOBS, { error: `expected at most ${MAX_PLAN_JOBS} jobs` }),
});

export type PlanFile = z.output<typeof PlanFileSchema>;
