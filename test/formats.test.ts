import test from 'ava';
import {
  BundleManifestSchema,
  describeIssue,
  JOB_LIMITS,
  JobMetricsSchema,
  JobSchema,
  ModelFileSchema,
  parseWith,
  tokenizeSpec,
  type FormatIssue,
} from '../src/formats/index.js';
import { parseJob, validateJob, validateResult } from '../src/study/records.js';
import { planStudy } from '../src/study/plan.js';
import { sampleMetrics } from './helpers/metrics.js';

const plan = planStudy({
  datasets: 'spheres:dupont2019:dim=2',
  field: 'mlp:width=8',
  grid: ['euler:0.5'],
  seeds: 2,
  iterations: 10,
});
const job = plan.jobs[0]!;

/** The first issue parseWith reports for `raw`. */
function issueOf(schema: Parameters<typeof parseWith>[0], raw: unknown): FormatIssue {
  let found: FormatIssue | undefined;
  try {
    parseWith(schema, raw, (i) => ((found = i), new Error(describeIssue(i))));
  } catch {
    /* the Error made above */
  }
  if (!found) throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
  return found;
}

test('a planned job parses; its id must be the content hash of the rest', (t) => {
  t.deepEqual(parseJob(structuredClone(job)), job);
  const forged = { ...structuredClone(job), seed: 7 };
  t.throws(() => parseJob(forged), {
    message: new RegExp(`^job\\.id: expected the content hash of the job \\([0-9a-f]{16}\\), got "${job.id}"$`),
  });
  t.notThrows(() => validateJob(forged), 'validateJob checks the format only (plan.json rows keep their ids)');
});

test('every size a job carries is bounded before anything is allocated', (t) => {
  const bad: [Record<string, unknown>, string, RegExp][] = [
    [{ iterations: JOB_LIMITS.iterations + 1 }, 'job.iterations', /iteration count, a positive integer/],
    [{ batchSize: 1e9 }, 'job.batchSize', /batch size/],
    [{ batchSize: 0 }, 'job.batchSize', /batch size/],
    [{ lr: 2 }, 'job.lr', /learning rate in \(0, 1\]/],
    [{ lr: Number.NaN }, 'job.lr', /learning rate/],
    [
      { testSolvers: Array.from({ length: JOB_LIMITS.testSolvers + 1 }, () => 'rk4:0.1') },
      'job.testSolvers',
      /at most 256 test solvers/,
    ],
    [{ dataset: 'x'.repeat(JOB_LIMITS.specLength + 1) }, 'job.dataset', /at most 4096 characters/],
    [{ seed: -1 }, 'job.seed', /non-negative integer/],
    [{ engine: 'gpu' }, 'job.engine', /one of auto, tfjs, ort/],
    [{ extra: 1 }, 'job.extra', /unknown key "extra"; allowed keys: id, dataset/],
    [{ solverLimits: { maxSteps: 1e12, minTol: 1e-10 } }, 'job.solverLimits.maxSteps', /step count ceiling/],
  ];
  for (const [patch, path, re] of bad) {
    const e = t.throws(
      () => validateJob({ ...structuredClone(job), ...patch }),
      undefined,
      JSON.stringify(patch).slice(0, 60),
    );
    t.true(e!.message.startsWith(`${path}: `), e!.message);
    t.regex(e!.message, re);
  }
});

test('job results carry typed metrics; unknown metric keys and bad values are named', (t) => {
  const now = new Date().toISOString();
  const result = {
    id: job.id,
    job,
    status: 'done',
    metrics: sampleMetrics(),
    timings: { startedAt: now, finishedAt: now, ms: 3 },
    worker: 'w',
    attempt: 1,
  };
  t.deepEqual(validateResult(structuredClone(result)), result);
  t.throws(() => validateResult({ ...result, metrics: { ...sampleMetrics(), acc: 1 } }), {
    message: /^result\.metrics\.acc: unknown key "acc"; allowed keys: trainSolver, /,
  });
  t.throws(() => validateResult({ ...result, metrics: { ...sampleMetrics(), trainAccuracy: 1.5 } }), {
    message: 'result.metrics.trainAccuracy: expected an accuracy in [0, 1], got 1.5',
  });
  t.throws(() => validateResult({ ...result, metrics: undefined }), {
    message: /^result\.metrics: expected the metrics of a done job, got nothing$/,
  });
  t.throws(() => validateResult({ ...result, status: 'failed', metrics: undefined }), {
    message: /^result\.error: expected an error message for a failed job/,
  });
  t.throws(() => validateResult({ ...result, id: plan.jobs[1]!.id }), {
    message: /^result\.job\.id: expected the job id of the result/,
  });
  const e = issueOf(JobMetricsSchema, { ...sampleMetrics(), evals: [{ ...sampleMetrics().evals[0]!, nfe: 'many' }] });
  t.is(e.path, 'evals[0].nfe');
  t.is(e.value, 'many');
});

test('manifest and model.json: path, value found and what is allowed', (t) => {
  const m = issueOf(BundleManifestSchema, { formatVersion: 1, stateShape: [2, 0], classes: 2 });
  t.is(describeIssue(m), 'stateShape[1]: expected a positive integer, got 0');
  t.is(
    describeIssue(issueOf(BundleManifestSchema, { formatVersion: 1, stateShape: [2], classes: 2, t0: 1 })),
    't1: expected an end time different from t0 (1), got 1',
  );
  t.is(
    describeIssue(issueOf(BundleManifestSchema, { formatVersion: 2, stateShape: [2], classes: 2 })),
    'formatVersion: expected formatVersion 1, got 2',
  );
  t.is(
    describeIssue(issueOf(ModelFileSchema, { formatVersion: 1, kind: 'model' })),
    'kind: expected "odeness-model", got "model"',
  );
  t.is(JobSchema.safeParse(job).success, true);
});

test('one tokenizer for solver, field and dataset specs', (t) => {
  t.deepEqual(tokenizeSpec(' dopri5: rtol=1e-5, atol=1e-7 '), {
    head: 'dopri5',
    body: ' rtol=1e-5, atol=1e-7',
    items: [
      { key: 'rtol', value: '1e-5', text: 'rtol=1e-5' },
      { key: 'atol', value: '1e-7', text: 'atol=1e-7' },
    ],
  });
  t.deepEqual(
    tokenizeSpec('mlp:width=8,time').items.map((i) => [i.key, i.value]),
    [
      ['width', '8'],
      [undefined, 'time'],
    ],
  );
  // Dataset specs: separators count only before key=, so paths keep ':' and ','.
  t.deepEqual(
    tokenizeSpec('json:/d/a:b,c.json:split=none,classes=3', { pathSafe: true }).items.map((i) => [i.key, i.value]),
    [
      [undefined, '/d/a:b,c.json'],
      ['split', 'none'],
      ['classes', '3'],
    ],
  );
  t.deepEqual(tokenizeSpec('euler').items, []);
});
