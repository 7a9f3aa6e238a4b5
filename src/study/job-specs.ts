/**
 * The one check of a job's contents beyond its format (src/formats/job.ts):
 * its spec strings, parsed by the registries that own them. The planner's
 * jobs pass it by construction (planSpec asserts so) and a NATS worker runs it
 * on every untrusted job (cluster/job-checks.ts), so whatever the planner
 * emits a worker accepts, with no second copy of any bound.
 */
import { PAPER_TEST_SET } from '../formats/index.js';
import { parseDatasetSpec } from '../data/spec.js';
import { SpecError } from '../errors.js';
import { parseFieldSpec } from '../models/spec.js';
import { locateField, type FieldFiles } from '../models/field-files.js';
import { DEFAULT_SOLVER_LIMITS, parseSolverSpec } from '../solvers/spec.js';
import type { Job } from './types.js';

/**
 * The spec strings inside a job, parsed by the registries that own them (the
 * field registry's option ranges, the solver parser with the job's own solver
 * limits, the dataset parser's sizes): the one check of a job's contents
 * beyond its format, shared by the planner's output and a worker's untrusted
 * input. Only an adaptation job may keep the `paper` test-set keyword
 * (src/study/execute.ts expands it around the step adaptation reaches).
 * Throws the parser's SpecError naming the first spec out of bounds. `files`:
 * where this machine holds the field files jobs name by hash (field-files.ts).
 */
export function checkJobSpecs(job: Job, files: FieldFiles = {}): void {
  for (const s of job.testSolvers) {
    if (s === PAPER_TEST_SET && !job.adapt) {
      const why = 'is kept only by adaptation jobs (adapt: true); this job has adapt: false';
      throw new SpecError(`test solver "${PAPER_TEST_SET}" ${why}`);
    }
  }
  const limits = job.solverLimits ?? DEFAULT_SOLVER_LIMITS;
  for (const s of [job.trainSolver, ...job.testSolvers]) if (s !== PAPER_TEST_SET) parseSolverSpec(s, limits);
  parseDatasetSpec(job.dataset);
  // A field file is read where this machine holds it, never from a path in the job.
  parseFieldSpec(locateField(job.field, files));
}
