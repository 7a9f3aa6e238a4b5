import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { estimateWork, jobWork } from '../src/study/estimate.js';
import { planStudy } from '../src/study/plan.js';
import {
  calibrationKey,
  readCachedCost,
  readCachedTransport,
  transportKey,
  writeCachedCost,
  writeCachedTransport,
} from '../src/study/calibration-cache.js';
import {
  adaptCheckCalls,
  auditCalls,
  buildMs,
  callsMs,
  fitBuildCurve,
  REFERENCE_NFE_FLOOR,
} from '../src/study/price.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

// A study's work: training (fwd + bwd NFE × batch × iterations) and, after it, evaluation and audits
// (forward NFE × test points), which dominate a smoke run's few iterations.
const dataset = 'spheres:dupont2019:dim=2,n=64,testN=40';
const field = 'mlp:width=8';
const doc = {
  datasets: [dataset],
  field,
  grid: [{ solver: 'euler', stepCounts: [4] }],
  seeds: 1,
  iterations: 10,
  batchSize: 8,
  testSolvers: ['rk4:steps=2', 'euler:steps=8'],
};

// The wall-time tests price from a calibration written here (the cache is read per call): no measuring.
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-estimate-test-'));
process.env['ODENESS_CACHE_DIR'] = cache;
test.after.always(() => fs.rmSync(cache, { recursive: true, force: true }));
const cost = {
  msPerIteration: 2,
  msPerSampleNfe: 0.001,
  buildMs: 50,
  buildMsPerStage: 10,
  buildExponent: 1.5,
  jobOverheadMs: 300,
  msPerCall: 0.1,
  msPerRow: 0.01,
  referenceNfe: 1658,
  referenceNfePerStop: 0,
  referenceMsPerRow: 0.01,
  contention: 1,
  measuredAt: '2026-12-07T00:00:00Z',
};
const fullName = 'mlp:width=8,depth=2,act=tanh';
writeCachedCost(calibrationKey(dataset, fullName, 'fixed', 8), cost);
writeCachedTransport(transportKey('pool'), { msPerJob: 25, startupMs: 1500, measuredAt: 'test' });
writeCachedTransport(transportKey('nats'), { msPerJob: 90, startupMs: 3000, measuredAt: 'test' });

test('training work: 2 × NFE per iteration × batch × iterations; evaluation: own solver + test solvers, forward only, per test point', (t) => {
  const plan = planStudy(doc);
  const w = jobWork(plan).get(plan.jobs[0]!.id)!;
  t.is(w.sampleNfe, 2 * 4 * 8 * 10);
  t.is(w.evalNfePerPoint, 4 + 2 * 4 + 8, 'euler ×4 itself, rk4 ×2 (8 stages), euler ×8');
  t.is(w.auditNfePerPoint, 0);
});

test('audits: the fan re-solves with its float64 reference at its calibrated NFE; crossing adds the fold check and refinement', (t) => {
  const spec = parseSolverSpec('euler:steps=4');
  const shape = { d: 2, n: 500, referenceNfe: 1658 };
  const fan = auditCalls(spec, { ...shape, crossing: false, fan: true });
  t.deepEqual(fan, [
    { calls: 4, rows: 500 },
    { calls: 1658, rows: 500 },
  ]);
  t.is(auditCalls(spec, { ...shape, referenceNfe: 10, crossing: false, fan: true })[1]!.calls, REFERENCE_NFE_FLOOR);
  const crossing = auditCalls(spec, { ...shape, crossing: true, fan: false });
  t.deepEqual(crossing, [
    { calls: 4, rows: 500 },
    { calls: 4, rows: 2 * 2 * 500 },
    { calls: 4 * 16 * 4 + 2 * 128 * 4, rows: 500 },
  ]);
  // Beyond FOLD_AUTO_MAX_DIM, and off 2-D, the crossing audit is its trajectories only.
  t.deepEqual(auditCalls(spec, { ...shape, d: 900, crossing: true, fan: false }), [{ calls: 4, rows: 500 }]);
  t.is(callsMs([{ calls: 10, rows: 100 }], { msPerCall: 0.5, msPerRow: 0.01 }), 10 * (0.5 + 1));
});

test('a study with audits is priced more than without, by the audits field calls at their reference NFE', async (t) => {
  const plain = await estimateWork(planStudy(doc), { workers: 1 });
  const audited = await estimateWork(planStudy({ ...doc, audits: { fan: true, crossing: true } }), { workers: 1 });
  t.is(plain.breakdown!.auditMs, 0);
  const n = 40;
  const expected = [
    4 * (0.1 + n * 0.01), // crossing: the trajectories
    4 * (0.1 + 4 * n * 0.01), // the fold check, 2d·n rows
    (4 * 64 + 2 * 512) * (0.1 + n * 0.01), // refinement
    4 * (0.1 + n * 0.01), // fan: the trajectories
    1658 * (0.1 + n * 0.01), // fan: the float64 reference, as calibrated
  ].reduce((a, b) => a + b, 0);
  t.true(Math.abs(audited.breakdown!.auditMs - expected) < 1e-6, `${audited.breakdown!.auditMs} vs ${expected}`);
  t.true(Math.abs(audited.wallMs! - plain.wallMs! - expected) < 1e-6);
  t.true(audited.evalUnits > plain.evalUnits && plain.evalUnits > 0);
});

