/**
 * A job: one training run with its evaluations, as stored in plan.json, sent
 * to piscina worker threads and NATS workers, and embedded in each result.
 *
 * A job is a pure function of its config: its id is a content hash of every
 * other field (src/study/plan.ts), so the same job planned anywhere has the
 * same id. Every size a job carries is bounded here, so a worker can check an
 * untrusted job message before it allocates anything.
 */
import * as z from 'zod';
import { EngineChoiceSchema, GpuDeviceSchema, count, positive, positiveInt, record, str } from './common.js';

/** The documented maxima of a job (and of a study file's corresponding keys). */
export const JOB_LIMITS = {
  /** Training iterations (the paper uses 10 000). */
  iterations: 1_000_000,
  /** Samples per training batch. */
  batchSize: 65_536,
  /** Adam learning rate: (0, lr]. */
  lr: 1,
  /** Seeds are 32-bit. */
  seed: 2 ** 32 - 1,
  /** Test solvers a trained model is re-evaluated under. */
  testSolvers: 256,
  /** Length of a spec string (dataset specs hold file paths). */
  specLength: 4096,
  /** Ceiling a study may raise the solver step-count limit to. */
  maxSolverSteps: 10_000_000,
  /** Runs of one job id (`--retry-failed` counts up): bounded so a forged count cannot block the next retry. */
  attempt: 1_000_000,
  /** Estimated peak memory of a job, bytes (256 GiB: beyond any one machine a study runs on). */
  memory: 256 * 2 ** 30,
} as const;

/** The test-set keyword an adaptation job may keep: the paper's set around the step training ends at. */
export const PAPER_TEST_SET = 'paper';

export const JOB_ID_PATTERN = /^[0-9a-f]{16}$/;

/** Where an adaptation run starts (see JobSchema.adaptStart). */
export const ADAPT_STARTS = ['hairer', 'spec'] as const;

/** Solver bounds a job was planned with (only when its study overrides the defaults). */
export const SolverLimitsSchema = record({
  maxSteps: positiveInt('a step count ceiling, a positive integer', JOB_LIMITS.maxSolverSteps),
  minTol: positive('a tolerance floor, a number in (0, 1)', 1),
});

const spec = (what: string) => str(what, JOB_LIMITS.specLength);

export const JobSchema = record({
  /** Content hash of the other fields (16 hex digits of sha256, see `jobId`). */
  id: z
    .string({ error: 'expected a job id, 16 hex digits' })
    .regex(JOB_ID_PATTERN, { error: 'expected a job id, 16 hex digits' }),
  /** Dataset spec string, e.g. `spheres:dupont2019:dim=2`. */
  dataset: spec('a dataset spec string'),
  /** Field spec string, e.g. `mlp:width=32`. */
  field: spec('a field spec string'),
  /** Canonical solver spec string (formatSolverSpec), e.g. `euler:0.25`, `rk4:steps=10`, `dopri5:0.001`. */
  trainSolver: spec('a solver spec string'),
  /** Step-size / tolerance adaptation during training (the grid value is then the initial step/tol). */
  adapt: z.boolean({ error: 'expected true or false' }),
  seed: count('a seed, a non-negative integer', JOB_LIMITS.seed),
  iterations: positiveInt('an iteration count, a positive integer', JOB_LIMITS.iterations),
  batchSize: positiveInt('a batch size, a positive integer', JOB_LIMITS.batchSize),
  lr: positive(`a learning rate in (0, ${JOB_LIMITS.lr}]`, JOB_LIMITS.lr),
  /** Canonical solver spec strings the trained model is re-evaluated under. */
  testSolvers: z
    .array(spec('a solver spec string'), { error: 'expected a list of solver spec strings' })
    .max(JOB_LIMITS.testSolvers, { error: `expected at most ${JOB_LIMITS.testSolvers} test solvers` }),
  audit: record({
    crossing: z.boolean({ error: 'expected true or false' }),
    fan: z.boolean({ error: 'expected true or false' }),
  }),
  engine: EngineChoiceSchema,
  /** Solver bounds, when the study overrides the defaults (absent otherwise, so ids of other jobs do not change). */
  solverLimits: SolverLimitsSchema.optional(),
  /**
   * Adaptation jobs only: where the adaptation starts. `hairer`: the step of
   * `trainSolver` is replaced by Hairer's initial step on the first batch (the
   * paper's default for fixed-step methods); `spec`: training starts at
   * `trainSolver` itself (an explicit start; the paper's 1e-6 for adaptive
   * methods). Absent on grid jobs (so their ids do not change). An adaptation
   * job may keep the token `paper` in testSolvers: it is resolved around the
   * step training ends at.
   */
  adaptStart: z.enum(ADAPT_STARTS, { error: `expected one of ${ADAPT_STARTS.join(', ')}` }).optional(),
  /** The device the job's sessions must run on; absent for the CPU (so the ids of CPU jobs do not change). */
  device: GpuDeviceSchema.optional(),
  /**
   * Adaptation jobs only, when set: adaptation also shrinks steps that fold space (beyond the paper). Absent otherwise,
   * so ids do not change.
   */
  adaptFolds: z.literal(true, { error: 'expected true (or absent)' }).optional(),
  /**
   * Estimated peak resident memory of the process running the job, bytes
   * (src/study/job-memory.ts): derived from the other fields, so it is not part
   * of the id (ids stay as they were). Absent on jobs planned before it existed:
   * they are estimated on arrival.
   */
  memory: positiveInt(
    `an estimated peak memory in bytes, a positive integer up to ${JOB_LIMITS.memory}`,
    JOB_LIMITS.memory,
  ).optional(),
});

export type AdaptStart = (typeof ADAPT_STARTS)[number];

export type Job = z.output<typeof JobSchema>;
/** The bounds every solver spec is checked against (defaults in solvers/spec.ts). */
export type SolverLimits = z.output<typeof SolverLimitsSchema>;
