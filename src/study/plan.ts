/**
 * Expand a study into jobs with content-hash ids.
 *
 * id = first 16 hex digits of sha256(canonicalJson(job minus id)); canonical
 * JSON sorts object keys at every level, so the id does not depend on the key
 * order of the study file, on the job's position in the plan, or on the
 * machine that planned it.
 */
import { loadStudyFile, validateStudy, type StudySpec } from './schema.js';
import { paperTestSolvers } from './paper.js';
import { checkJobSpecs } from './job-specs.js';
import { estimateJobMemory } from './job-memory.js';
import { formatSolverSpec, parseSolverSpec } from '../solvers/spec.js';
import { formatDatasetSpec, parseDatasetSpec } from '../data/spec.js';
import { SpecError } from '../errors.js';
import { FIXED_METHODS } from '../solvers/tableau.js';
import { canonicalField, fieldFilesOf, type FieldFiles } from '../models/field-files.js';
import { createHash } from 'node:crypto';
import type { AdaptStart, Job } from './types.js';
import { canonicalJson, jobId, JOB_ID_LENGTH } from './job-id.js';

// Job ids live in job-id.ts, light enough for the report's and the records' readers (no tfjs, no onnxruntime).
export { canonicalJson, jobConfig, jobId, JOB_FORMAT, JOB_ID_LENGTH } from './job-id.js';

/** A study as written in a file: what `validateStudy` accepts (see schema.ts). */
export type StudyDocument = Record<string, unknown>;

export interface StudyPlan {
  readonly name?: string;
  readonly spec: StudySpec;
  /** Identity of the study (see studyHash): a study directory belongs to one. */
  readonly studyHash: string;
  /** Set when `--iterations` overrode the study file's iterations. */
  readonly overrides?: PlanOverrides;
  readonly jobs: readonly Job[];
  /** What planning decided that the file did not say (grid points that are one training), one line each. */
  readonly notes?: readonly string[];
}

/**
 * What a training spec trains: a fixed step h over [0, 1] with 1/h an integer
 * is the same grid as steps=1/h (euler:0.5 ≡ euler:steps=2); other specs
 * stand for themselves.
 */
export function trainingKey(spec: string): string {
  // Already checked against the study's limits: no bound applies here.
  const s = parseSolverSpec(spec, { maxSteps: Infinity, minTol: 0 });
  if (s.kind !== 'fixed') return spec;
  const n = s.steps ?? Math.round(1 / s.h!);
  return s.steps !== undefined || Math.abs(n * s.h! - 1) <= 1e-12 ? `${s.method}:steps=${n}` : spec;
}

/**
 * Overrides of a study file's values, recorded in the plan (and part of the
 * study hash): iterations and batch size of every job, and testPoints, the
 * test-set size of every dataset (its spec's testN), which bounds evaluation
 * and audits — at a few iterations they dominate a job.
 */
import type { PlanOverrides } from '../formats/index.js';
export type { PlanOverrides };

/**
 * A dataset spec with its test-set size set to N (spheres, mnist, cifar10; a JSON file's test split is a fraction, not
 * a count).
 */
export function withTestPoints(dataset: string, n: number): string {
  const d = parseDatasetSpec(dataset);
  if (d.kind === 'json')
    throw new SpecError(
      `dataset "${dataset}": --test-points applies to spheres, mnist and cifar10 datasets; ` +
        `a JSON file's test split is set in its spec (split=<fraction>)`,
    );
  return formatDatasetSpec({ ...d, testN: n });
}

/** The paper's start tolerance of tolerance adaptation (rtol = atol). */
export const ADAPT_START_TOL = 1e-6;

/**
 * The start of a method's adaptation runs: an explicit start spec from the
 * study, else Hairer's initial step (fixed-step methods; the spec's step is a
 * placeholder the trainer replaces on the first batch) or the paper's 1e-6
 * (adaptive methods).
 */
export function adaptationStart(
  method: string,
  starts: StudySpec['adaptStart'],
): { trainSolver: string; adaptStart: AdaptStart } {
  const explicit = starts === 'hairer' ? undefined : starts.find((s) => s.split(':')[0] === method);
  if (explicit) return { trainSolver: explicit, adaptStart: 'spec' };
  if (FIXED_METHODS.includes(method))
    return { trainSolver: formatSolverSpec({ kind: 'fixed', method, steps: 1 }), adaptStart: 'hairer' };
  return {
    trainSolver: formatSolverSpec({ kind: 'adaptive', method, rtol: ADAPT_START_TOL, atol: ADAPT_START_TOL }),
    adaptStart: 'spec',
  };
}

/**
 * The study's identity: a hash of its normalised spec (overrides applied), so comments, key order and spellings do not
 * matter.
 */
export function studyHash(spec: StudySpec): string {
  return createHash('sha256')
    .update('odeness-study/1\n' + canonicalJson(spec))
    .digest('hex')
    .slice(0, JOB_ID_LENGTH);
}

