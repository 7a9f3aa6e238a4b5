/**
 * executeJob — the one job path. The same function runs inside a piscina
 * worker thread (local runs) and inside `odeness worker` (NATS runs); only the
 * transport around it differs.
 *
 * A job: train one model with tfjs (or the compiled ort engine) → save it and
 * export its ONNX bundle into ctx.bundleDir → re-evaluate the bundle under the
 * job's test solvers with onnxruntime (the design's split: tfjs trains,
 * onnxruntime re-evaluates) → optional audits.
 */
import path from 'node:path';
import { OdenessError } from '../errors.js';
import { initBackend } from '../engines/backend.js';
import { saveModel } from '../models/io.js';
import { writeBundle } from '../onnx/bundle.js';
import { deviceAdapter } from '../onnx/runtime/adapters.js';
import { evaluate, type EvalData, type EvalRow } from '../onnx/evaluate.js';
import { parseSolverSpec, formatSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { trainRun, type TrainRunResult } from '../train/run.js';
import { openModelSource, type ModelSource } from '../onnx/source.js';
import { AUDIT_POINTS, crossingAudit, fanAudit } from '../audit/audits.js';
import { adaptFoldCheck } from '../audit/adapt-folds.js';
import { FAN_SERIES_POINTS } from '../formats/index.js';
import type { Device } from '../formats/common.js';
import { paperTestSolvers } from './paper.js';
import type { Job, JobContext, JobMetrics, JobOutcome } from './types.js';

/** Subdirectory of a job's bundle directory holding the tfjs model (for `odeness evaluate --model`). */
export const JOB_MODEL_DIR = 'model';

export async function executeJob(job: Job, ctx: JobContext): Promise<JobOutcome> {
  // Cancellation is cooperative (the thread is never terminated mid-job, see JobPool.run):
  // training checks the signal every iteration, and each later phase starts only if it is not set.
  const stopIfCancelled = () => {
    if (ctx.signal?.aborted) throw new OdenessError(`job ${job.id} was cancelled`);
  };
  const backend = await initBackend();
  // A job without a device runs on the CPU; the worker took it only if it can run its device.
  const device = job.device ?? 'cpu';
  const trained = await trainJob(job, ctx, device);
  const { run } = trained;
  stopIfCancelled();
  if (run.result.diverged) throw new OdenessError(`training diverged: ${run.result.diverged.message}`);
  await writeJobBundle(job, ctx, run);
  stopIfCancelled();
  const evaluated = await evaluateJob(job, ctx, run, device, stopIfCancelled);
  const adapter = await deviceAdapter(device);
  return { metrics: jobMetrics(job, trained, evaluated, { backend: backend.name, device, adapter }) };
}

/** A trained job: the run, its wall time and the last logged batch loss and accuracy. */
interface TrainedJob {
  readonly run: TrainRunResult;
  readonly trainMs: number;
  readonly last: { loss: number; accuracy: number } | undefined;
}

/** Train the job's model, reporting progress at most every 200 ms (and at the last iteration). */
async function trainJob(job: Job, ctx: JobContext, device: Device): Promise<TrainedJob> {
  const started = performance.now();
  let lastReport = 0;
  let last: { loss: number; accuracy: number } | undefined;
  const run = await trainRun(
    {
      dataset: job.dataset,
      field: job.field,
      solver: job.trainSolver,
      iterations: job.iterations,
      seed: job.seed,
      batchSize: job.batchSize,
      lr: job.lr,
      // Jobs planned before adaptStart existed started from Hairer's step (the trainer's default).
      adapt: job.adapt ? { start: job.adaptStart ?? 'hairer', ...(job.adaptFolds ? { folds: true } : {}) } : false,
      ...(job.solverLimits ? { solverLimits: job.solverLimits } : {}),
      engine: job.engine,
    },
    {
      signal: ctx.signal,
      device,
      ...(ctx.sessions ? { sessions: ctx.sessions } : {}),
      ...(ctx.dataset ? { dataset: ctx.dataset } : {}),
      foldCheck: adaptFoldCheck,
      onLog: (e) => (last = { loss: e.loss, accuracy: e.accuracy }),
      onIteration: (iteration) => {
        const now = performance.now();
        if (now - lastReport < 200 && iteration !== job.iterations) return;
        lastReport = now;
        ctx.onProgress?.({
          iteration,
          iterations: job.iterations,
          ...(last ? { loss: last.loss, accuracy: last.accuracy } : {}),
        });
      },
    },
  );
  return { run, trainMs: performance.now() - started, last };
}

/** The tfjs model (for `odeness evaluate --model`) and the ONNX bundle, into ctx.bundleDir. */
async function writeJobBundle(job: Job, ctx: JobContext, run: TrainRunResult): Promise<void> {
  await saveModel(path.join(ctx.bundleDir, JOB_MODEL_DIR), run.model, run.training);
  await writeBundle(run.model, ctx.bundleDir, {
    trainSolver: run.training.solver,
    dataset: run.dataset.spec,
    seed: job.seed,
    provenance: {
      jobId: job.id,
      initialSolver: job.trainSolver,
      adapt: job.adapt,
      iterations: run.result.iterations,
      engine: run.training.engine ?? 'tfjs',
    },
  });
}

/** The bundle's test rows (its own training solver first) and audits. */
interface EvaluatedJob {
  readonly trainSpec: SolverSpec;
  readonly rows: EvalRow[];
  readonly evalMs: number;
  readonly audits: JobMetrics['audits'];
}

/** Evaluate the bundle just written under the training solver and the job's test solvers, then audit it. */
async function evaluateJob(
  job: Job,
  ctx: JobContext,
  run: TrainRunResult,
  device: Device,
  stopIfCancelled: () => void,
): Promise<EvaluatedJob> {
  const evalStart = performance.now();
  const test = run.dataset.test;
  const trainSpec = parseSolverSpec(run.training.solver, job.solverLimits);
  // "paper" (adaptation jobs) is resolved around the step training ended at, known only now.
  const testSpecs = [
    ...new Set(job.testSolvers.flatMap((t) => (t === 'paper' ? paperTestSolvers(run.training.solver) : [t]))),
  ];
  const specs = [trainSpec, ...testSpecs.map((s) => parseSolverSpec(s, job.solverLimits))];
  // The signal stops evaluation and audits at their next field call:
  // a cancelled job need not finish minutes of work first.
  // The bundle just written is what is evaluated and audited: the numbers belong to the files a reader gets.
  const source = await openModelSource({ bundle: ctx.bundleDir, device });
  try {
    const rows = await evaluate(source, test, specs, ctx.signal ? { signal: ctx.signal } : {});
    const evalMs = performance.now() - evalStart;
    if (job.audit.crossing || job.audit.fan) stopIfCancelled();
    const audits =
      job.audit.crossing || job.audit.fan ? await runAudits(job, source, test, trainSpec, ctx.signal) : undefined;
    return { trainSpec, rows, evalMs, audits };
  } finally {
    await source.release();
  }
}

/** The job's metrics record from its training and evaluation. */
function jobMetrics(
  job: Job,
  { run, trainMs, last }: TrainedJob,
  { trainSpec, rows, evalMs, audits }: EvaluatedJob,
  where: { backend: string; device: Device; adapter: Awaited<ReturnType<typeof deviceAdapter>> },
): JobMetrics {
  const [own, ...evals] = rows;
  const nfe = run.result.nfe;
  return {
    trainSolver: run.training.solver,
    initialSolver: job.trainSolver,
    trainAccuracy: own!.accuracy,
    trainNfe: own!.nfe,
    ...(last ? { finalLoss: last.loss, finalBatchAccuracy: last.accuracy } : {}),
    iterations: run.result.iterations,
    nfe: {
      forward: nfe.forward,
      backward: nfe.backward,
      checks: nfe.checks,
      total: nfe.forward + nfe.backward + nfe.checks,
    },
    evals,
    ...(job.adapt
      ? {
          adaptation: {
            decisions: run.result.adaptation.length,
            final: formatSolverSpec(trainSpec),
            trace: [...run.result.adaptation],
          },
        }
      : {}),
    backend: where.backend,
    engine: run.training.engine ?? 'tfjs',
    device: where.device,
    ...(where.adapter ? { adapter: where.adapter } : {}),
    trainMs,
    evalMs,
    classes: run.dataset.classes,
    ...(audits ? { audits } : {}),
  };
}

/** Every ⌈K/limit⌉-th index of 0..K, always with the last. */
function thinned(k1: number, limit: number): number[] {
  const stride = Math.max(1, Math.ceil((k1 - 1) / (limit - 1)));
  const idx: number[] = [];
  for (let k = 0; k < k1; k += stride) idx.push(k);
  if (idx.at(-1) !== k1 - 1) idx.push(k1 - 1);
  return idx;
}

async function runAudits(
  job: Job,
  source: ModelSource,
  test: EvalData,
  spec: SolverSpec,
  signal?: AbortSignal,
): Promise<NonNullable<JobMetrics['audits']>> {
  const run = signal ? { signal } : {};
  const n = Math.min(AUDIT_POINTS, test.n);
  const w = source.inputWidth;
  const data = { x: test.x.subarray(0, n * w), y: test.y.subarray(0, n), n };
  const out: NonNullable<JobMetrics['audits']> = {};
  if (job.audit.crossing) {
    const r = await crossingAudit(source, data, spec, run);
    const ref = r.refinement;
    out.crossing = {
      solver: r.solver,
      points: n,
      d: r.d,
      crossings: r.crossings,
      touchingPairs: r.touchingPairs,
      pairsChecked: r.pairsChecked,
      firstStep: r.firstStep,
      projected: r.projected,
      note: r.note,
      ...(r.fold ? { folded: r.fold.folded, foldStates: r.fold.states, minDet: r.fold.minDet } : {}),
      ...(ref
        ? {
            refinement: {
              levels: ref.levels,
              persistentPairs: ref.persistentPairs,
              artefactPairs: ref.artefactPairs,
              unresolvedPairs: ref.unresolvedPairs,
              notRefinedPairs: ref.notRefinedPairs,
            },
          }
        : {}),
      verdict: { ...r.verdict, proofs: [...r.verdict.proofs] },
    };
  }
  if (job.audit.fan) {
    const r = await fanAudit(source, data, spec, undefined, run);
    const idx = thinned(r.times.length, FAN_SERIES_POINTS);
    out.fan = {
      solver: r.solver,
      reference: r.reference,
      points: n,
      final: {
        mean: r.final.mean,
        max: r.final.max,
        perClass: r.final.perClass.map((c) => ({
          label: c.label,
          count: c.count,
          mean: c.mean,
          std: c.std,
          max: c.max,
        })),
      },
      series: {
        times: idx.map((k) => r.times[k]!),
        perClass: r.perClass.map((c) => ({
          label: c.label,
          mean: idx.map((k) => c.mean[k]!),
          std: idx.map((k) => c.std[k]!),
        })),
      },
    };
  }
  return out;
}
