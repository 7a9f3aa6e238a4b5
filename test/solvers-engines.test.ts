/**
 * Engines: the tfjs tensor engine and the float32/float64 typed-array engines
 * run the same integrate loop and must agree to float32 precision; gradients
 * taken through a tfjs solve (discretise-then-optimise) must match central
 * finite differences of the same discrete solve computed in float64.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engines/backend.js';
import { tensorOps } from '../src/engines/tensor.js';
import { float32Ops, float64Ops, type TypedVec } from '../src/engines/typed.js';
import { solve, solveAsync } from '../src/solvers/integrate.js';
import { parseSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import type { VectorOps } from '../src/solvers/vector.js';
import { ROT_DECAY_AT, rotDecayField, rotDecayField32 } from './helpers/problems.js';

test.before(async () => {
  await initBackend();
});

// ---- A tiny tanh MLP field z' = tanh(z·W1 + b1 + t·u)·W2 + b2 on a batch of
// points (rows), written once for tfjs and once for flat typed arrays.
const D = 2;
const H = 6;
const BATCH = 3;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const rnd = lcg(7);
const params = {
  W1: Array.from({ length: D * H }, () => rnd()),
  b1: Array.from({ length: H }, () => 0.3 * rnd()),
  u: Array.from({ length: H }, () => 0.5 * rnd()),
  W2: Array.from({ length: H * D }, () => rnd()),
  b2: Array.from({ length: D }, () => 0.3 * rnd()),
};
type ParamName = keyof typeof params;
const Z0 = [0.5, -0.3, -0.8, 0.4, 0.1, 0.9];

function mlpTyped<T extends TypedVec>(
  p: Record<ParamName, readonly number[]>,
  make: (n: number) => T,
): (t: number, z: T) => T {
  return (t, z) => {
    const out = make(BATCH * D);
    for (let n = 0; n < BATCH; n++) {
      for (let j = 0; j < H; j++) {
        let a = p.b1[j]! + t * p.u[j]!;
        for (let i = 0; i < D; i++) a += z[n * D + i]! * p.W1[i * H + j]!;
        const hj = Math.tanh(a);
        for (let k = 0; k < D; k++) out[n * D + k]! += hj * p.W2[j * D + k]!;
      }
      for (let k = 0; k < D; k++) out[n * D + k]! += p.b2[k]!;
    }
    return out;
  };
}
const make64 = (n: number): Float64Array => new Float64Array(n);
const make32 = (n: number): Float32Array => new Float32Array(n);

function mlpTensor(p: Record<ParamName, tf.Tensor>): (t: number, z: tf.Tensor) => tf.Tensor {
  return (t, z) =>
    tf.add(
      tf.matMul(
        tf.tanh(tf.add(tf.add(tf.matMul(z as tf.Tensor2D, p.W1 as tf.Tensor2D), p.b1), tf.mul(p.u, t))),
        p.W2 as tf.Tensor2D,
      ),
      p.b2,
    );
}
function tensorParams(): Record<ParamName, tf.Tensor> {
  return {
    W1: tf.tensor2d(params.W1, [D, H]),
    b1: tf.tensor1d(params.b1),
    u: tf.tensor1d(params.u),
    W2: tf.tensor2d(params.W2, [H, D]),
    b2: tf.tensor1d(params.b2),
  };
}

// ---- The rotation-decay linear field z' = Az (test/helpers/problems.ts).
const rot64 = rotDecayField;
const rot32 = rotDecayField32;
const AT = (): tf.Tensor2D => tf.tensor2d(ROT_DECAY_AT); // row z times Aᵀ

/** Run a tfjs solve inside tidy and read back z1 and the stats. */
function tensorSolve(
  field: (t: number, z: tf.Tensor) => tf.Tensor,
  z0: number[][],
  spec: SolverSpec,
): { z1: number[]; nfe: number; accepted: number } {
  const before = tf.memory().numTensors;
  const out = tf.tidy(() => {
    const r = solve(tensorOps, field, tf.tensor2d(z0), spec);
    return { z1: Array.from(r.z1.dataSync()), nfe: r.stats.nfe, accepted: r.stats.accepted };
  });
  if (tf.memory().numTensors !== before)
    throw new Error(`tfjs solve leaked ${tf.memory().numTensors - before} tensors`);
  return out;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return m;
}

