import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../src/errors.js';
import { loadStudyFile, StudyFileError, validateStudy } from '../src/study/schema.js';
import { cliResult, tempDir, writeStudy } from './helpers/procs.js';
import { planSpec } from '../src/study/plan.js';

const base = {
  datasets: ['spheres:dupont2019:dim=2'],
  field: 'mlp:width=32',
  grid: [
    { solver: 'euler', steps: [0.5, 0.25, 0.1] },
    { solver: 'dopri5', tols: [1e-3, 1e-5] },
  ],
};

function fails(t: import('ava').ExecutionContext, doc: Record<string, unknown>, path: string, re: RegExp): void {
  const e = t.throws(() => validateStudy(doc, 'study.yaml'), { instanceOf: StudyFileError });
  t.is(e!.path, path);
  t.true(e!.message.startsWith(`study.yaml: ${path}: `), e!.message);
  t.regex(e!.message, re);
}

test('a valid study is normalised', (t) => {
  const s = validateStudy({
    ...base,
    grid: [...base.grid, { solver: 'rk4', stepCounts: [10] }, 'midpoint:0.1'],
    seeds: 3,
    adapt: 'both',
    audits: ['crossing'],
  });
  t.deepEqual(s.datasets, ['spheres:dupont2019:dim=2']);
  t.deepEqual(s.fields, ['mlp:width=32,depth=2,act=tanh'], 'field specs are canonicalised by the real parser');
  t.deepEqual(
    s.grid.map((g) => g.specs),
    [['euler:0.5', 'euler:0.25', 'euler:0.1'], ['dopri5:0.001', 'dopri5:0.00001'], ['rk4:steps=10'], ['midpoint:0.1']],
  );
  t.deepEqual(s.seeds, [0, 1, 2]);
  t.deepEqual(s.adapt, [false, true]);
  t.deepEqual(s.audits, { crossing: true, fan: false });
  t.is(s.testSolvers, 'paper');
  t.is(s.engine, 'auto');
});

test('bad step size names the grid path, the value and the allowed range', (t) => {
  fails(
    t,
    { ...base, grid: [...base.grid, { solver: 'rk4', steps: [-0.1] }] },
    'grid[2].steps[0]',
    /step size h, a number in \(0, 1\], got -0\.1$/,
  );
  fails(t, { ...base, grid: [{ solver: 'euler', steps: [0.5, 'x'] }] }, 'grid[0].steps[1]', /got "x"/);
  fails(t, { ...base, grid: [{ solver: 'euler', steps: [2] }] }, 'grid[0].steps[0]', /\(0, 1\]/);
  fails(
    t,
    { ...base, grid: [{ solver: 'rk4', stepCounts: [2.5] }] },
    'grid[0].stepCounts[0]',
    /positive integer, got 2\.5/,
  );
});

test('solver kind mismatches and unknown solvers', (t) => {
  fails(t, { ...base, grid: [{ solver: 'euler', tols: [1e-3] }] }, 'grid[0].tols', /fixed-step solver: give "steps"/);
  fails(t, { ...base, grid: [{ solver: 'dopri5', steps: [0.1] }] }, 'grid[0].steps', /dopri5 is adaptive: give "tols"/);
  fails(
    t,
    { ...base, grid: [{ solver: 'rk5', steps: [0.1] }] },
    'grid[0].solver',
    /one of euler, .*dopri5.*, got "rk5"/,
  );
  fails(t, { ...base, grid: [{ solver: 'dopri5', tols: [2] }] }, 'grid[0].tols[0]', /\(0, 1\)/);
  fails(t, { ...base, grid: [{ solver: 'euler' }] }, 'grid[0].steps', /step sizes \("steps"\) or step counts/);
  fails(t, { ...base, grid: ['euler'] }, 'grid[0]', /invalid solver spec .*missing value/);
  fails(t, { ...base, grid: [] }, 'grid', /at least one/);
});

test('unknown keys are errors at every level', (t) => {
  fails(
    t,
    { ...base, iteration: 10 },
    'iteration',
    /unknown key "iteration"; allowed keys: name, datasets, .*audits, got 10/,
  );
  fails(
    t,
    { ...base, grid: [{ solver: 'euler', steps: [0.1], tol: 1 }] },
    'grid[0].tol',
    /unknown key "tol"; allowed keys: solver, steps, stepCounts, tols/,
  );
  fails(t, { ...base, audits: { crossing: true, fans: true } }, 'audits.fans', /unknown key "fans"/);
});

