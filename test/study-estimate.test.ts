import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { estimateWork, jobWork } from '../src/study/estimate.js';
import { planStudy } from '../src/study/plan.js';
import { calibrationKey, transportKey, writeCachedCost, writeCachedTransport } from '../src/study/calibration-cache.js';
import { auditCalls, callsMs, REFERENCE_NFE_FLOOR } from '../src/study/price.js';
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
  jobOverheadMs: 300,
  msPerCall: 0.1,
  msPerRow: 0.01,
  referenceNfe: 1658,
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
