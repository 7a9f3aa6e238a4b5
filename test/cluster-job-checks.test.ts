// Whatever the planner emits, a NATS worker accepts: every job of every example study (grid and
// adaptation, full size and smoke-sized) passes the worker's checks, and a forged one still fails.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { checkJobBounds, checkJobId, JobRefused } from '../src/cluster/job-checks.js';
import { fieldKind } from '../src/models/fields/index.js';
import { jobId, studyFieldFiles } from '../src/study/plan.js';
import { planStudy } from '../src/study/plan.js';

const examples = readdirSync('examples')
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `examples/${f}`);

for (const file of examples) {
  for (const overrides of [{}, { iterations: 2, batchSize: 16, testPoints: 5 }]) {
    test(`every job of ${file} ${Object.keys(overrides).length ? '(smoke)' : '(full)'} passes the worker's checks`, (t) => {
      const { jobs, spec } = planStudy(file, overrides);
      // A worker checks an onnx: job against the file it fetched by hash: here the study's own.
      const files = studyFieldFiles(spec);
      t.true(jobs.length > 0);
      const refused: string[] = [];
      for (const job of jobs) {
        try {
          checkJobId(job);
          checkJobBounds(job, files);
        } catch (e) {
          refused.push(`${job.id} (${job.trainSolver}${job.adapt ? ', adapt' : ''}): ${(e as Error).message}`);
        }
      }
      t.deepEqual(refused, []);
      if (file.includes('spheres') || file.includes('mnist'))
        t.true(
          jobs.some((j) => j.adapt),
          'the example has adaptation jobs',
        );
    });
  }
}

test('a forged test solver in an adaptation job is still refused', (t) => {
  const job = planStudy('examples/quick-spheres.yaml').jobs.find((j) => j.adapt)!;
  const forged = { ...job, testSolvers: ['paper', 'rk4:steps=999999999'] };
  const e = t.throws(() => checkJobBounds(forged), { instanceOf: JobRefused });
  t.regex(e!.message, /steps|ceiling|limit/i);
  t.throws(() => checkJobBounds({ ...job, testSolvers: ['papers'] }), {
    instanceOf: JobRefused,
    message: /unknown solver "papers"/,
  });
});

test("field bounds are the field registry's: its largest width passes, one more is refused with the registry's message", (t) => {
  const job = planStudy('examples/quick-spheres.yaml').jobs.find((j) => !j.adapt)!;
  const width = fieldKind('mlp').options.find((o) => o.name === 'width')!;
  t.is(width.type, 'int');
  const max = (width as { max: number }).max;
  const at = (field: string) => {
    const { id: _old, ...rest } = { ...job, field };
    return { ...rest, id: jobId(rest) };
  };
  t.notThrows(() => checkJobBounds(at(`mlp:width=${max}`)));
  t.throws(() => checkJobBounds(at(`mlp:width=${max + 1}`)), {
    instanceOf: JobRefused,
    message: new RegExp(`width must be between 1 and ${max}`),
  });
});

test('only an adaptation job may keep the "paper" keyword', (t) => {
  const job = planStudy('examples/quick-spheres.yaml').jobs.find((j) => !j.adapt)!;
  t.throws(() => checkJobBounds({ ...job, testSolvers: ['paper'] }), {
    instanceOf: JobRefused,
    message: /only by adaptation jobs/,
  });
});

test('an onnx: field is read only from the copy the worker fetched by its hash, never from a path in the job', (t) => {
  const job = planStudy('examples/quick-spheres.yaml').jobs[0]!;
  const sha = 'a'.repeat(64);
  t.throws(() => checkJobBounds({ ...job, field: `onnx:/etc/passwd,sha256=${sha}` }, { [sha]: '/nonexistent' }), {
    instanceOf: JobRefused,
    message: /a job names its file by name and sha256, not by a path$/,
  });
  t.throws(() => checkJobBounds({ ...job, field: 'onnx:passwd' }), {
    instanceOf: JobRefused,
    message: /a job's onnx field needs sha256=<64 hex digits>$/,
  });
  t.throws(() => checkJobBounds({ ...job, field: `onnx:passwd,sha256=${sha}` }), {
    instanceOf: JobRefused,
    message: new RegExp(`field passwd \\(sha256 ${sha}\\): its file is not on this machine$`),
  });
});