test('per-job overhead, transport and builds scale with the jobs; the jobs spread over the workers', async (t) => {
  const one = await estimateWork(planStudy(doc), { workers: 2 });
  const many = await estimateWork(planStudy({ ...doc, seeds: 40 }), { workers: 2 });
  t.is(one.breakdown!.overheadMs, 300);
  t.is(many.breakdown!.overheadMs, 40 * 300);
  t.is(many.breakdown!.transportMs, 40 * 25);
  t.true(Math.abs(many.breakdown!.trainMs - 40 * one.breakdown!.trainMs) < 1e-6);
  // One configuration: each of the 2 workers builds its graph once, whatever the seeds.
  const build = 50 + 10 * Math.pow(4, 1.5);
  t.is(one.breakdown!.buildMs, build);
  t.true(Math.abs(many.breakdown!.buildMs - 2 * build) < 1e-9);
  const serial = Object.values(many.breakdown!).reduce((a, b) => a + b, 0);
  t.true(Math.abs(many.wallMs! - (1500 + serial / 2)) < 1e-6);
  // On NATS the same plan pays that transport's per-job overhead and start.
  const nats = await estimateWork(planStudy({ ...doc, seeds: 40 }), { workers: 2, transport: 'nats' });
  t.is(nats.breakdown!.transportMs, 40 * 90);
  t.true(Math.abs(nats.wallMs! - many.wallMs! - (1500 + (40 * (90 - 25)) / 2)) < 1e-6);
  t.is(nats.transportCost!.source, 'cached');
});

test('without a calibration there is work but no wall time', async (t) => {
  const e = await estimateWork(planStudy({ ...doc, audits: { fan: true } }), { calibrate: false });
  t.is(e.wallMs, undefined);
  t.true(e.evalSampleNfe > 20 * 40);
});

test('builds: three measured builds give the curve through them, its exponent within [1, 2]', (t) => {
  const curve = (s: number) => 20 + 3 * Math.pow(s, 1.3);
  const fit = fitBuildCurve([1, 8, 32].map((s) => [s, curve(s)] as const));
  t.true(Math.abs(fit.buildExponent - 1.3) < 1e-4, `${fit.buildExponent}`);
  t.true(Math.abs(fit.buildMsPerStage - 3) < 1e-3 && Math.abs(fit.buildMs - 20) < 1e-2, JSON.stringify(fit));
  // Extrapolated as measured on 900-d conv1d (1, 8, 32 stages: 125, 500, 2 000 ms; 128 stages: ~9 s).
  const spheres = fitBuildCurve([
    [1, 125],
    [8, 500],
    [32, 2000],
  ]);
  const at128 = buildMs(parseSolverSpec('euler:steps=128'), spheres);
  t.true(at128 > 7500 && at128 < 10_000, `${at128}`);
  // Noise never makes builds shrink with stages or explode: the exponent stays within its bounds.
  t.is(
    fitBuildCurve([
      [1, 100],
      [8, 90],
      [32, 95],
    ]).buildExponent,
    1,
  );
  t.is(
    fitBuildCurve([
      [1, 10],
      [8, 11],
      [32, 5000],
    ]).buildExponent,
    2,
  );
});

test('builds beyond the curve follow the build measured there: the power law from the curve at 32 stages through it', (t) => {
  // Measured on 2-d conv1d: the curve through 1, 8 and 32 stages says 1.25 s at 128, builds took 2.3 s.
  const curve = { buildMs: 9, buildMsPerStage: 5.14, buildExponent: 1.13 };
  const at = (spec: string, tail?: { stages: number; ms: number }) =>
    buildMs(parseSolverSpec(spec), { ...curve, ...(tail ? { buildTail: tail } : {}) });
  const tail = { stages: 128, ms: 2300 };
  t.true(Math.abs(at('euler:steps=128', tail) - 2300) < 1e-6, 'through the measured build');
  t.true(Math.abs(at('midpoint:steps=64', tail) - 2300) < 1e-6, 'by stages, whatever the method');
  t.is(at('euler:steps=32', tail), at('euler:steps=32'), 'the curve up to its last stages');
  t.is(at('rk4:steps=4', tail), at('rk4:steps=4'));
  const atKnot = at('euler:steps=32');
  const exponent = Math.log(2300 / atKnot) / Math.log(4);
  t.true(Math.abs(at('euler:steps=64', tail) - atKnot * 2 ** exponent) < 1e-6, 'between, on the power law');
  t.true(Math.abs(at('euler:steps=256', tail) - atKnot * 8 ** exponent) < 1e-6, 'beyond, extrapolated');
  t.true(at('euler:steps=128') < 1300, 'without a tail: the curve, as before');
  // A tail flatter than the curve (a noisy measurement) never prices big grids below the curve.
  t.true(at('euler:steps=128', { stages: 128, ms: 300 }) >= at('euler:steps=128'));
  t.is(at('dopri5:0.001', tail), curve.buildMs, 'adaptive solvers: their step graphs');
});

