/**
 * A job's result: one line of results.jsonl, the value of the NATS result
 * bucket, what a piscina worker thread returns. `JobMetrics` is what
 * src/study/execute.ts measures; the report, `study status` and the tests
 * read it through this type.
 */
import * as z from 'zod';
import { count, DeviceSchema, finite, JOB_STATUSES, positiveInt, record, str } from './common.js';
import { JOB_LIMITS, JobSchema } from './job.js';

const num = finite();
const fraction = finite('an accuracy in [0, 1]').refine((v) => v >= 0 && v <= 1, {
  error: 'expected an accuracy in [0, 1]',
});

/** A trained model re-evaluated under one solver (onnx/evaluate.ts `BundleEvalRow`). */
export const EvalRowSchema = record({
  solver: str('a solver name'),
  /** h (or 1/steps) or rtol. */
  param: num,
  spec: str('a solver spec string'),
  /** Steps of a fixed-step solver over [t0, t1]. */
  steps: positiveInt().optional(),
  accuracy: fraction,
  /** Field evaluations per sample. */
  nfe: num,
  accepted: num,
  rejected: num,
});

export const ADAPT_ACTIONS = ['shrink', 'grow', 'keep', 'hold'] as const;

/** One decision of step-size / tolerance adaptation (train/adapt.ts). */
export const AdaptDecisionSchema = record({
  iteration: count(),
  before: str(),
  after: str(),
  /** h (fixed) or tol (adaptive), before and after. */
  paramBefore: num,
  paramAfter: num,
  trainAccuracy: fraction,
  testAccuracy: fraction,
  testSolver: str(),
  /** Accuracy of the tentatively enlarged step/tolerance, when one was tried. */
  trialAccuracy: fraction.optional(),
  /**
   * Adaptation with fold checks (beyond the paper): folded states of the training solver's step on the check batch, of
   * foldStates.
   */
  folded: count().optional(),
  foldStates: count().optional(),
  /** Folded states under the tentatively enlarged step, when one was tried. */
  trialFolded: count().optional(),
  action: z.enum(ADAPT_ACTIONS, { error: `expected one of ${ADAPT_ACTIONS.join(', ')}` }),
  trainNfe: num,
  testNfe: num,
});

const VERDICT_CONCLUSIONS = ['not-an-ode-flow', 'inconclusive', 'no-evidence'] as const;
const VERDICT_PROOFS = ['fold', 'order-swap', 'persistent-crossing'] as const;
const maybeCount = count().nullable();

/** The audit library's ODE-flow verdict (src/audit/verdict.ts) as a job records it. */
export const VerdictSchema = record({
  conclusion: z.enum(VERDICT_CONCLUSIONS),
  proofs: z.array(z.enum(VERDICT_PROOFS)).max(VERDICT_PROOFS.length),
  evidence: record({
    crossings: count(),
    projected: z.boolean(),
    orderSwaps: maybeCount,
    persistent: maybeCount,
    artefacts: maybeCount,
    unresolved: maybeCount,
    notRefined: maybeCount,
    folded: maybeCount,
    foldStates: maybeCount,
    minDet: z.number().nullable(),
  }),
  text: str(),
});

export const CrossingMetricsSchema = record({
  solver: str(),
  points: count(),
  /** State dimension (results written before it was recorded lack it). */
  d: positiveInt().optional(),
  crossings: count(),
  /** Pairs whose every crossing was a touch (1-D: a merge, not a swap). */
  touchingPairs: count().optional(),
  pairsChecked: count(),
  firstStep: count().nullable(),
  projected: z.boolean(),
  note: str(),
  folded: count().optional(),
  foldStates: count().optional(),
  minDet: z.number().optional(),
  /** 2-D crossing pairs re-solved finely: persistent (proof), artefacts, unresolved, not refined. */
  refinement: record({
    levels: z.array(positiveInt()).max(16),
    persistentPairs: count(),
    artefactPairs: count(),
    unresolvedPairs: count(),
    notRefinedPairs: count(),
  }).optional(),
  /** The verdict the audit reached (absent in results written before it was recorded). */
  verdict: VerdictSchema.optional(),
});

