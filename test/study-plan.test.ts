import test from 'ava';
import { canonicalJson, JOB_FORMAT, jobId, planStudy } from '../src/study/plan.js';
import { paperTestSolvers } from '../src/study/paper.js';
import type { Job } from '../src/study/types.js';
import { cliResult, tempDir, writeStudy } from './helpers/procs.js';

const doc = {
  name: 'grid',
  datasets: ['spheres:dupont2019:dim=2', 'spheres:ott2021:dim=3'],
  field: 'mlp:width=32',
  grid: [
    { solver: 'euler', steps: [0.5, 0.25] },
    { solver: 'dopri5', tols: [1e-3] },
  ],
  adapt: 'both',
  seeds: [0, 7],
  iterations: 500,
  batchSize: 64,
  lr: 0.001,
  testSolvers: ['rk4:steps=20', 'dopri5:1e-6'],
  audits: { crossing: true },
};

/** The same object with keys in reverse order at every level. */
function reversed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversed);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reversed(x)]),
    );
  return v;
}

test('canonical JSON sorts keys at every level', (t) => {
  t.is(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }), '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  t.throws(() => canonicalJson({ a: NaN }));
});

test('plan expands datasets × fields × grid × seeds, plus one adaptation job per dataset × field × method × seed, with unique content-hash ids', (t) => {
  const plan = planStudy(doc);
  const grid = plan.jobs.filter((j) => !j.adapt);
  const adapt = plan.jobs.filter((j) => j.adapt);
  t.is(grid.length, 2 * 1 * 3 * 2);
  t.is(adapt.length, 2 * 1 * 2 * 2, 'adaptation ignores the grid point: one run per method, not one per grid point');
  t.deepEqual(
    adapt
      .filter((j) => j.seed === 0 && j.dataset === 'spheres:dupont2019:dim=2')
      .map((j) => [j.trainSolver, j.adaptStart]),
    [
      ['euler:steps=1', 'hairer'],
      ['dopri5:0.000001', 'spec'],
    ],
  );
  for (const j of grid) t.is(j.adaptStart, undefined, 'grid jobs keep their ids');
  t.is(new Set(plan.jobs.map((j) => j.id)).size, plan.jobs.length);
  for (const j of plan.jobs) {
    t.regex(j.id, /^[0-9a-f]{16}$/);
    t.is(jobId(j), j.id);
    t.deepEqual(j.testSolvers, ['rk4:steps=20', 'dopri5:0.000001']);
    t.deepEqual(j.audit, { crossing: true, fan: false });
    t.is(j.field, 'mlp:width=32,depth=2,act=tanh', 'specs are stored in canonical form');
  }
  t.deepEqual([...new Set(plan.jobs.map((j) => j.dataset))], ['spheres:dupont2019:dim=2', 'spheres:ott2021:dim=3']);
  t.deepEqual([...new Set(grid.map((j) => j.trainSolver))], ['euler:0.5', 'euler:0.25', 'dopri5:0.001']);
});

test('ids are stable: a golden id, and independent of key order and job position', (t) => {
  const job: Omit<Job, 'id'> = {
    dataset: 'spheres:dupont2019:dim=2',
    field: 'mlp:width=32,depth=2,act=tanh',
    trainSolver: 'euler:0.5',
    adapt: false,
    seed: 0,
    iterations: 500,
    batchSize: 64,
    lr: 0.001,
    testSolvers: ['rk4:steps=20'],
    audit: { crossing: false, fan: false },
    engine: 'auto',
  };
  // Changing this id means every stored result of every user is orphaned: do it on purpose only.
  // = sha256('odeness-job/1\n' + Python's json.dumps(job, sort_keys=True, separators=(',', ':'))), first 16 hex digits
  t.is(JOB_FORMAT, 'odeness-job/1');
  t.is(jobId(job), '8d5c4ab4449f474b');
  t.is(jobId(reversed(job) as Omit<Job, 'id'>), jobId(job));
  const a = planStudy(doc).jobs.map((j) => j.id);
  const b = planStudy(reversed(doc) as Record<string, unknown>).jobs.map((j) => j.id);
  t.deepEqual([...b].sort(), [...a].sort());
  // A job's id does not depend on what else is in the study.
  const single = planStudy({ ...doc, datasets: ['spheres:ott2021:dim=3'], seeds: [7] }).jobs.map((j) => j.id);
  for (const id of single) t.true(a.includes(id));
  // Nor on how its specs are spelled: equivalent dataset/field spellings plan to the same ids.
  const spelled = planStudy({
    ...doc,
    datasets: ['spheres:dupont2019,dim=2', 'spheres:ott2021:dim=3'],
    field: 'mlp:act=tanh,depth=2,width=32',
  }).jobs.map((j) => j.id);
  t.deepEqual(spelled, a);
});

