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
import { evaluateBundle } from '../onnx/evaluate.js';
import { parseSolverSpec, formatSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { trainRun } from '../train/run.js';
import { openModelSource } from '../audit/source.js';
import { crossingAudit, fanAudit } from '../audit/audits.js';
import type { CrossingMetrics, FanMetrics, Job, JobContext, JobOutcome } from './types.js';

/** Subdirectory of a job's bundle directory holding the tfjs model (for `odeness evaluate --model`). */
export const JOB_MODEL_DIR = 'model';

export async function executeJob(job: Job, ctx: JobContext): Promise<JobOutcome> {
  // Cancellation is cooperative (the thread is never terminated mid-job, see JobPool.run):
  // training checks the signal every iteration, and each later phase starts only if it is not set.
  const stopIfCancelled = () => {
    if (ctx.signal?.aborted) throw new OdenessError(`job ${job.id} was cancelled`);
  };
  const backend = await initBackend();
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
      adapt: job.adapt ? {} : false,
      engine: job.engine,
      ...(job.solverLimits ? { solverLimits: job.solverLimits } : {}),
    },
    {
      signal: ctx.signal,
      onLog: (e) => (last = { loss: e.loss, accuracy: e.accuracy }),
      onIteration: (iteration) => {
        const now = performance.now();
        if (now - lastReport < 200 && iteration !== job.iterations) return;
        lastReport = now;
        ctx.onProgress?.({ iteration, iterations: job.iterations, ...(last ? { loss: last.loss, accuracy: last.accuracy } : {}) });
      },
    },
  );
  stopIfCancelled();
  if (run.result.diverged) throw new OdenessError(`training diverged: ${run.result.diverged.message}`);
  const trainMs = performance.now() - started;

  await saveModel(path.join(ctx.bundleDir, JOB_MODEL_DIR), run.model, run.training);
  await writeBundle(run.model, ctx.bundleDir, {
    trainSolver: run.training.solver,
    dataset: run.dataset.spec,
    seed: job.seed,
    provenance: { jobId: job.id, initialSolver: job.trainSolver, adapt: job.adapt, iterations: run.result.iterations, engine: run.training.engine ?? 'tfjs' },
  });

  stopIfCancelled();
  const evalStart = performance.now();
  const test = run.dataset.test;
  const trainSpec = parseSolverSpec(run.training.solver, job.solverLimits);
  const specs = [trainSpec, ...job.testSolvers.map((s) => parseSolverSpec(s, job.solverLimits))];
  const rows = await evaluateBundle(ctx.bundleDir, { ...test, width: test.x.length / test.n }, specs);
  const [own, ...evals] = rows;
  const evalMs = performance.now() - evalStart;
  if (job.audit.crossing || job.audit.fan) stopIfCancelled();
  const audits = job.audit.crossing || job.audit.fan ? await runAudits(job, ctx.bundleDir, test, trainSpec) : undefined;
  const nfe = run.result.nfe;
  return {
    metrics: {
      trainSolver: run.training.solver,
      initialSolver: job.trainSolver,
      trainAccuracy: own!.accuracy,
      trainNfe: own!.nfe,
      finalLoss: last?.loss,
      finalBatchAccuracy: last?.accuracy,
      iterations: run.result.iterations,
      nfe: { forward: nfe.forward, backward: nfe.backward, checks: nfe.checks, total: nfe.forward + nfe.backward + nfe.checks },
      evals,
      adaptation: job.adapt ? { decisions: run.result.adaptation.length, final: formatSolverSpec(trainSpec), trace: run.result.adaptation } : undefined,
      backend: backend.name,
      engine: run.training.engine ?? 'tfjs',
      trainMs,
      evalMs,
      ...(audits ? { audits } : {}),
    },
  };
}

/** Audited points per job: enough for a clear signal, cheap enough for every job of a study. */
const AUDIT_POINTS = 500;

async function runAudits(job: Job, bundleDir: string, test: { x: Float32Array; y: Int32Array; n: number }, spec: SolverSpec) {
  const source = await openModelSource({ bundle: bundleDir });
  try {
    const n = Math.min(AUDIT_POINTS, test.n);
    const w = source.inputWidth;
    const data = { x: test.x.subarray(0, n * w), y: test.y.subarray(0, n), n };
    const out: { crossing?: CrossingMetrics; fan?: FanMetrics } = {};
    if (job.audit.crossing) {
      const r = await crossingAudit(source, data, spec);
      out.crossing = { solver: r.solver, points: n, crossings: r.crossings, pairsChecked: r.pairsChecked, firstStep: r.firstStep, projected: r.projected, note: r.note, ...(r.fold ? { folded: r.fold.folded, foldStates: r.fold.states } : {}) };
    }
    if (job.audit.fan) {
      const r = await fanAudit(source, data, spec);
      out.fan = { solver: r.solver, reference: r.reference, points: n, final: { mean: r.final.mean, max: r.final.max, perClass: r.final.perClass.map((c) => ({ label: c.label, count: c.count, mean: c.mean, std: c.std, max: c.max })) } };
    }
    return out;
  } finally {
    await source.release();
  }
}
