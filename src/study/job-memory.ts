/**
 * A job's estimated peak memory: the resident bytes of the process that runs
 * it (a NATS job process; a pool thread's share of its process), from the job
 * alone — no I/O, no model built. Admission (admission.ts) packs jobs by it,
 * the planner stores it in each job (Job.memory), and a worker estimates it on
 * arrival for jobs planned without it.
 *
 *   base     the job process itself: node, tfjs-wasm, onnxruntime (measured)
 *   data     the train and test sets (float32), the batches copied from them
 *   params   parameters, gradients and Adam's moments (field kind's params)
 *   train    fixed steps: the compiled training graph's saved activations
 *            (micro-batch × field evaluations × the field kind's activation
 *            values) plus the graph itself; adaptive solvers: the tape of the
 *            integrate loop (batch × stages × steps, float64)
 *   eval     the test set solved under each test solver (onnxruntime,
 *            chunked within the evaluation budget) and the audits' trajectories
 *            (the fan's float64 reference beside the solver's states)
 *
 * The parts are summed: onnxruntime's arenas keep their peak for the life of a
 * session, and the training session stays cached while the job evaluates.
 * The constants were fitted to peak RSS measured on the development machine
 * (scripts/job-memory.ts; the table is in the README's cluster section).
 */
import { AUDIT_POINTS } from '../audit/audits.js';
import { parseDatasetSpec } from '../data/spec.js';
import type { DatasetSpec } from '../data/format.js';
import { DEFAULT_SPHERES_TEST, DEFAULT_SPHERES_TRAIN } from '../data/spheres.js';
import { DEFAULT_MNIST_TEST, DEFAULT_MNIST_TRAIN } from '../data/mnist.js';
import { DEFAULT_MEMORY_BYTES, rowsWithin } from '../engines/memory.js';
import { fieldKind } from '../models/fields/index.js';
import { fieldBytesPerSample, trainMicroBatch } from '../models/memory.js';
import { parseFieldSpec } from '../models/spec.js';
import { locateField, type FieldFiles } from '../models/field-files.js';
import type { ModelConfig } from '../models/types.js';
import { DEFAULT_SOLVER_LIMITS, fixedStepCount, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { getTableau } from '../solvers/tableau.js';
import { JOB_LIMITS, PAPER_TEST_SET } from '../formats/index.js';
import type { Job } from './types.js';

const MiB = 2 ** 20;
/** Resident memory of a job process before its job allocates anything. */
const BASE_BYTES = 175 * MiB;
/** Copies of the data a job holds at once (the sets, their batches, the evaluation's inputs). */
const DATA_COPIES = 3;
/** Arrays per parameter: values, gradients, Adam's two moments, the session's copies. */
const PARAM_COPIES = 8;
/** Bytes of compiled graph and session structures per field evaluation a training graph unrolls. */
const GRAPH_BYTES_PER_NFE = 0.55 * MiB;
/** Hidden activations an onnxruntime evaluation holds at once (a layer's input and output). */
const EVAL_LIVE_HIDDEN = 2;
/** State-sized values around an evaluation call (input, output, layout copies). */
const EVAL_LIVE_STATES = 4;
/** Saved activations are kept, and the backward pass writes as many again. */
const TAPE_FACTOR = 2;
/** Steps an adaptive solve is priced at (its real count is known only once it runs). */
const ADAPTIVE_STEPS = 40;
/** Steps an adaptation run of a fixed-step method is priced at (it ends where its accuracy check leads). */
const ADAPTATION_STEPS = 64;

export interface JobMemoryParts {
  base: number;
  data: number;
  params: number;
  train: number;
  eval: number;
}

export interface JobMemoryEstimate {
  /** Bytes: the sum of the parts. */
  total: number;
  parts: JobMemoryParts;
}

/** Per-sample shape and train + test sample counts of a dataset spec (a file's only when its spec names them). */
export function datasetSize(d: DatasetSpec): { shape?: number[]; train: number; test: number } {
  switch (d.kind) {
    case 'spheres':
      return { shape: [d.dim], train: d.n ?? DEFAULT_SPHERES_TRAIN, test: d.testN ?? DEFAULT_SPHERES_TEST };
    case 'mnist':
      return {
        shape: [1, d.size ?? 28, d.size ?? 28],
        train: d.n ?? DEFAULT_MNIST_TRAIN,
        test: d.testN ?? DEFAULT_MNIST_TEST,
      };
    case 'cifar10':
      return { shape: [3, 32, 32], train: d.limit ?? 50_000, test: d.testN ?? 10_000 };
    case 'json':
      // The file's size is bounded by the worker (--max-dataset-mb); its shape only when given.
      return { ...(d.shape ? { shape: [...d.shape] } : {}), train: 0, test: 0 };
  }
}

/** Field evaluations of one forward solve, and the steps they are taken in. */
function solveSize(s: SolverSpec, adapt: boolean): { steps: number; nfe: number } {
  const stages = getTableau(s.method).c.length;
  const steps = s.kind === 'adaptive' ? ADAPTIVE_STEPS : Math.max(fixedStepCount(s), adapt ? ADAPTATION_STEPS : 1);
  return { steps, nfe: stages * steps };
}

const prod = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The job's estimated peak resident memory, by part (bytes). */
export function estimateJobMemory(job: Job, files: FieldFiles = {}): JobMemoryEstimate {
  const data = datasetSize(parseDatasetSpec(job.dataset));
  const shape = data.shape ?? [1];
  const state = prod(shape);
  const fieldSpec = parseFieldSpec(locateField(job.field, files));
  const kind = fieldKind(fieldSpec);
  const config: ModelConfig = {
    inputShape: shape,
    augment: 0,
    stateShape: shape,
    classes: 10,
    field: fieldSpec,
    t0: 0,
    t1: 1,
  };
  const limits = job.solverLimits ?? DEFAULT_SOLVER_LIMITS;
  const trainSpec = parseSolverSpec(job.trainSolver, limits);
  const trainSolve = solveSize(trainSpec, job.adapt);
  const saved = kind.activationValues(fieldSpec, shape) + 2 * state;

  const paramCount = kind.params(fieldSpec, shape).reduce((n, p) => n + prod(p.shape), 0);
  let train: number;
  if (trainSpec.kind === 'fixed') {
    // On a GPU the whole batch runs at once; on the CPU in micro-batches sized to the cache.
    const micro = job.device === undefined ? trainMicroBatch(config, job.batchSize) : job.batchSize;
    train = 4 * TAPE_FACTOR * micro * trainSolve.nfe * saved + GRAPH_BYTES_PER_NFE * trainSolve.nfe;
  } else {
    // The integrate loop's tape: every stage's state and slope in float64, for the whole batch.
    train = 8 * 2 * job.batchSize * trainSolve.nfe * state + 4 * TAPE_FACTOR * job.batchSize * saved;
  }

  // Evaluation: the test set's solver states, the field's working memory (chunked within the budget).
  const tests = job.testSolvers.filter((t) => t !== PAPER_TEST_SET).map((t) => parseSolverSpec(t, limits));
  const stages = Math.max(...[trainSpec, ...tests].map((s) => getTableau(s.method).c.length));
  // Evaluation runs the field on chunks of rows within the evaluation budget (engines/memory.ts).
  const rows = Math.min(data.test, rowsWithin(DEFAULT_MEMORY_BYTES, fieldBytesPerSample(config)));
  const hidden = kind.hiddenValues(fieldSpec, shape);
  const fieldBytes = 4 * rows * (EVAL_LIVE_HIDDEN * hidden + EVAL_LIVE_STATES * state);
  let evaluation = 4 * data.test * state * (stages + 4) + fieldBytes;
  // Audits keep whole trajectories of their points: the solver's (float32) and the fan's reference (float64).
  const points = Math.min(AUDIT_POINTS, data.test);
  const trajectory = points * (trainSolve.steps + 1) * state;
  if (job.audit.fan) evaluation += trajectory * (4 + 8 + 8);
  if (job.audit.crossing) evaluation += trajectory * 4 * 2;

  const parts: JobMemoryParts = {
    base: BASE_BYTES,
    data: 4 * (data.train + data.test) * state * DATA_COPIES,
    params: 4 * paramCount * PARAM_COPIES,
    train,
    eval: evaluation,
  };
  const total = Math.min(
    JOB_LIMITS.memory,
    Object.values(parts).reduce((a, b) => a + b, 0),
  );
  return { total: Math.ceil(total), parts };
}

/**
 * The memory a job is admitted with: its own estimate, or the one it carries
 * when that is larger (planned by a newer estimator); never less than this
 * machine's estimate, so a job cannot claim to be small.
 */
export function jobMemory(job: Job, files: FieldFiles = {}): number {
  return Math.max(job.memory ?? 0, estimateJobMemory(job, files).total);
}
