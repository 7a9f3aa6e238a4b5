/**
 * Peak resident memory of one real job against its estimate (src/study/job-memory.ts):
 * plans a study file, picks the first job matching the filters, runs it in this
 * process through the one job path (runJobToResult, as a NATS job process does)
 * and prints the estimate beside the process's peak RSS (getrusage maxRSS).
 * Run each job in a fresh process: the peak is the process's high-water mark.
 *
 *   node dist/scripts/job-memory.js STUDY.yaml [--dataset dim=900] [--solver euler:steps=128]
 *       [--adapt] [--iterations N] [--batch N] [--test-points N] [--json]
 */
import '../src/no-telemetry.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planStudy } from '../src/study/plan.js';
import { runJobToResult } from '../src/study/job.js';
import { estimateJobMemory } from '../src/study/job-memory.js';
import { createTrainSessionCache } from '../src/train/ort-engine.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string): number | undefined => (opt(name) === undefined ? undefined : Number(opt(name)));
const MiB = 2 ** 20;

async function main(): Promise<void> {
  const file = args[0];
  if (!file) throw new Error('usage: job-memory STUDY.yaml [--dataset S] [--solver S] [--adapt] [--iterations N] …');
  const plan = planStudy(file, {
    ...(num('iterations') !== undefined ? { iterations: num('iterations')! } : {}),
    ...(num('batch') !== undefined ? { batchSize: num('batch')! } : {}),
    ...(num('test-points') !== undefined ? { testPoints: num('test-points')! } : {}),
  });
  const job = plan.jobs.find(
    (j) =>
      j.dataset.includes(opt('dataset') ?? '') &&
      j.trainSolver.includes(opt('solver') ?? '') &&
      j.adapt === args.includes('--adapt'),
  );
  if (!job) throw new Error('no job of the plan matches the filters');
  const estimate = estimateJobMemory(job);
  const dir = mkdtempSync(join(tmpdir(), 'odeness-job-memory-'));
  const started = Date.now();
  try {
    const result = await runJobToResult(job, {
      bundleDir: dir,
      attempt: 1,
      worker: 'job-memory',
      sessions: createTrainSessionCache(),
    });
    const peak = process.resourceUsage().maxRSS * 1024;
    const row = {
      dataset: job.dataset,
      field: job.field,
      solver: job.trainSolver,
      batch: job.batchSize,
      iterations: job.iterations,
      status: result.status,
      ...(result.error ? { error: result.error } : {}),
      seconds: (Date.now() - started) / 1000,
      estimateMiB: Math.round(estimate.total / MiB),
      parts: Object.fromEntries(Object.entries(estimate.parts).map(([k, v]) => [k, Math.round(v / MiB)])),
      peakMiB: Math.round(peak / MiB),
      ratio: Number((estimate.total / peak).toFixed(2)),
    };
    console.log(args.includes('--json') ? JSON.stringify(row) : row);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
