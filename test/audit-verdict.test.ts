/**
 * The ODE-flow verdict: "NOT an ODE flow" only on proof (a fold, a 1-D order
 * swap, a crossing that persists under refinement). Analytic fields: a true
 * flow (rotation, nearby curved orbits) never gets it, under fine or coarse
 * solvers, although its chords cross; maps that fold, swap order or merge
 * trajectories always do, with the proof named.
 */
import test from 'ava';
import { crossingAudit } from '../src/audit/audits.js';
import { refineCrossings } from '../src/audit/refine.js';
import { crossingVerdict } from '../src/audit/verdict.js';
import type { AuditData, ModelSource } from '../src/audit/source.js';
import { parseSolverSpec } from '../src/solvers/spec.js';

/** A model source whose encoder is the identity and whose field is given (float32, like a model's). */
function analyticSource(d: number, f: (z: Float32Array, out: Float32Array, i: number) => void): ModelSource {
  return {
    dir: 'analytic',
    kind: 'model',
    stateShape: [d],
    inputShape: [d],
    inputWidth: d,
    input: 'analytic: input z',
    batch: 1024,
    verified: true,
    classes: 2,
    t0: 0,
    t1: 1,
    encode: async (x) => Float32Array.from(x),
    field: (n) => (_t, z) => {
      const out = new Float32Array(n * d);
      for (let i = 0; i < n; i++) f(z, out, i);
      return out;
    },
    logits: async (_z, n) => new Float32Array(n * 2),
    release: async () => {},
  };
}

function data(points: number[][]): AuditData {
  return { x: Float32Array.from(points.flat()), y: Int32Array.from(points.map((_, i) => i % 2)), n: points.length };
}

const rotation = analyticSource(2, (z, out, i) => {
  out[2 * i] = -z[2 * i + 1]!;
  out[2 * i + 1] = z[2 * i]!;
});

/** Pairs of points on nearly the same circle, one slightly behind the other: their chords cross. */
function nearbyOrbits(pairs: number): number[][] {
  const pts: number[][] = [];
  for (let q = 0; q < pairs; q++) {
    const a = (2 * Math.PI * q) / pairs;
    const r = 0.5 + q / pairs;
    pts.push([r * Math.cos(a), r * Math.sin(a)]);
    pts.push([(r + 2e-4) * Math.cos(a + 0.01), (r + 2e-4) * Math.sin(a + 0.01)]);
  }
  return pts;
}

test('a rotation (a true flow) never gets a NOT verdict, although its chords cross', async (t) => {
  const pts = data(nearbyOrbits(40));
  let chordCrossings = 0;
  for (const solver of ['rk4:0.05', 'rk4:0.25', 'dopri5:1e-8', 'euler:0.05']) {
    const r = await crossingAudit(rotation, pts, parseSolverSpec(solver));
    t.log(`${solver}: ${r.crossings} crossing pairs, ${r.refinement?.artefactPairs ?? 0} artefacts; ${r.verdict.text}`);
    chordCrossings += r.crossings;
    t.not(r.verdict.conclusion, 'not-an-ode-flow', `${solver}: ${r.verdict.text}`);
    t.deepEqual(r.verdict.proofs, []);
    t.is(r.fold!.folded, 0);
    if (r.crossings > 0) {
      t.is(r.refinement!.persistentPairs, 0);
      t.is(
        r.refinement!.artefactPairs + r.refinement!.unresolvedPairs + r.refinement!.notRefinedPairs,
        r.crossings,
        'every crossing pair is sorted once',
      );
      t.is(r.verdict.conclusion, 'inconclusive');
      t.regex(r.verdict.text, /vanish when refined: artefacts/);
    }
  }
  t.true(chordCrossings > 0, 'the chords of nearby curved orbits do cross: the test exercises refinement');
});

test('a step map that folds gets NOT, resting on the fold', async (t) => {
  // z' = (−3x, 0.1y) with Euler h = 0.5: x ↦ −0.5x, y ↦ 1.05y, det = −0.525.
  const squash = analyticSource(2, (z, out, i) => {
    out[2 * i] = -3 * z[2 * i]!;
    out[2 * i + 1] = 0.1 * z[2 * i + 1]!;
  });
  const pts = data(Array.from({ length: 30 }, (_, i) => [Math.cos(i), Math.sin(2 * i)]));
  const r = await crossingAudit(squash, pts, parseSolverSpec('euler:0.5'));
  t.is(r.verdict.conclusion, 'not-an-ode-flow');
  t.deepEqual(r.verdict.proofs, ['fold']);
  t.is(r.fold!.folded, 60);
  t.regex(
    r.verdict.text,
    /^NOT an ODE flow under euler:0\.5 — proof: a step folds space \(60 of 60 visited states have det ≤ 0\)/,
  );
  // The same field solved finely is a flow (a linear contraction and expansion): no proof.
  const fine = await crossingAudit(squash, pts, parseSolverSpec('rk4:0.01'));
  t.not(fine.verdict.conclusion, 'not-an-ode-flow', fine.verdict.text);
});

test('1-D: an order swap is proof', async (t) => {
  // z' = −3z with Euler h = 0.5: z ↦ −0.5z reverses every pair.
  const decay = analyticSource(1, (z, out, i) => {
    out[i] = -3 * z[i]!;
  });
  const r = await crossingAudit(decay, data([[-1], [-0.2], [0.3], [0.9]]), parseSolverSpec('euler:0.5'));
  t.is(r.crossings, 6);
  t.is(r.verdict.conclusion, 'not-an-ode-flow');
  t.deepEqual(r.verdict.proofs, ['fold', 'order-swap']);
  t.is(r.verdict.evidence.orderSwaps, 6);
  t.regex(r.verdict.text, /6 pairs of 1-D trajectories swap order/);
  const fine = await crossingAudit(decay, data([[-1], [-0.2], [0.3], [0.9]]), parseSolverSpec('rk4:0.05'));
  t.is(fine.verdict.conclusion, 'no-evidence');
});

