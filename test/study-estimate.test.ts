import test from 'ava';
import { estimateWork, jobWork } from '../src/study/estimate.js';
import { planStudy } from '../src/study/plan.js';

// A study's work: training (fwd + bwd NFE × batch × iterations) and, after it, evaluation and audits
// (forward NFE × test points), which dominate a smoke run's few iterations.
const doc = {
  datasets: ['spheres:dupont2019:dim=2,n=64,testN=40'],
  field: 'mlp:width=8',
  grid: [{ solver: 'euler', stepCounts: [4] }],
  seeds: 1,
  iterations: 10,
  batchSize: 8,
  testSolvers: ['rk4:steps=2', 'euler:steps=8'],
};

test('training work: 2 × NFE per iteration × batch × iterations; evaluation: own solver + test solvers, forward only, per test point', (t) => {
  const plan = planStudy(doc);
  const w = jobWork(plan).get(plan.jobs[0]!.id)!;
  t.is(w.sampleNfe, 2 * 4 * 8 * 10);
  t.is(w.evalNfePerPoint, 4 + 2 * 4 + 8, 'euler ×4 itself, rk4 ×2 (8 stages), euler ×8');
  t.is(w.auditNfePerPoint, 0);
});

test('audits add the fan reference (dopri5 at 1e-8) and crossing refinements; the estimate multiplies by the test-set size', async (t) => {
  const plain = planStudy(doc);
  const audited = planStudy({ ...doc, audits: { fan: true, crossing: true } });
  const a = jobWork(audited).get(audited.jobs[0]!.id)!;
  t.true(
    a.auditNfePerPoint > 4 + 4 * 15,
    `fan: euler ×4 + a tight dopri5 reference; crossing: 15 × euler ×4; got ${a.auditNfePerPoint}`,
  );
  const e0 = await estimateWork(plain, { calibrate: false });
  const e1 = await estimateWork(audited, { calibrate: false });
  t.is(e0.evalSampleNfe, 20 * 40, '20 forward NFE × 40 test points');
  t.is(e1.evalSampleNfe, (20 + a.auditNfePerPoint) * 40);
  t.true(e1.evalUnits > e0.evalUnits && e0.evalUnits > 0);
  t.is(e0.wallMs, undefined, 'no calibration, no wall time');
});
