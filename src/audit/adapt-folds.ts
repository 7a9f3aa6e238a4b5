/**
 * The fold check that adaptation with `folds` runs at each check (beyond the
 * paper): the model's current parameters as an in-memory model source, the check
 * batch encoded once, and per probed step size one trajectory and the fold
 * check of its step map (audit/fold.ts, the audits' own). Training passes it
 * in (train/adapt.ts FoldProbe): training sits below the audits.
 */
import { float64Ops } from '../engines/typed.js';
import { memorySource } from '../onnx/source.js';
import { solveAsync } from '../solvers/integrate.js';
import type { FixedSolverSpec } from '../solvers/spec.js';
import type { AdaptFoldCheck } from '../train/adapt.js';
import { foldCheck } from './fold.js';

/** Points of the check batch the fold check looks at (every state of each, at every step). */
const MAX_POINTS = 128;

export const adaptFoldCheck: AdaptFoldCheck = async (model, x, n) => {
  const source = await memorySource(model, { label: 'adaptation check' });
  const m = Math.min(n, MAX_POINTS);
  const z0 = await source.encode(x.subarray(0, m * source.inputWidth), m).then(
    (z) => Float64Array.from(z),
    async (e: unknown) => {
      await source.release();
      throw e;
    },
  );
  const d = z0.length / m;
  const field = source.field(m);
  const fieldOf = (rows: number) => {
    const f = rows === m ? field : source.field(rows);
    return async (t: number, z: Float64Array) => Float64Array.from(await f(t, Float32Array.from(z)));
  };
  const foldsOf = async (spec: FixedSolverSpec) => {
    const tr = await solveAsync(float64Ops, fieldOf(m), z0, spec, { t0: source.t0, t1: source.t1, record: true });
    const times = tr.trajectory!.t;
    let nfe = tr.stats.nfe;
    const step = async (z: Float64Array, rows: number, _d: number, k: number) => {
      const one = await solveAsync(
        float64Ops,
        fieldOf(rows),
        z,
        { kind: 'fixed', method: spec.method, steps: 1 },
        { t0: times[k]!, t1: times[k + 1]! },
      );
      nfe += one.stats.nfe;
      return one.z1;
    };
    const f = await foldCheck(step, tr.trajectory!.z, { n: m, d });
    return { folded: f.folded, states: f.states, nfe };
  };
  return {
    foldsOf,
    release: () => source.release(),
  };
};