/**
 * Expand a validated spec: datasets × fields × grid points × seeds grid jobs,
 * plus (adapt: true / both) one adaptation job per dataset × field × method ×
 * seed — adaptation ignores the grid's step, so one run per method is all
 * there is to run. Duplicates dropped.
 */
export function planSpec(study: StudySpec, given: PlanOverrides = {}): StudyPlan {
  const overrides = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as PlanOverrides;
  const spec: StudySpec = {
    ...study,
    ...(overrides.iterations !== undefined ? { iterations: overrides.iterations } : {}),
    ...(overrides.batchSize !== undefined ? { batchSize: overrides.batchSize } : {}),
    ...(overrides.device !== undefined ? { device: overrides.device === 'cpu' ? undefined : overrides.device } : {}),
    ...(overrides.testPoints !== undefined
      ? { datasets: study.datasets.map((d) => withTestPoints(d, overrides.testPoints!)) }
      : {}),
  };
  const jobs: Job[] = [];
  const seen = new Set<string>();
  const files = studyFieldFiles(spec);
  const add = (config: Omit<Job, 'id'>) => {
    const id = jobId(config);
    if (seen.has(id)) return;
    seen.add(id);
    const job: Job = { id, ...config };
    checkJobSpecs(job, files); // what a worker checks; a planned job that failed it would be refused on a cluster
    jobs.push({ ...job, memory: estimateJobMemory(job, files).total });
  };
  const notes: string[] = [];
  const gridSpecs = oneTrainingEach(
    spec.grid.flatMap((g) => g.specs),
    notes,
  );
  const tests = spec.testSolvers === 'paper' ? ['paper'] : spec.testSolvers;
  const common = {
    iterations: spec.iterations,
    batchSize: spec.batchSize,
    lr: spec.lr,
    audit: { crossing: spec.audits.crossing, fan: spec.audits.fan },
    engine: spec.engine,
    ...(spec.solverLimits ? { solverLimits: spec.solverLimits } : {}),
    // Absent for the CPU, so CPU jobs keep their ids.
    ...(spec.device !== undefined && spec.device !== 'cpu' ? { device: spec.device } : {}),
  };
  for (const dataset of spec.datasets) {
    for (const located of spec.fields) {
      // A job names a field file by its name and hash, not where it lies (models/field-files.ts).
      const field = canonicalField(located);
      if (spec.adapt.includes(false)) {
        for (const trainSolver of gridSpecs) {
          // The paper's test set is resolved around the grid point (part of the job's id).
          const testSolvers = [...new Set(tests.flatMap((t) => (t === 'paper' ? paperTestSolvers(trainSolver) : [t])))];
          for (const seed of spec.seeds)
            add({ dataset, field, trainSolver, adapt: false, seed, ...common, testSolvers });
        }
      }
      if (spec.adapt.includes(true)) {
        for (const method of [...new Set(spec.grid.map((g) => g.solver))]) {
          const start = adaptationStart(method, spec.adaptStart);
          // "paper" stays a token: the job resolves it around the step it ends at.
          const folds = spec.adaptFolds ? { adaptFolds: true as const } : {};
          for (const seed of spec.seeds)
            add({
              dataset,
              field,
              trainSolver: start.trainSolver,
              adapt: true,
              adaptStart: start.adaptStart,
              ...folds,
              seed,
              ...common,
              testSolvers: [...tests],
            });
        }
      }
    }
  }
  return {
    ...(spec.name !== undefined ? { name: spec.name } : {}),
    spec,
    studyHash: studyHash(spec),
    ...(Object.keys(overrides).length > 0 ? { overrides } : {}),
    jobs,
    ...(notes.length > 0 ? { notes } : {}),
  };
}

/** Where the study's field files lie on this machine, by hash (its fields are kept located: schema.ts). */
export function studyFieldFiles(spec: Pick<StudySpec, 'fields'>): FieldFiles {
  return fieldFilesOf(spec.fields);
}

/**
 * The grid's specs with each training once: a later spec that trains the same as an earlier one is dropped, with a
 * note.
 */
function oneTrainingEach(specs: readonly string[], notes: string[]): string[] {
  const first = new Map<string, string>();
  for (const s of specs) {
    const key = trainingKey(s);
    const seen = first.get(key);
    if (seen === undefined) first.set(key, s);
    else notes.push(`grid: ${s} trains the same as ${seen} (${key}): planned once, as ${seen}`);
  }
  return [...first.values()];
}

/** Plan from a study file path or a study document (the object a study file parses to). */
export function planStudy(source: string | StudyDocument, overrides: PlanOverrides = {}): StudyPlan {
  const spec = typeof source === 'string' ? loadStudyFile(source) : validateStudy(source, '<study>');
  return planSpec(spec, overrides);
}