// Float32 has eps ≈ 1.2e-7; ≤ 100 steps of O(1) values accumulate a few ulps
// per step. 5e-6 is float32 precision for these solves and ~100× below the
// gap between neighbouring methods or step sizes (checked below).
const F32 = 5e-6;

for (const specText of [
  'euler:0.1',
  'midpoint:0.05',
  'rk4:steps=25',
  'rk4_38:0.1',
  'bosh3:1e-4',
  'dopri5:1e-5',
  'tsit5:1e-6',
]) {
  test(`engines agree to float32 precision: ${specText}`, (t) => {
    const spec = parseSolverSpec(specText);
    // Linear problem.
    const r64 = solve(float64Ops, rot64, Float64Array.of(1, 0.5), spec);
    const r32 = solve(float32Ops, rot32, Float32Array.of(1, 0.5), spec);
    const at = AT();
    const rt = tensorSolve((_t, z) => tf.matMul(z as tf.Tensor2D, at), [[1, 0.5]], spec);
    at.dispose();
    t.true(r32.z1 instanceof Float32Array);
    // Adaptive solves: an error ratio within float32 round-off of 1 may be
    // accepted by one engine and rejected by another; then the two step
    // sequences differ and the results may differ by up to ~tol instead.
    const bound = (a: number, b: number): number =>
      a === b ? F32 : F32 + (spec.kind === 'adaptive' ? 10 * spec.rtol : 0);
    t.true(
      maxRelDiff(r32.z1, r64.z1) <= bound(r32.stats.nfe, r64.stats.nfe),
      `float32 vs float64: ${[...r32.z1]} vs ${[...r64.z1]}`,
    );
    t.true(maxRelDiff(rt.z1, r64.z1) <= bound(rt.nfe, r64.stats.nfe), `tensor vs float64: ${rt.z1} vs ${[...r64.z1]}`);
    // MLP field on a batch of points (non-autonomous through t·u).
    const m64 = solve(float64Ops, mlpTyped(params, make64), Float64Array.from(Z0), spec);
    const m32 = solve(float32Ops, mlpTyped(params, make32), Float32Array.from(Z0), spec);
    const p = tensorParams();
    const mt = tensorSolve(mlpTensor(p), [Z0.slice(0, 2), Z0.slice(2, 4), Z0.slice(4, 6)], spec);
    tf.dispose(Object.values(p));
    t.true(
      maxRelDiff(m32.z1, m64.z1) <= bound(m32.stats.nfe, m64.stats.nfe),
      `MLP float32 vs float64: ${[...m32.z1]} vs ${[...m64.z1]}`,
    );
    t.true(
      maxRelDiff(mt.z1, m64.z1) <= bound(mt.nfe, m64.stats.nfe),
      `MLP tensor vs float64: ${mt.z1} vs ${[...m64.z1]}`,
    );
    if (spec.kind === 'fixed') {
      t.is(rt.nfe, r64.stats.nfe);
      t.is(mt.nfe, m64.stats.nfe);
    }
  });
}

test('the engine comparison can tell methods apart (the float32 bound is not vacuous)', (t) => {
  const a = solve(float64Ops, mlpTyped(params, make64), Float64Array.from(Z0), parseSolverSpec('rk4:0.1')).z1;
  const c = solve(float64Ops, mlpTyped(params, make64), Float64Array.from(Z0), parseSolverSpec('midpoint:0.1')).z1;
  const e = solve(float64Ops, mlpTyped(params, make64), Float64Array.from(Z0), parseSolverSpec('euler:0.05')).z1;
  t.true(maxRelDiff(a, c) > 20 * F32, `rk4 vs midpoint ${maxRelDiff(a, c)}`);
  t.true(maxRelDiff(a, e) > 100 * F32, `rk4 vs euler ${maxRelDiff(a, e)}`);
});