test('the fan reference stops at every audited step: calibrated NFE per stop, its own cost per row', (t) => {
  const spec = parseSolverSpec('euler:steps=32');
  const shape = { d: 900, n: 20, crossing: false, fan: true, referenceNfe: 512, referenceNfePerStop: 6 };
  t.deepEqual(auditCalls(spec, { ...shape, referenceMsPerRow: 0.12 })[1], {
    calls: 512 + 32 * 6,
    rows: 20,
    msPerRow: 0.12,
  });
  // The floor bounds the whole reference, stops included.
  t.is(auditCalls(parseSolverSpec('euler:steps=2'), { ...shape, referenceNfe: 100 })[1]!.calls, REFERENCE_NFE_FLOOR);
  t.is(callsMs([{ calls: 10, rows: 20, msPerRow: 0.1 }], { msPerCall: 0.5, msPerRow: 0.01 }), 10 * (0.5 + 2));
});

test('adaptation: each check runs the test solver and a trial step on its batch; fixed steps rebuild', (t) => {
  const adaptDoc = { ...doc, adapt: true, iterations: 120, testSolvers: ['rk4:steps=2'] };
  const plan = planStudy(adaptDoc);
  const work = jobWork(plan);
  const fixed = plan.jobs.find((j) => j.adapt)!;
  const w = work.get(fixed.id)!;
  // 120 iterations: checks at 50 and 100; the euler run trains around euler:steps=20 (no grid of its own).
  t.is(w.builds, 3);
  const perCheck = adaptCheckCalls(parseSolverSpec('euler:steps=20'), 8);
  // The test solver: midpoint at h = √(0.05^1 / 50) (fixedTestSolver), 32 steps of 2 stages; the trial: 20 steps.
  t.deepEqual(perCheck, [
    { calls: 32 * 2, rows: 8 },
    { calls: 20, rows: 8 },
  ]);
  t.deepEqual(
    w.checkCalls,
    perCheck.map((c) => ({ calls: 2 * c.calls, rows: c.rows })),
  );
  t.is(w.sampleNfe, 2 * 20 * 120 * 8 + 2 * (64 + 20) * 8);
  const adaptive = planStudy({ ...adaptDoc, grid: [{ solver: 'dopri5', tols: [1e-3] }] });
  const a = jobWork(adaptive).get(adaptive.jobs.find((j) => j.adapt)!.id)!;
  t.is(a.builds, 1, 'adaptive solvers keep their step graphs whatever the tolerance');
  t.is(a.checkCalls.length, 2);
});

test('calibration entries of an older format are measured again, not misread', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-cache-format-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = calibrationKey(dataset, fullName, 'fixed', 8);
  writeCachedCost(key, cost, dir);
  t.deepEqual(readCachedCost(key, dir), cost);
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'calibration.json'), 'utf8'));
  // Version 4's transport entries still hold (NATS's needs a cluster to measure again); its group costs do not
  // (version 5 times contention with the fan audit). Older transports were measured another way.
  writeCachedTransport(transportKey('nats'), { msPerJob: 90, startupMs: 3000, measuredAt: 'test' }, dir);
  const v4 = {
    ...JSON.parse(fs.readFileSync(path.join(dir, 'calibration.json'), 'utf8')),
    format: 'odeness-calibration/4',
  };
  fs.writeFileSync(path.join(dir, 'calibration.json'), JSON.stringify(v4));
  t.is(readCachedCost(key, dir), undefined);
  t.is(readCachedTransport(transportKey('nats'), dir)?.msPerJob, 90);
  fs.writeFileSync(path.join(dir, 'calibration.json'), JSON.stringify({ ...v4, format: 'odeness-calibration/2' }));
  t.is(readCachedTransport(transportKey('nats'), dir), undefined);
  const { buildExponent: _b, ...older } = cost;
  fs.writeFileSync(path.join(dir, 'calibration.json'), JSON.stringify({ ...doc, entries: { [key]: older } }));
  t.is(readCachedCost(key, dir), undefined);
});

test('beside other busy workers each job is priced slower by its calibrated contention; alone it is not', async (t) => {
  const busy = 'spheres:dupont2019:dim=2,n=64,testN=30';
  writeCachedCost(calibrationKey(busy, fullName, 'fixed', 8), { ...cost, contention: 1.5 });
  const plan = planStudy({ ...doc, datasets: [busy], seeds: 4 });
  const serial = (e: Awaited<ReturnType<typeof estimateWork>>) =>
    Object.values(e.breakdown!).reduce((a, b) => a + b, 0) - e.breakdown!.transportMs;
  const one = await estimateWork(plan, { workers: 1 });
  const two = await estimateWork(plan, { workers: 2 });
  // Two workers build the one configuration twice; everything else is the same work, 1.5 times slower.
  const extraBuild = 50 + 10 * Math.pow(4, 1.5);
  t.true(Math.abs(serial(two) - 1.5 * (serial(one) + extraBuild)) < 1e-6, `${serial(two)} vs ${serial(one)}`);
});
