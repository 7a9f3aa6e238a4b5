/**
 * Adam on typed arrays, the optimizer of the ort training engine.
 *
 * Same defaults and arithmetic as tf.train.adam (tfjs-core 4.22
 * AdamOptimizer.applyGradients): beta1 0.9, beta2 0.999, epsilon = the
 * backend's epsilon, 1e-7 for float32 backends; moments start at zero; the bias
 * corrections divide by 1 − β^t with β^t accumulated by repeated float32
 * multiplication; every operation is rounded to float32 in tfjs's order, so a
 * step here equals a tfjs step bit for bit (test/ort-adam.test.ts).
 *
 * AdamGraph is the alternative measured by scripts/bench-train.ts: the same
 * update as a second small onnxruntime graph.
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../graph/ir/graph.js';
import { createSession, type SessionOptions } from '../onnx/runtime/session.js';

/** tfjs's float32 backend epsilon (KernelBackend.epsilon(): EPSILON_FLOAT32). */
export const TFJS_EPSILON_FLOAT32 = 1e-7;

export interface AdamOptions {
  readonly lr: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

const f = Math.fround;

export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Completed updates. */
  iterations = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private accBeta1: number;
  private accBeta2: number;

  /** `sizes`: element count of each parameter, in the order step() receives them. */
  constructor(sizes: readonly number[], options: AdamOptions) {
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? TFJS_EPSILON_FLOAT32;
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
    this.accBeta1 = f(this.beta1);
    this.accBeta2 = f(this.beta2);
  }

  /** Update every parameter in place from its gradient. */
  step(params: readonly Float32Array[], grads: readonly ArrayLike<number>[]): void {
    if (params.length !== this.m.length || grads.length !== this.m.length) {
      throw new Error(
        `Adam: expected ${this.m.length} parameters and gradients, got ${params.length} and ${grads.length}`,
      );
    }
    const b1 = f(this.beta1);
    const b2 = f(this.beta2);
    const c1 = f(1 - this.beta1);
    const c2 = f(1 - this.beta2);
    const eps = f(this.epsilon);
    const negLr = f(-this.lr);
    const oneMinusAcc1 = f(1 - this.accBeta1);
    const oneMinusAcc2 = f(1 - this.accBeta2);
    for (let k = 0; k < params.length; k++) {
      const p = params[k]!;
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (p.length !== m.length || g.length !== m.length)
        throw new Error(`Adam: parameter ${k} has ${p.length} values and gradient ${g.length}, expected ${m.length}`);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = f(f(m[i]! * b1) + f(gi * c1));
        const vi = f(f(v[i]! * b2) + f(f(gi * gi) * c2));
        m[i] = mi;
        v[i] = vi;
        const mh = f(mi / oneMinusAcc1);
        const vh = f(vi / oneMinusAcc2);
        p[i] = f(f(f(mh / f(f(Math.sqrt(vh)) + eps)) * negLr) + p[i]!);
      }
    }
    this.accBeta1 = f(this.accBeta1 * b1);
    this.accBeta2 = f(this.accBeta2 * b2);
    this.iterations++;
  }
}

/**
 * The same update as one onnxruntime graph over all parameters: inputs
 * p_k, m_k, v_k, g_k and the scalars 1 − β1^t, 1 − β2^t; outputs p_k', m_k', v_k'.
 * Parameters and moments live in the returned ort tensors (no copies); the
 * gradients can be the train session's output tensors directly.
 */
export class AdamGraph {
  private accBeta1: number;
  private accBeta2: number;
  private constructor(
    readonly session: ort.InferenceSession,
    readonly shapes: readonly (readonly number[])[],
    private readonly options: Required<AdamOptions>,
    public params: ort.Tensor[],
    private m: ort.Tensor[],
    private v: ort.Tensor[],
  ) {
    this.accBeta1 = f(options.beta1);
    this.accBeta2 = f(options.beta2);
  }

  static async create(
    initial: readonly Float32Array[],
    shapes: readonly (readonly number[])[],
    options: AdamOptions,
    session: SessionOptions = {},
  ): Promise<AdamGraph> {
    const o: Required<AdamOptions> = {
      lr: options.lr,
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      epsilon: options.epsilon ?? TFJS_EPSILON_FLOAT32,
    };
    const b = new GraphBuilder({ name: 'adam' });
    const om1 = b.input('one_minus_acc1', 'float32', []);
    const om2 = b.input('one_minus_acc2', 'float32', []);
    shapes.forEach((shape, k) => {
      const [p, m, v, g] = ['p', 'm', 'v', 'g'].map((n) => b.input(`${n}${k}`, 'float32', shape));
      const m1 = b.op(
        'Add',
        [b.op('Mul', [m!, b.scalar(o.beta1)]), b.op('Mul', [g!, b.scalar(1 - o.beta1)])],
        {},
        `m${k}_next`,
      );
      const v1 = b.op(
        'Add',
        [b.op('Mul', [v!, b.scalar(o.beta2)]), b.op('Mul', [b.op('Mul', [g!, g!]), b.scalar(1 - o.beta2)])],
        {},
        `v${k}_next`,
      );
      const mh = b.op('Div', [m1, om1]);
      const vh = b.op('Div', [v1, om2]);
      const step = b.op('Mul', [
        b.op('Div', [mh, b.op('Add', [b.op('Sqrt', [vh]), b.scalar(o.epsilon)])]),
        b.scalar(-o.lr),
      ]);
      b.op('Add', [step, p!], {}, `p${k}_next`);
      for (const n of ['p', 'm', 'v']) b.output(`${n}${k}_next`, 'float32', shape);
    });
    const created = await createSession(b.toBytes(), session);
    const tensor = (data: Float32Array, k: number) => new ort.Tensor('float32', data, [...shapes[k]!]);
    return new AdamGraph(
      created,
      shapes,
      o,
      initial.map((p, k) => tensor(p.slice(), k)),
      shapes.map((_, k) => tensor(new Float32Array(initial[k]!.length), k)),
      shapes.map((_, k) => tensor(new Float32Array(initial[k]!.length), k)),
    );
  }

  async step(grads: readonly ort.Tensor[]): Promise<void> {
    const feeds: Record<string, ort.Tensor> = {
      one_minus_acc1: new ort.Tensor('float32', Float32Array.of(1 - this.accBeta1), []),
      one_minus_acc2: new ort.Tensor('float32', Float32Array.of(1 - this.accBeta2), []),
    };
    this.shapes.forEach((_, k) => {
      feeds[`p${k}`] = this.params[k]!;
      feeds[`m${k}`] = this.m[k]!;
      feeds[`v${k}`] = this.v[k]!;
      feeds[`g${k}`] = grads[k]!;
    });
    const r = await this.session.run(feeds);
    this.params = this.shapes.map((_, k) => r[`p${k}_next`]!);
    this.m = this.shapes.map((_, k) => r[`m${k}_next`]!);
    this.v = this.shapes.map((_, k) => r[`v${k}_next`]!);
    this.accBeta1 = f(this.accBeta1 * f(this.options.beta1));
    this.accBeta2 = f(this.accBeta2 * f(this.options.beta2));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