test('tensorOps and float64Ops implement the same vector operations', (t) => {
  const x = [1.5, -2, 0.25, 4];
  const y = [0.5, 3, -1, 2];
  const X = Float64Array.from(x);
  const Y = Float64Array.from(y);
  tf.tidy(() => {
    const xt = tf.tensor1d(x);
    const yt = tf.tensor1d(y);
    const cases: [Float64Array | undefined, tf.Tensor | undefined, number[]][] = [
      [X, xt, [2, -0.5]],
      [undefined, undefined, [0, 0.75]],
      [X, xt, [0, 0]],
      [undefined, undefined, [1, 1]],
    ];
    for (const [b64, bt, coeffs] of cases) {
      const want = float64Ops.combine(b64, coeffs, [X, Y]);
      const got = tensorOps.combine(bt, coeffs, [xt, yt]).dataSync();
      t.true(maxRelDiff(got, want) < 1e-7, `combine(${coeffs}): ${[...got]} vs ${[...want]}`);
    }
    t.deepEqual([...float64Ops.combine(undefined, [0, 0], [X, Y])], [0, 0, 0, 0]);
    const r64 = float64Ops.scaledRms(Y, 1e-3, 1e-4, [X, Y]);
    const rt = tensorOps.scaledRms(yt, 1e-3, 1e-4, [xt, yt]);
    // RMS of y_i / (atol + rtol·max(|x_i|, |y_i|)), by hand.
    const byHand = Math.sqrt(
      y.map((v, i) => (v / (1e-4 + 1e-3 * Math.max(Math.abs(x[i]!), Math.abs(v)))) ** 2).reduce((a, b) => a + b, 0) / 4,
    );
    t.true(Math.abs(r64 - byHand) / byHand < 1e-14);
    t.true(Math.abs(rt - byHand) / byHand < 1e-6);
    for (const ops of [float64Ops, float32Ops] as VectorOps<TypedVec>[]) {
      t.true(ops.allFinite(Float64Array.of(1, -1e300, 0)));
      t.false(ops.allFinite(Float64Array.of(1, NaN, 0)));
      t.false(ops.allFinite(Float64Array.of(-Infinity, 0)));
    }
    t.true(tensorOps.allFinite(tf.tensor1d([1, -1e30, 0])));
    t.false(tensorOps.allFinite(tf.tensor1d([1, NaN, 0])));
    t.false(tensorOps.allFinite(tf.tensor2d([[0, Infinity]])));
  });
});

test('solveAsync with an asynchronous field gives the same result and calls as solve', async (t) => {
  for (const specText of ['rk4:0.1', 'dopri5:1e-6', 'fehlberg2:1e-4']) {
    const spec = parseSolverSpec(specText);
    const calls: number[] = [];
    const asyncCalls: number[] = [];
    const sync = solve(float64Ops, (tt, z) => (calls.push(tt), rot64(tt, z)), Float64Array.of(1, 0.5), spec, {
      times: [0.5, 1],
    });
    const asy = await solveAsync(
      float64Ops,
      async (tt, z) => {
        asyncCalls.push(tt);
        await new Promise((r) => setImmediate(r));
        return rot64(tt, z);
      },
      Float64Array.of(1, 0.5),
      spec,
      { times: [0.5, 1] },
    );
    t.deepEqual(asyncCalls, calls, specText);
    t.deepEqual([...asy.z1], [...sync.z1], specText);
    t.deepEqual(
      asy.zs.map((z) => [...z]),
      sync.zs.map((z) => [...z]),
    );
    t.deepEqual(asy.stats, sync.stats);
  }
  // Failures reject the promise.
  await t.throwsAsync(
    solveAsync(
      float64Ops,
      async (_t, z) => Float64Array.of(z[0]! * z[0]!),
      Float64Array.of(2),
      parseSolverSpec('rk4:0.1'),
    ),
    { message: /NaN\/Inf/ },
  );
});

/** Central finite difference of g at x[i] (float64), step eps. */
function centralDiff(g: (x: number[]) => number, x: readonly number[], i: number, eps: number): number {
  const xp = [...x];
  const xm = [...x];
  xp[i]! += eps;
  xm[i]! -= eps;
  return (g(xp) - g(xm)) / (2 * eps);
}

// Gradient tolerance: the tape gradient is float32 (relative error ~1e-6),
// the float64 central difference with eps = 1e-5 has truncation error
// ~eps²·g''' ≈ 1e-10 and round-off ~1e-16/eps ≈ 1e-11. A wrong gradient (a
// stage dropped from the tape, a detached step) is off by ≥ 1e-2.
const GRAD_TOL = 2e-4;