test('paper test solvers: step-count factors for fixed steps, tolerance factors for adaptive', (t) => {
  t.deepEqual(paperTestSolvers('euler:0.1'), [
    'euler:steps=5',
    'euler:steps=8',
    'euler:steps=10',
    'euler:steps=15',
    'euler:steps=20',
    'midpoint:steps=5',
    'midpoint:steps=8',
    'midpoint:steps=10',
    'midpoint:steps=15',
    'midpoint:steps=20',
    'rk4:steps=5',
    'rk4:steps=8',
    'rk4:steps=10',
    'rk4:steps=15',
    'rk4:steps=20',
  ]);
  t.deepEqual(paperTestSolvers('dopri5:0.001'), ['dopri5:0.0001', 'dopri5:0.001', 'dopri5:0.01']);
  const plan = planStudy({ ...doc, testSolvers: 'paper' });
  t.deepEqual(plan.jobs.find((j) => j.trainSolver === 'euler:0.5')!.testSolvers[0], 'euler:steps=1');
});

test('CLI: study plan --json prints {"jobs": [...]}, the same ids from JSON with keys in another order and specs spelled differently', async (t) => {
  const dir = tempDir();
  const f1 = writeStudy(
    dir,
    'a.yaml',
    `
datasets: [spheres:dupont2019:dim=2]
field: mlp:width=32
grid:
  - {solver: euler, steps: [0.5, 0.25]}
  - {solver: dopri5, tols: [1e-3]}
seeds: 2
iterations: 300
`,
  );
  const f2 = writeStudy(
    dir,
    'b.json',
    JSON.stringify({
      iterations: 300,
      seeds: [0, 1],
      grid: [
        { tols: [0.001], solver: 'dopri5' },
        { steps: [0.25, 0.5], solver: 'euler' },
      ],
      field: 'mlp:depth=2,width=32',
      datasets: 'spheres:dupont2019,dim=2',
    }),
  );
  const [r1, r2] = await Promise.all([
    cliResult(['study', 'plan', f1, '--json']),
    cliResult(['study', 'plan', f2, '--json']),
  ]);
  t.is(r1.code, 0, r1.err);
  t.is(r2.code, 0, r2.err);
  const j1 = JSON.parse(r1.out) as { jobs: Job[] };
  const j2 = JSON.parse(r2.out) as { jobs: Job[] };
  t.is(j1.jobs.length, 6);
  t.deepEqual(j1.jobs.map((j) => j.id).sort(), j2.jobs.map((j) => j.id).sort());
  t.deepEqual(Object.keys(j1.jobs[0]!).sort(), [
    'adapt',
    'audit',
    'batchSize',
    'dataset',
    'engine',
    'field',
    'id',
    'iterations',
    'lr',
    'memory',
    'seed',
    'testSolvers',
    'trainSolver',
  ]);
  t.like(j2.jobs[0], { dataset: 'spheres:dupont2019:dim=2', field: 'mlp:width=32,depth=2,act=tanh' });
});

test('smoke-run overrides (--iterations, --batch-size, --test-points) change every job, are recorded in the plan and make another study hash', (t) => {
  const full = planStudy(doc);
  const smoke = planStudy(doc, { iterations: 2, batchSize: 8, testPoints: 20 });
  t.deepEqual(smoke.overrides, { iterations: 2, batchSize: 8, testPoints: 20 });
  t.is(full.overrides, undefined);
  t.not(smoke.studyHash, full.studyHash);
  t.is(smoke.jobs.length, full.jobs.length);
  for (const j of smoke.jobs) t.like(j, { iterations: 2, batchSize: 8 });
  t.deepEqual(
    [...new Set(smoke.jobs.map((j) => j.dataset))],
    ['spheres:dupont2019:dim=2,testN=20', 'spheres:ott2021:dim=3,testN=20'],
  );
  t.deepEqual(planStudy(doc, { iterations: undefined }).studyHash, full.studyHash, 'an absent override is no override');
  t.throws(() => planStudy({ ...doc, datasets: ['json:points.json'] }, { testPoints: 20 }), {
    message: /--test-points applies to spheres, mnist and cifar10/,
  });
});