test('dataset and field specs are checked by the real parsers, errors at the item path', (t) => {
  fails(
    t,
    { ...base, datasets: ['spheres:dupont2019:dim=2', 'spheres:a'] },
    'datasets[1]',
    /dataset spec "spheres:a": unknown spheres preset "a"; expected one of ott2021, dupont2019/,
  );
  fails(
    t,
    { ...base, datasets: 'fail:b' },
    'datasets',
    /unknown dataset "fail"; expected one of spheres, mnist, cifar10, json/,
  );
  fails(t, { ...base, datasets: ['spheres:dupont2019'] }, 'datasets[0]', /missing dim/);
  fails(t, { ...base, datasets: ['spheres:dupont2019:dim=2,n=0'] }, 'datasets[0]', /n must be a positive integer/);
  fails(
    t,
    { ...base, field: 'mlp:wide=3' },
    'field',
    /field spec "mlp:wide=3": unknown option "wide"; expected width, depth/,
  );
  fails(
    t,
    { ...base, field: ['mlp:width=8', 'conv:x'] },
    'field[1]',
    /unknown field "conv"; expected one of mlp, conv1d, conv2d/,
  );
  // Equivalent spellings canonicalise to one spec (so they plan to the same job ids); duplicates are dropped.
  const s = validateStudy({
    ...base,
    datasets: ['spheres:dupont2019,dim=2', 'spheres:dupont2019:dim=2', 'spheres:ott2021:dim=3:testN=50'],
    field: ['mlp:width=32', 'mlp:act=tanh,width=32,depth=2'],
  });
  t.deepEqual(s.datasets, ['spheres:dupont2019:dim=2', 'spheres:ott2021:dim=3,testN=50']);
  t.deepEqual(s.fields, ['mlp:width=32,depth=2,act=tanh']);
  // A dataset that parses but cannot be loaded (missing file) is valid here: it fails when its job runs.
  t.deepEqual(validateStudy({ ...base, datasets: 'json:/nonexistent/fail.json' }).datasets, [
    'json:/nonexistent/fail.json',
  ]);
  t.deepEqual(
    validateStudy({ ...base, datasets: 'json:/data/my points.json' }).datasets,
    ['json:/data/my points.json'],
    'paths may hold spaces',
  );
});

test('other fields: seeds, adapt, engine, testSolvers, audits, numbers, required keys', (t) => {
  fails(t, { ...base, seeds: [0, -1] }, 'seeds[1]', /non-negative integer, got -1/);
  fails(t, { ...base, seeds: [1, 1] }, 'seeds[1]', /each seed once/);
  fails(t, { ...base, seeds: 0 }, 'seeds', /seed count/);
  fails(t, { ...base, adapt: 'maybe' }, 'adapt', /false, true or "both", got "maybe"/);
  fails(t, { ...base, engine: 'gpu' }, 'engine', /one of auto, tfjs, ort, got "gpu"/);
  fails(t, { ...base, testSolvers: ['rk4:0.1', 'rk4'] }, 'testSolvers[1]', /invalid solver spec/);
  fails(t, { ...base, testSolvers: 'all' }, 'testSolvers', /"paper" or a list/);
  fails(t, { ...base, audits: ['crossing', 'fann'] }, 'audits[1]', /one of crossing, fan, got "fann"/);
  fails(t, { ...base, audits: { fan: 'yes' } }, 'audits.fan', /true or false/);
  fails(t, { ...base, iterations: 0 }, 'iterations', /positive integer, got 0/);
  fails(t, { ...base, lr: -1 }, 'lr', /learning rate/);
  fails(t, { field: 'mlp', grid: base.grid }, 'datasets', /required/);
  fails(
    t,
    { ...base, datasets: ['spheres:dupont2019:dim=2', 'has space'] },
    'datasets[1]',
    /unknown dataset "has space"/,
  );
  fails(t, { ...base, datasets: ['spheres:dupont2019:dim=2', ' '] }, 'datasets[1]', /dataset spec string/);
  fails(t, { ...base, field: 7 }, 'field', /field spec string like "mlp:width=32", got 7/);
  const e = t.throws(() => validateStudy([1, 2], 'x.yaml'), { instanceOf: StudyFileError });
  t.regex(e!.message, /^x\.yaml: \(top level\): expected a mapping/);
});

test('files: YAML and JSON, syntax errors name the file', (t) => {
  const dir = tempDir();
  const yaml = writeStudy(
    dir,
    's.yaml',
    'datasets: spheres:dupont2019:dim=2,n=256\nfield: mlp:width=8\ngrid:\n  - {solver: dopri5, tols: [1e-3, 1e-5]}\n',
  );
  const spec = loadStudyFile(yaml);
  t.deepEqual(spec.grid[0]!.specs, ['dopri5:0.001', 'dopri5:0.00001']);
  t.deepEqual(spec.datasets, ['spheres:dupont2019:dim=2,n=256'], 'a plain YAML scalar may hold commas');
  const json = writeStudy(dir, 's.json', JSON.stringify(base));
  t.is(loadStudyFile(json).grid.length, 2);
  const bad = writeStudy(dir, 'bad.yaml', 'datasets: [a\nfield: x\n');
  t.throws(() => loadStudyFile(bad), { instanceOf: FileFormatError, message: /bad\.yaml: not valid YAML/ });
  const dup = writeStudy(dir, 'dup.yaml', 'datasets: a\ndatasets: b\n');
  t.throws(() => loadStudyFile(dup), { message: /dup\.yaml: not valid YAML/ });
  t.throws(() => loadStudyFile(join(dir, 'missing.yaml')), {
    message: /missing\.yaml: cannot read the study file \(ENOENT\)/,
  });
});