for (const specText of ['euler:0.1', 'rk4:0.1', 'rk4_38:steps=7', 'dopri5:1e-6']) {
  test(`d z(1)/dθ through a tfjs solve of z' = θ·z matches finite differences (${specText})`, (t) => {
    const spec = parseSolverSpec(specText);
    const z0 = [0.7, -1.2];
    const weights = [1.0, 0.5];
    const theta0 = -0.8;
    const lossOf = (theta: number): number => {
      const r = solve(float64Ops, (_t, z) => Float64Array.from(z, (v) => theta * v), Float64Array.from(z0), spec);
      return weights[0]! * r.z1[0]! + weights[1]! * r.z1[1]!;
    };
    const fd = centralDiff((x) => lossOf(x[0]!), [theta0], 0, 1e-5);
    const g = tf.tidy(() => {
      const grad = tf.grad((theta: tf.Tensor) => {
        const r = solve(tensorOps, (_t, z) => tf.mul(theta, z), tf.tensor1d(z0), spec);
        return tf.sum(tf.mul(r.z1, tf.tensor1d(weights)));
      });
      return grad(tf.scalar(theta0)).dataSync()[0]!;
    });
    // Exact flow derivative for reference: d/dθ Σ w·z0·e^θ.
    const exact = (weights[0]! * z0[0]! + weights[1]! * z0[1]!) * Math.exp(theta0);
    t.true(
      Math.abs(g - fd) <= GRAD_TOL * (1 + Math.abs(fd)),
      `tape ${g}, finite difference ${fd}, exact flow ${exact}`,
    );
    if (specText === 'euler:0.1') {
      // The discrete gradient is not the flow's: Euler's differs visibly, so the
      // comparison really is with the discrete solve.
      t.true(Math.abs(fd - exact) > 1e-3);
    }
  });
}

for (const specText of ['midpoint:0.125', 'rk4:0.1', 'bosh3:1e-5']) {
  test(`gradients of a tanh-MLP field through a tfjs solve match finite differences (${specText})`, (t) => {
    const spec = parseSolverSpec(specText);
    const names = Object.keys(params) as ParamName[];
    const target = [0.3, -0.2, 0.1, 0.4, -0.5, 0.2];
    // Loss: ½‖z(1) − target‖² over the batch.
    const loss64 = (flat: number[]): number => {
      const p = {} as Record<ParamName, number[]>;
      let o = 0;
      for (const n of names) p[n] = flat.slice(o, (o += params[n].length));
      const r = solve(float64Ops, mlpTyped(p, make64), Float64Array.from(Z0), spec);
      return 0.5 * r.z1.reduce((s, v, i) => s + (v - target[i]!) ** 2, 0);
    };
    const flat0 = names.flatMap((n) => params[n]);
    const before = tf.memory().numTensors;
    const vars = Object.fromEntries(
      Object.entries(tensorParams()).map(([n, v]) => {
        const variable = tf.variable(v, true, `mlp_${specText}_${n}`);
        v.dispose();
        return [n, variable];
      }),
    ) as Record<ParamName, tf.Variable>;
    const { value, grads } = tf.variableGrads(() => {
      const z0 = tf.tensor2d(Z0, [BATCH, D]);
      const r = solve(tensorOps, mlpTensor(vars), z0, spec);
      return tf.mul(0.5, tf.sum(tf.square(tf.sub(r.z1, tf.tensor2d(target, [BATCH, D]))))) as tf.Scalar;
    }, Object.values(vars));
    const lossTape = value.dataSync()[0]!;
    t.true(Math.abs(lossTape - loss64(flat0)) <= F32 * (1 + loss64(flat0)), `loss ${lossTape} vs ${loss64(flat0)}`);
    let o = 0;
    let checked = 0;
    for (const n of names) {
      const g = grads[vars[n].name]!.dataSync();
      t.is(g.length, params[n].length);
      for (let i = 0; i < g.length; i++, o++) {
        const fd = centralDiff(loss64, flat0, o, 1e-5);
        t.true(
          Math.abs(g[i]! - fd) <= GRAD_TOL * (1 + Math.abs(fd)),
          `${n}[${i}]: tape ${g[i]}, finite difference ${fd}`,
        );
        checked++;
      }
    }
    t.is(checked, flat0.length);
    t.true(
      flat0.some((_, i) => Math.abs(centralDiff(loss64, flat0, i, 1e-5)) > 1e-2),
      'all gradients tiny: the test would be vacuous',
    );
    value.dispose();
    tf.dispose(Object.values(grads));
    tf.dispose(Object.values(vars));
    t.is(tf.memory().numTensors, before);
  });
}
