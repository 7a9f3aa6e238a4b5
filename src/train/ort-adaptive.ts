/**
 * Adaptive-step training on onnxruntime: the one integrate loop decides every
 * step (accepted / rejected, step sizes, NFE) and hands each Runge–Kutta step
 * to a compiled step graph (src/onnx/lower/step-graph.ts); gradients then flow back
 * through every accepted step by the step's compiled vector-Jacobian product,
 * the stored accepted states being the checkpoints. As on the tfjs engine,
 * the step-size controller's decisions (and Hairer's initial step) are not
 * differentiated: a step size is a number, not a function of the parameters.
 *
 * The backward pass is reverse mode over what the loop did (the tape of
 * field evaluations and steps, values keyed by identity): a value reached
 * from the final state gets a cotangent; rejected steps and the initial-step
 * probe are never reached, so they cost nothing backwards.
 */
import * as ort from 'onnxruntime-node';
import { float32Ops, float64Ops } from '../engines/typed.js';
import type { ModelConfig } from '../models/types.js';
import type { FloatType } from '../graph/ir/graph.js';
import { fieldGraph } from '../onnx/lower/model-graphs.js';
import { nchwcBlockSize } from '../onnx/nchwc.js';
import { addPlacements, placedSession, type Placement } from '../onnx/runtime/placement.js';
import { createSession, type SessionOptions } from '../onnx/runtime/session.js';
import { fieldVjpGraph, stepGraph } from '../onnx/lower/step-graph.js';
import { architectureModel, GRAD_PREFIX, headLossGraph, paramsToInputs } from '../onnx/lower/train-graph.js';
import { solveAsync, type SolveStats } from '../solvers/integrate.js';
import type { Solver } from '../solvers/solver.js';
import type { SolverSpec } from '../solvers/spec.js';
import type { Tableau } from '../solvers/tableau.js';
import type { StepCall, StepOut, VectorOps } from '../solvers/vector.js';

type Vec = Float32Array | Float64Array;

interface Compiled {
  readonly session: ort.InferenceSession;
  readonly nodes: number;
}

export interface AdaptiveBuild {
  readonly nodes: number;
  readonly graphMs: number;
  readonly sessionMs: number;
  /** Nodes per provider over the five graphs, when asked for. */
  readonly placement?: Placement;
}

export interface AdaptiveLoss {
  readonly loss: number;
  readonly accuracy: number;
  readonly stats: SolveStats;
  /** Gradient of the loss for every parameter (field and head). */
  readonly grads: Record<string, Vec>;
}

type Entry<V> = { kind: 'field'; t: number; z: V; k: V } | { kind: 'step'; call: StepCall<V>['step']; out: StepOut<V> };

/** The compiled graphs of one (architecture, tableau, batch, float type). */
export class AdaptiveSessions {
  private constructor(
    readonly config: ModelConfig,
    readonly tab: Tableau,
    readonly batch: number,
    readonly float: FloatType,
    private readonly step: Compiled,
    private readonly stepVjp: Compiled,
    private readonly field: Compiled,
    private readonly fieldVjp: Compiled,
    private readonly head: Compiled,
    private readonly coefficients: readonly number[],
    private readonly timeInput: boolean,
    readonly build: AdaptiveBuild,
  ) {}

  static async create(
    config: ModelConfig,
    tab: Tableau,
    batch: number,
    options: { float?: FloatType; session?: SessionOptions; placement?: boolean } = {},
  ): Promise<AdaptiveSessions> {
    const float = options.float ?? 'float32';
    const nchwcBlock = await nchwcBlockSize(options.session?.device);
    const t0 = performance.now();
    const step = stepGraph(config, tab, { batch, float, nchwcBlock });
    const stepVjp = stepGraph(config, tab, { batch, float, vjp: true, nchwcBlock });
    const field = fieldGraph(architectureModel(config), { float, nchwcBlock });
    paramsToInputs(field, step.params);
    const fieldVjp = fieldVjpGraph(config, { batch, float, nchwcBlock });
    const head = headLossGraph(config, { batch, float });
    const graphs = [step.builder, stepVjp.builder, field, fieldVjp.builder, head.builder];
    const t1 = performance.now();
    const create = async (g: (typeof graphs)[number]) => {
      if (!options.placement)
        return { session: await createSession(g.toBytes(), options.session), nodes: g.nodes.length };
      return { ...(await placedSession(g.toBytes(), options.session ?? {}, batch)), nodes: g.nodes.length };
    };
    const sessions = await Promise.all(graphs.map(create));
    const t2 = performance.now();
    const placements = sessions.flatMap((s) => ('placement' in s ? [s.placement] : []));
    const nodes = graphs.reduce((n, g) => n + g.nodes.length, 0);
    const [s, sv, f, fv, h] = sessions as [Compiled, Compiled, Compiled, Compiled, Compiled];
    return new AdaptiveSessions(config, tab, batch, float, s, sv, f, fv, h, step.coefficients, step.timeInput, {
      nodes,
      graphMs: t1 - t0,
      sessionMs: t2 - t1,
      ...(placements.length > 0 ? { placement: addPlacements(placements) } : {}),
    });
  }

  private get ops(): VectorOps<Vec> {
    return (this.float === 'float32' ? float32Ops : float64Ops) as VectorOps<Vec>;
  }

  private tensor(data: Vec): ort.Tensor {
    return new ort.Tensor(this.float, data, [this.batch, ...this.config.stateShape]);
  }

  private vector(values: readonly number[]): ort.Tensor {
    return new ort.Tensor(
      this.float,
      this.float === 'float32' ? Float32Array.from(values) : Float64Array.from(values),
      [values.length],
    );
  }