test('trajectories that pass through each other (a non-Lipschitz field) cross persistently under refinement', async (t) => {
  // y' = 3|y|^(2/3): y = 0 stays put, while y(t) = (t − c)³ rises through it at t = c — two
  // solutions meet and pass, which no Lipschitz flow allows; refinement cannot make it vanish.
  const pass = analyticSource(2, (z, out, i) => {
    out[2 * i] = 0;
    out[2 * i + 1] = 3 * Math.cbrt(z[2 * i + 1]! ** 2);
  });
  const pts = data([
    [0, -(0.05 ** 3)],
    [0, 0],
    [1, -(0.08 ** 3)],
    [1, 0],
  ]);
  const r = await crossingAudit(pass, pts, parseSolverSpec('rk4:0.1'));
  t.log(`${r.crossings} crossing pairs; refinement ${JSON.stringify(r.refinement)}; ${r.verdict.text}`);
  t.is(r.crossings, 2);
  t.is(r.refinement!.persistentPairs, 2);
  t.is(r.verdict.conclusion, 'not-an-ode-flow');
  t.true(r.verdict.proofs.includes('persistent-crossing'));
  t.regex(r.verdict.text, /2 crossing pairs persist when refined to 1024 sub-steps per step/);
  // Without refinement no chord crossing counts as proof.
  const unrefined = await crossingAudit(pass, pts, parseSolverSpec('rk4:0.1'), { refine: false, fold: false });
  t.is(unrefined.verdict.conclusion, 'inconclusive');
});

test('verdict rules on given evidence: a projection is a hint, nothing found is no evidence', (t) => {
  const fold = (folded: number) => ({ folded, states: 100, minDet: folded > 0 ? -0.5 : 0.8 });
  const hint = crossingVerdict({ d: 5, crossings: 7, projected: true, fold: fold(0) });
  t.is(hint.conclusion, 'inconclusive');
  t.deepEqual(hint.proofs, []);
  t.regex(hint.text, /hint, not proof; the fold check found no fold in 100 states/);
  t.regex(crossingVerdict({ d: 5, crossings: 7, projected: true }).text, /--fold runs it/);
  const none = crossingVerdict({ d: 2, crossings: 0, projected: false });
  t.is(none.conclusion, 'no-evidence');
  t.is(none.evidence.folded, null);
  const folded = crossingVerdict({ d: 5, crossings: 0, projected: true, fold: fold(3) });
  t.deepEqual(folded.proofs, ['fold']);
  // 1-D merges (touches) are not swaps; unrefined 2-D chord crossings are no proof.
  t.is(crossingVerdict({ d: 1, crossings: 2, touchingPairs: 2, projected: false }).conclusion, 'inconclusive');
  const chords = crossingVerdict({ d: 2, crossings: 4, projected: false, stepMap: 'fixed', fold: fold(0) });
  t.is(chords.conclusion, 'inconclusive');
  t.regex(chords.text, /not refined.*step map is the model/);
});

test('refineCrossings: straight-line motion meets only where both points are at the same time', async (t) => {
  // Sub-solve by linear interpolation between the recorded states of each trajectory.
  const states = [Float64Array.of(0, 0, 1, 0, 0, 5, 1, 5), Float64Array.of(1, 1, 0, 1, 1, 6, 0.2, 5.9)];
  const solveSub = async (z: Float64Array, m: number, _k: number, substeps: number) => {
    const out: Float64Array[] = [];
    // Map each start row back to its trajectory by its coordinates (they are distinct).
    const end = new Float64Array(2 * m);
    for (let s = 0; s < m; s++) {
      const i = [0, 1, 2, 3].find((q) => states[0]![2 * q] === z[2 * s] && states[0]![2 * q + 1] === z[2 * s + 1])!;
      end[2 * s] = states[1]![2 * i]!;
      end[2 * s + 1] = states[1]![2 * i + 1]!;
    }
    for (let u = 0; u <= substeps; u++) out.push(z.map((v, q) => v + (u / substeps) * (end[q]! - v)));
    return out;
  };
  // Pair (0, 1): an X, both at the centre at t = 1/2 — they meet: persistent.
  // Pair (2, 3): the chords cross, but point 2 passes the crossing point at a different time: artefact.
  const events = [
    { i: 0, j: 1, step: 0, kind: 'proper' as const },
    { i: 2, j: 3, step: 0, kind: 'proper' as const },
  ];
  const r = await refineCrossings(events, states, 4, solveSub, { levels: [4, 32] });
  t.is(r.persistentPairs, 1);
  t.is(r.artefactPairs, 1);
  t.deepEqual(
    r.persistentExamples.map((e) => [e.i, e.j]),
    [[0, 1]],
  );
  t.is(
    r.vanishedAtLevel.reduce((a, b) => a + b, 0),
    1,
  );
  // Pairs beyond the listed events count as not refined; bad levels are refused.
  const partial = await refineCrossings(events.slice(0, 1), states, 4, solveSub, { levels: [4], totalPairs: 2 });
  t.is(partial.notRefinedPairs, 1);
  await t.throwsAsync(refineCrossings(events, states, 4, solveSub, { levels: [8, 8] }), {
    message: /increasing positive integers/,
  });
});