test('CLI: a schema violation is one line naming file, path and value; unknown flags are errors', async (t) => {
  const dir = tempDir();
  const file = writeStudy(
    dir,
    'bad.yaml',
    'datasets: [spheres:dupont2019:dim=2]\nfield: mlp:width=8\ngrid:\n  - {solver: euler, steps: [0.5]}\n  - {solver: rk4, steps: [0.1]}\n  - {solver: rk4, steps: [-0.1]}\n',
  );
  const r = await cliResult(['study', 'plan', file]);
  t.is(r.code, 1);
  t.is(r.err, `odeness: error: ${file}: grid[2].steps[0]: expected a step size h, a number in (0, 1], got -0.1\n`);
  const u = await cliResult(['study', 'plan', file, '--bogus']);
  t.not(u.code, 0);
  t.regex(u.err, /unknown option '--bogus'/);
  const w = await cliResult(['study', 'run', file, '--out', join(dir, 'o'), '--workers', 'zero']);
  t.not(w.code, 0);
  t.regex(w.err, /--workers must be a positive integer/);
  const ds = writeStudy(
    dir,
    'ds.yaml',
    'datasets:\n  - spheres:dupont2019:dim=2\n  - fail:b\nfield: mlp:width=8\ngrid: [euler:0.5]\n',
  );
  const d = await cliResult(['study', 'run', ds, '--out', join(dir, 'o')]);
  t.is(d.code, 1);
  t.regex(
    d.err,
    /^odeness: error: .*ds\.yaml: datasets\[1\]: dataset spec "fail:b": unknown dataset "fail"; .*, got "fail:b"\n$/,
  );
  t.false(existsSync(join(dir, 'o')), 'an invalid study touches no output directory');
});

test('testSolvers may mix "paper" with explicit specs', (t) => {
  const spec = validateStudy(
    {
      datasets: 'spheres:dupont2019:dim=2',
      field: 'mlp:width=8',
      grid: ['euler:0.5'],
      testSolvers: ['paper', 'dopri5:1e-6'],
    },
    's.yaml',
  );
  t.deepEqual(spec.testSolvers, ['paper', 'dopri5:0.000001']);
  const jobs = planSpec(spec).jobs;
  t.is(jobs[0]!.testSolvers.at(-1), 'dopri5:0.000001');
  t.true(jobs[0]!.testSolvers.includes('rk4:steps=4'), 'the paper set around euler:0.5 (2 steps × 2)');
});

test("solver bounds: every grid and test spec is checked against the study's solverLimits (defaults when absent)", (t) => {
  fails(
    t,
    { ...base, grid: [{ solver: 'euler', steps: [0.5, 1e-6] }] },
    'grid[0].steps[1]',
    /invalid solver spec \(solver spec "euler:0.000001": step size 0.000001 means 1000000 steps .*limit of 100000 steps/,
  );
  fails(t, { ...base, grid: [{ solver: 'rk4', stepCounts: 1e9 }] }, 'grid[0].stepCounts', /limit of 100000 steps/);
  fails(
    t,
    { ...base, grid: [{ solver: 'dopri5', tols: [1e-3, 1e-12] }] },
    'grid[0].tols[1]',
    /below the tolerance floor 1e-10/,
  );
  fails(
    t,
    { ...base, testSolvers: ['rk4:0.1', 'euler:1e-12'] },
    'testSolvers[1]',
    /limit of 100000 steps \(raise the limit with solverLimits in a study file.*\)\), got "euler:1e-12"$/,
  );
  fails(
    t,
    { ...base, solverLimits: { maxSteps: 0 } },
    'solverLimits.maxSteps',
    /step count ceiling, a positive integer, got 0/,
  );
  fails(t, { ...base, solverLimits: { maxSteps: 1e12 } }, 'solverLimits.maxSteps', /at most 10000000 steps/);
  fails(t, { ...base, solverLimits: { minTol: 0 } }, 'solverLimits.minTol', /tolerance floor/);
  fails(
    t,
    { ...base, solverLimits: { maxStep: 5 } },
    'solverLimits.maxStep',
    /unknown key "maxStep"; allowed keys: maxSteps, minTol/,
  );
  // Raised per study: accepted, and every job carries the limits its specs were checked against.
  const s = validateStudy({
    ...base,
    grid: [
      { solver: 'euler', steps: [1e-6] },
      { solver: 'dopri5', tols: [1e-12] },
    ],
    testSolvers: ['rk4:0.5'],
    solverLimits: { maxSteps: 2_000_000, minTol: 1e-13 },
  });
  t.deepEqual(s.solverLimits, { maxSteps: 2_000_000, minTol: 1e-13 });
  t.deepEqual(
    s.grid.map((g) => g.specs),
    [['euler:0.000001'], ['dopri5:1e-12']],
  );
  const jobs = planSpec(s).jobs;
  t.true(jobs.every((j) => j.solverLimits?.maxSteps === 2_000_000));
  // Without the key, jobs have no solverLimits field, so their ids do not change.
  t.false('solverLimits' in planSpec(validateStudy(base)).jobs[0]!);
});
