import test from 'ava';
import { crossingVerdict } from '../src/audit/verdict.js';

const fold = (folded: number) => ({ folded, states: 100, minDet: folded > 0 ? -0.5 : 0.8 });

test('a fold is proof, whatever the crossings', (t) => {
  const v = crossingVerdict({ d: 5, crossings: 0, projected: true, fold: fold(3) });
  t.is(v.conclusion, 'not-an-ode-flow');
  t.deepEqual(v.proofs, ['fold']);
  t.is(v.evidence.folded, 3);
  t.regex(v.text, /NOT an ODE flow.*folds/);
});

test('a crossing in a projection is only a hint; no crossing and no fold is no evidence', (t) => {
  const hint = crossingVerdict({ d: 5, crossings: 7, projected: true, fold: fold(0) });
  t.is(hint.conclusion, 'inconclusive');
  t.deepEqual(hint.proofs, []);
  t.regex(hint.text, /hint, not proof; the fold check found no fold/);
  t.regex(crossingVerdict({ d: 5, crossings: 7, projected: true }).text, /run with --fold/);
  const none = crossingVerdict({ d: 2, crossings: 0, projected: false });
  t.is(none.conclusion, 'no-evidence');
  t.is(none.evidence.folded, null);
});

test('1-D: a crossing is an order swap', (t) => {
  const v = crossingVerdict({ d: 1, crossings: 2, projected: false, fold: fold(0) });
  t.is(v.conclusion, 'not-an-ode-flow');
  t.deepEqual(v.proofs, ['order-swap']);
});