  private stepFeeds(
    call: StepCall<Vec>['step'],
    params: Readonly<Record<string, ort.Tensor>>,
  ): Record<string, ort.Tensor> {
    if (call.tab !== this.tab)
      throw new Error(`adaptive sessions of ${this.tab.name} asked for a ${call.tab.name} step`);
    // coef[k] = a·h and t + c_i·h: the very products rkStep forms (step-graph.ts).
    const feeds: Record<string, ort.Tensor> = {
      ...params,
      z: this.tensor(call.z),
      k1: this.tensor(call.k1),
      coef: this.vector(this.coefficients.map((a) => a * call.h)),
    };
    if (this.timeInput) feeds.ts = this.vector(this.tab.c.map((c) => call.t + c * call.h));
    return feeds;
  }

  private fieldFeeds(t: number, z: Vec, params: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { ...params, z: this.tensor(z) };
    if (this.timeInput) feeds.t = this.vector([t]);
    return feeds;
  }

  /**
   * The solve of the integrate loop with compiled steps; `tape` (when given)
   * records every field evaluation and step for the backward pass.
   * `params` holds the field parameters as tensors of the graphs' float type.
   */
  async solve(z0: Vec, spec: Solver | SolverSpec, params: Readonly<Record<string, ort.Tensor>>, tape?: Entry<Vec>[]) {
    const fieldIn = (name: string) => params[name]!;
    const fieldParams: Record<string, ort.Tensor> = {};
    for (const name of Object.keys(params)) if (name.startsWith('field.')) fieldParams[name] = fieldIn(name);
    const { t0, t1 } = this.config;
    return solveAsync(
      this.ops,
      async (t, z) => {
        const r = await this.field.session.run(this.fieldFeeds(t, z, fieldParams), ['dz']);
        const k = r.dz!.data as Vec;
        tape?.push({ kind: 'field', t, z, k });
        return k;
      },
      z0,
      spec,
      { t0, t1, checkFinite: false },
      async (call) => {
        const r = await this.step.session.run(this.stepFeeds(call, fieldParams));
        const z1 = r.z1!.data as Vec;
        const out: StepOut<Vec> = {
          z1,
          err: r.err?.data as Vec | undefined,
          kLast: this.tab.fsal ? (r.kLast!.data as Vec) : z1,
        };
        tape?.push({ kind: 'step', call, out });
        return out;
      },
    );
  }

  /** Loss, accuracy, solve statistics and every parameter gradient of one batch. */
  async lossAndGrads(
    z0: Vec,
    labels: BigInt64Array,
    spec: Solver | SolverSpec,
    params: Readonly<Record<string, ort.Tensor>>,
  ): Promise<AdaptiveLoss> {
    const tape: Entry<Vec>[] = [];
    const r = await this.solve(z0, spec, params, tape);
    const headFeeds: Record<string, ort.Tensor> = {
      z1: this.tensor(r.z1),
      labels: new ort.Tensor('int64', labels, [this.batch]),
    };
    const grads: Record<string, Vec> = {};
    const fieldParams: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(params)) {
      if (name.startsWith('head.')) headFeeds[name] = tensor;
      else fieldParams[name] = tensor;
    }
    const h = await this.head.session.run(headFeeds);
    for (const name of Object.keys(headFeeds))
      if (name.startsWith('head.')) grads[name] = h[GRAD_PREFIX + name]!.data as Vec;
    const cot = new Map<Vec, Vec>([[r.z1, h[`${GRAD_PREFIX}z1`]!.data as Vec]]);
    const addTo = (key: Vec, g: Vec) => {
      const prev = cot.get(key);
      if (!prev) cot.set(key, g);
      else for (let i = 0; i < prev.length; i++) prev[i]! += g[i]!;
    };
    const addParams = (out: ort.InferenceSession.OnnxValueMapType) => {
      for (const name of Object.keys(fieldParams)) {
        const g = out[GRAD_PREFIX + name]!.data as Vec;
        const acc = grads[name];
        if (!acc) grads[name] = g;
        else for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
      }
    };
    const zeros = () => (this.float === 'float32' ? new Float32Array(r.z1.length) : new Float64Array(r.z1.length));
    for (let i = tape.length - 1; i >= 0; i--) {
      const e = tape[i]!;
      if (e.kind === 'step') {
        const gz1 = cot.get(e.out.z1);
        const gk = this.tab.fsal ? cot.get(e.out.kLast) : undefined;
        if (!gz1 && !gk) continue;
        const feeds = this.stepFeeds(e.call, fieldParams);
        feeds.gz1 = this.tensor(gz1 ?? zeros());
        if (this.tab.fsal) feeds.gkLast = this.tensor(gk ?? zeros());
        const out = await this.stepVjp.session.run(feeds);
        addTo(e.call.z, out[`${GRAD_PREFIX}z`]!.data as Vec);
        addTo(e.call.k1, out[`${GRAD_PREFIX}k1`]!.data as Vec);
        addParams(out);
      } else {
        const gk = cot.get(e.k);
        if (!gk) continue;
        const feeds = this.fieldFeeds(e.t, e.z, fieldParams);
        feeds.gk = this.tensor(gk);
        const out = await this.fieldVjp.session.run(feeds);
        addTo(e.z, out[`${GRAD_PREFIX}z`]!.data as Vec);
        addParams(out);
      }
    }
    for (const name of Object.keys(fieldParams))
      grads[name] ??= new (this.float === 'float32' ? Float32Array : Float64Array)(fieldParams[name]!.size);
    return {
      loss: Number((h.loss!.data as Vec)[0]),
      accuracy: Number((h.accuracy!.data as Vec)[0]),
      stats: r.stats,
      grads,
    };
  }

  async release(): Promise<void> {
    for (const c of [this.step, this.stepVjp, this.field, this.fieldVjp, this.head]) await c.session.release();
  }
}