/** Most time points of a stored fan series (adaptive solvers may take many steps; the job thins them). */
export const FAN_SERIES_POINTS = 65;

const errorSummary = { mean: num, std: num, max: num };

export const FanMetricsSchema = record({
  solver: str(),
  reference: str(),
  points: count(),
  final: record({
    mean: num,
    max: num,
    perClass: z.array(record({ label: count(), count: count(), ...errorSummary })),
  }),
  /** Global error over t per class (mean and std over the class's points), at most FAN_SERIES_POINTS times. */
  series: record({
    times: z.array(num).max(FAN_SERIES_POINTS),
    perClass: z.array(
      record({ label: count(), mean: z.array(num).max(FAN_SERIES_POINTS), std: z.array(num).max(FAN_SERIES_POINTS) }),
    ),
  }).optional(),
});

export const JobMetricsSchema = record({
  /** Training solver at the end of training (after adaptation). */
  trainSolver: str(),
  /** Solver training started with (the job's). */
  initialSolver: str(),
  /** Test accuracy under the training solver, and its NFE per sample. */
  trainAccuracy: fraction,
  trainNfe: num,
  finalLoss: num.optional(),
  finalBatchAccuracy: fraction.optional(),
  iterations: count(),
  nfe: record({ forward: num, backward: num, checks: num, total: num }),
  /** The job's test solvers, in its order. */
  evals: z.array(EvalRowSchema),
  adaptation: record({ decisions: count(), final: str(), trace: z.array(AdaptDecisionSchema) }).optional(),
  backend: str(),
  engine: str(),
  /** Where the job's sessions ran, and the adapter (CPU model, GPU name) behind it; absent in older results. */
  device: DeviceSchema.optional(),
  adapter: str().optional(),
  trainMs: num,
  evalMs: num,
  /** Classes of the task (chance accuracy is 1/classes: the report's chance rule). */
  classes: count().optional(),
  audits: record({ crossing: CrossingMetricsSchema.optional(), fan: FanMetricsSchema.optional() }).optional(),
});

export const TimingsSchema = record({ startedAt: str('an ISO time'), finishedAt: str('an ISO time'), ms: num });

export const JobResultSchema = record({
  id: str('a job id'),
  status: z.enum(JOB_STATUSES, { error: `expected one of ${JOB_STATUSES.join(', ')}` }),
  job: JobSchema,
  metrics: JobMetricsSchema.optional(),
  error: str('an error message').optional(),
  timings: TimingsSchema,
  /** Who ran it: `local/<host>/<pid>/t<thread>` or `nats/<host>/<pid>/<slot>`. */
  worker: str('a worker name'),
  /** 1 for the first run of a job id; a `--retry-failed` rerun counts up. */
  attempt: positiveInt('an attempt number, a positive integer', JOB_LIMITS.attempt),
}).superRefine((r, ctx) => {
  if (r.job.id !== r.id)
    ctx.addIssue({
      code: 'custom',
      message: `expected the job id of the result (${r.id})`,
      input: r.job.id,
      path: ['job', 'id'],
    });
  if (r.status === 'failed' && r.error === undefined)
    ctx.addIssue({
      code: 'custom',
      message: 'expected an error message for a failed job',
      path: ['error'],
      params: { absent: true },
    });
  if (r.status === 'done' && r.metrics === undefined)
    ctx.addIssue({
      code: 'custom',
      message: 'expected the metrics of a done job',
      path: ['metrics'],
      params: { absent: true },
    });
});

export type EvalRow = z.output<typeof EvalRowSchema>;
export type AdaptDecision = z.output<typeof AdaptDecisionSchema>;
export type CrossingMetrics = z.output<typeof CrossingMetricsSchema>;
export type FanMetrics = z.output<typeof FanMetricsSchema>;
export type RecordedVerdict = z.output<typeof VerdictSchema>;
export type JobMetrics = z.output<typeof JobMetricsSchema>;
export type JobResult = z.output<typeof JobResultSchema>;

/** A results.jsonl line is one JobResult as JSON. */
export const ResultsLineSchema = JobResultSchema;
