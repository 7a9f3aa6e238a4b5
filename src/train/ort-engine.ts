/**
 * The ort training engine. Fixed-step solvers: one training step = one
 * onnxruntime session run of the compiled training graph
 * (src/onnx/lower/train-graph.ts) returning loss, accuracy and every parameter
 * gradient. Adaptive solvers: the integrate loop drives compiled step graphs
 * and their vector-Jacobian products (ort-adaptive.ts). Then Adam on typed
 * arrays or as a second graph (adam.ts).
 *
 * Fixed-step sessions are cached per (architecture, solver grid, batch size,
 * threads, device) in a cache the caller may share between engines, so the
 * many jobs of a study that share an architecture build each graph once; a
 * step-size change during adaptation builds (and records) a new one. Adaptive
 * sessions serve every tolerance and step size of a tableau. Parameters travel as inputs: the
 * input tensors wrap the engine's parameter arrays, which Adam updates in
 * place, and the batch is copied into pre-allocated input tensors.
 *
 * Accuracy checks run the bundle's encoder graph, the integrate loop over
 * typed arrays with a field-only session (params as inputs too) or the
 * compiled steps for adaptive solvers, and the bundle's head graph; Hairer's
 * initial step uses the field session. Every session comes from the factory
 * in onnx/runtime, on the engine's device.
 */
import * as ort from 'onnxruntime-node';
import { countCorrect } from '../engines/predictions.js';
import { float32Ops } from '../engines/typed.js';
import { ShapeError } from '../errors.js';
import { fieldKind } from '../models/fields/index.js';
import { trainMicroBatch } from '../models/memory.js';
import { paramShapes } from '../models/params.js';
import { stateSize, type Model, type ModelConfig, type Params } from '../models/types.js';
import { encoderGraph, fieldGraph, headGraph } from '../onnx/lower/model-graphs.js';
import { nchwcBlockSize } from '../onnx/nchwc.js';
import { SessionCache, type Lease, type Releasable } from '../onnx/runtime/cache.js';
import type { Device } from '../onnx/runtime/device.js';
import { placedSession, type Placement } from '../onnx/runtime/placement.js';
import { createSession, type SessionOptions } from '../onnx/runtime/session.js';
import { architectureModel, paramsToInputs, trainGraph } from '../onnx/lower/train-graph.js';
import { initialStepFrom } from '../solvers/initial-step.js';
import { driveAsync, fixedGrid, solveAsync } from '../solvers/integrate.js';
import { asSolver, type FixedSolver, type Solver } from '../solvers/solver.js';
import type { SolverSpec } from '../solvers/spec.js';
import type { Tableau } from '../solvers/tableau.js';
import { Adam, AdamGraph } from './adam.js';
import { AdaptiveSessions } from './ort-adaptive.js';
import {
  meanRowNorm,
  type BatchEval,
  type EngineOptions,
  type EngineStep,
  type GraphBuild,
  type TrainEngine,
} from './engine.js';

// ---------------------------------------------------------------- training sessions

/** A compiled fixed-step training graph and its session. */
export interface TrainSession extends Releasable {
  readonly session: ort.InferenceSession;
  readonly params: readonly string[];
  readonly gradNames: readonly string[];
  readonly nfe: number;
  readonly nodes: number;
  readonly graphMs: number;
  readonly sessionMs: number;
  readonly placement?: Placement;
}

/**
 * Training sessions kept for reuse, owned by whoever runs many trainings (a study worker keeps one per
 * thread so the jobs of a study that share an architecture build each graph once; see SessionCache).
 */
export type TrainSessionCache = SessionCache<TrainSession>;

export function createTrainSessionCache(maxIdle = 8): TrainSessionCache {
  return new SessionCache<TrainSession>(maxIdle);
}

function trainSessionKey(config: ModelConfig, solver: FixedSolver, batch: number, o: SessionOptions): string {
  const grid = fixedGrid(solver.spec, config.t0, config.t1);
  return JSON.stringify({
    config,
    method: solver.spec.method,
    grid,
    batch,
    threads: o.threads ?? 1,
    device: o.device ?? 'cpu',
  });
}

async function buildTrainSession(
  config: ModelConfig,
  solver: FixedSolver,
  batch: number,
  o: SessionOptions,
  placed = false,
): Promise<TrainSession> {
  const nchwcBlock = await nchwcBlockSize(o.device);
  const t0 = performance.now();
  const g = trainGraph(config, solver, { batch, nchwcBlock });
  const t1 = performance.now();
  const bytes = g.builder.toBytes();
  const { session, placement } = placed
    ? await placedSession(bytes, o, batch)
    : { session: await createSession(bytes, o), placement: undefined };
  const t2 = performance.now();
  return {
    session,
    ...(placement ? { placement } : {}),
    params: g.params,
    gradNames: g.params.map((name) => g.outputs.grads[name]!),
    nfe: g.nfe,
    nodes: g.builder.nodes.length,
    graphMs: t1 - t0,
    sessionMs: t2 - t1,
    release: () => session.release(),
  };
}

// ---------------------------------------------------------------- engine

/**
 * From this many parameters on, Adam runs as a second small onnxruntime graph
 * (bit-identical to the typed-array update; measured faster for large models:
 * 529 550 parameters 6.0 vs 10.2 ms, 4 488 parameters 0.27 vs 0.09 ms).
 */
export const ADAM_GRAPH_MIN_PARAMS = 32_768;

export interface OrtEngineOptions extends EngineOptions {
  /** Adam implementation: typed arrays, a second graph, or auto by parameter count (default). */
  readonly optimizer?: 'auto' | 'typed' | 'graph';
  /** Called for every training graph the engine takes into use (built or cached). */
  readonly onGraphBuild?: (build: GraphBuild) => void;
  /** Micro-batch of fixed-step training (a divisor of batchSize; default: trainMicroBatch, sized to the cache). */
  readonly microBatch?: number;
  /** Record where onnxruntime places each graph's nodes (GraphBuild.placement; one profiled run on zeros per build). */
  readonly placement?: boolean;
  /** Where the sessions run (default cpu). */
  readonly device?: Device;
  /**
   * Fixed-step training sessions to share with other engines (the caller's policy: size, trim, clear).
   * Without one the engine keeps its own and releases it on dispose.
   */
  readonly sessions?: TrainSessionCache;
}

export class OrtEngine implements TrainEngine {
  readonly name = 'ort' as const;
  readonly builds: GraphBuild[] = [];
  private readonly names: string[];
  private readonly shapes: (readonly number[])[];
  /**
   * Current parameter tensors, in `names` order (typed Adam updates their arrays in place; the Adam graph returns new
   * ones).
   */
  private tensors: ort.Tensor[];
  private readonly adam: Adam | undefined;
  private adamGraph: AdamGraph | undefined;
  /** Which Adam implementation updates the parameters. */
  readonly optimizer: 'typed' | 'graph';
  private readonly xData: Float32Array;
  private readonly yData: BigInt64Array;
  /** The parameter tensors by name (the training step adds a micro-batch's x and labels). */
  private readonly feeds: Record<string, ort.Tensor>;
  /**
   * Fixed-step training runs the batch as equal micro-batches (views of xData / yData) and averages their gradients.
   */
  readonly microBatch: number;
  private readonly micro: { x: ort.Tensor; labels: ort.Tensor }[];
  /** Gradient sums over the micro-batches (allocated on first use). */
  private gradSums: ort.Tensor[] | undefined;
  private current: { specKey: string; lease: Lease<TrainSession> } | undefined;
  /** The caller's training-session cache, or the engine's own (released on dispose). */
  private readonly sessions: TrainSessionCache;
  private readonly ownsSessions: boolean;
  private field: { session: ort.InferenceSession; names: string[] } | undefined;
  /** The bundle's encoder and head graphs (head parameters as inputs), built on first use. */
  private io: Promise<{ encoder: ort.InferenceSession; head: ort.InferenceSession }> | undefined;
  /** Compiled adaptive steps, per tableau (every tolerance shares them). */
  private readonly adaptive = new Map<string, Promise<AdaptiveSessions>>();
  /** Threads and device of every session this engine creates. */
  private readonly sessionOptions: SessionOptions;
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    initial: Params,
    private readonly o: OrtEngineOptions,
  ) {
    const shapes = paramShapes(config);
    this.names = shapes.map((p) => p.name);
    this.shapes = shapes.map((p) => p.shape);
    const data = this.names.map((n) => Float32Array.from(initial[n]!.data));
    this.tensors = data.map((d, k) => new ort.Tensor('float32', d, [...this.shapes[k]!]));
    const total = data.reduce((s, d) => s + d.length, 0);
    this.optimizer =
      o.optimizer === 'typed' || o.optimizer === 'graph'
        ? o.optimizer
        : total >= ADAM_GRAPH_MIN_PARAMS
          ? 'graph'
          : 'typed';
    const [beta1, beta2] = o.betas ?? [0.9, 0.999];
    this.adam =
      this.optimizer === 'typed'
        ? new Adam(
            data.map((d) => d.length),
            { lr: o.lr, beta1, beta2 },
          )
        : undefined;
    const width = config.inputShape.reduce((a, b) => a * b, 1);
    this.xData = new Float32Array(o.batchSize * width);
    this.yData = new BigInt64Array(o.batchSize);
    this.feeds = {};
    this.names.forEach((n, k) => (this.feeds[n] = this.tensors[k]!));
    this.sessionOptions = { threads: o.threads ?? 1, device: o.device ?? 'cpu' };
    this.ownsSessions = o.sessions === undefined;
    this.sessions = o.sessions ?? createTrainSessionCache();
    // trainMicroBatch sizes micro-batches to a CPU's cache; a GPU takes the whole batch.
    this.microBatch =
      o.microBatch ?? ((o.device ?? 'cpu') === 'cpu' ? trainMicroBatch(config, o.batchSize) : o.batchSize);
    if (!Number.isInteger(this.microBatch) || this.microBatch < 1 || o.batchSize % this.microBatch !== 0) {
      throw new ShapeError(
        `ort engine: micro-batch ${this.microBatch} must be a positive divisor of the batch size ${o.batchSize}`,
      );
    }
    const m = this.microBatch;
    this.micro = Array.from({ length: o.batchSize / m }, (_, k) => ({
      x: new ort.Tensor('float32', this.xData.subarray(k * m * width, (k + 1) * m * width), [m, ...config.inputShape]),
      labels: new ort.Tensor('int64', this.yData.subarray(k * m, (k + 1) * m), [m]),
    }));
  }

  static async create(initial: Model, o: OrtEngineOptions): Promise<OrtEngine> {
    const e = new OrtEngine(initial.config, initial.params, o);
    if (e.optimizer === 'graph') {
      const [beta1, beta2] = o.betas ?? [0.9, 0.999];
      e.adamGraph = await AdamGraph.create(
        e.tensors.map((t) => t.data as Float32Array),
        e.shapes,
        { lr: o.lr, beta1, beta2 },
        e.sessionOptions,
      );
      e.setTensors(e.adamGraph.params);
    }
    return e;
  }

  private setTensors(tensors: ort.Tensor[]): void {
    this.tensors = tensors;
    this.names.forEach((n, k) => (this.feeds[n] = tensors[k]!));
  }

  private async sessionFor(solver: FixedSolver): Promise<TrainSession> {
    const specKey = solver.label;
    if (this.current?.specKey === specKey) return this.current.lease.value;
    const key = trainSessionKey(this.config, solver, this.microBatch, this.sessionOptions);
    const make = () => buildTrainSession(this.config, solver, this.microBatch, this.sessionOptions, this.o.placement);
    const { lease, cached } = await this.sessions.acquire(key, make);
    if (this.current) this.sessions.release(this.current.lease);
    this.current = { specKey, lease };
    const entry = lease.value;
    const build: GraphBuild = {
      solver: specKey,
      batch: this.microBatch,
      nodes: entry.nodes,
      graphMs: cached ? 0 : entry.graphMs,
      sessionMs: cached ? 0 : entry.sessionMs,
      cached,
      ...(entry.placement ? { placement: entry.placement } : {}),
    };
    this.builds.push(build);
    this.o.onGraphBuild?.(build);
    return entry;
  }

  /**
   * The compiled adaptive steps of a tableau for this engine's batch size (built once per engine, recorded as a graph
   * build).
   */
  private adaptiveSessions(tab: Tableau, batch: number): Promise<AdaptiveSessions> {
    const key = `${tab.name}/${batch}`;
    let p = this.adaptive.get(key);
    if (!p) {
      p = AdaptiveSessions.create(this.config, tab, batch, {
        session: this.sessionOptions,
        placement: this.o.placement,
      }).then((s) => {
        const { nodes, graphMs, sessionMs, placement } = s.build;
        const build: GraphBuild = {
          solver: tab.name,
          batch,
          nodes,
          graphMs,
          sessionMs,
          cached: false,
          ...(placement ? { placement } : {}),
        };
        this.builds.push(build);
        this.o.onGraphBuild?.(build);
        return s;
      });
      this.adaptive.set(key, p);
      p.catch(() => this.adaptive.delete(key));
    }
    return p;
  }

  private checkBatch(x: Float32Array, y: Int32Array): void {
    if (y.length !== this.o.batchSize || x.length !== this.xData.length) {
      throw new ShapeError(
        `ort engine: batch of ${y.length} rows × ${x.length / Math.max(1, y.length)} values, ` +
          `expected ${this.o.batchSize} × ${this.xData.length / this.o.batchSize}`,
      );
    }
  }

  private async update(grads: readonly ort.Tensor[]): Promise<void> {
    if (this.adam)
      this.adam.step(
        this.tensors.map((t) => t.data as Float32Array),
        grads.map((g) => g.data as Float32Array),
      );
    else {
      await this.adamGraph!.step(grads);
      this.setTensors(this.adamGraph!.params);
    }
  }

  async step(x: Float32Array, y: Int32Array, spec: Solver | SolverSpec): Promise<EngineStep> {
    const solver = asSolver(spec);
    if (solver.kind === 'adaptive') return this.adaptiveStep(x, y, solver);
    const entry = await this.sessionFor(solver);
    this.checkBatch(x, y);
    this.xData.set(x);
    for (let i = 0; i < y.length; i++) this.yData[i] = BigInt(y[i]!);
    // Equal micro-batches: the batch's mean loss and gradient are the means over the micro-batches.
    const whole = this.micro.length === 1;
    const sums = whole
      ? []
      : (this.gradSums ??= this.shapes.map(
          (shape) => new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), [...shape]),
        ));
    let grads = sums;
    let loss = 0;
    let accuracy = 0;
    for (let k = 0; k < this.micro.length; k++) {
      const r = await entry.session.run({ ...this.feeds, ...this.micro[k]! });
      loss += (r.loss!.data as Float32Array)[0]!;
      accuracy += (r.accuracy!.data as Float32Array)[0]!;
      if (whole) grads = entry.gradNames.map((g) => r[g]!);
      else
        entry.gradNames.forEach((g, i) => {
          const sum = sums[i]!.data as Float32Array;
          const part = r[g]!.data as Float32Array;
          if (k === 0) sum.set(part);
          else for (let j = 0; j < sum.length; j++) sum[j]! += part[j]!;
        });
    }
    if (!whole) {
      const scale = 1 / this.micro.length;
      for (const t of sums) {
        const d = t.data as Float32Array;
        for (let j = 0; j < d.length; j++) d[j]! *= scale;
      }
      loss *= scale;
      accuracy *= scale;
    }
    if (Number.isFinite(loss)) await this.update(grads);
    return { loss, accuracy, nfe: entry.nfe };
  }

  /**
   * An adaptive step: the integrate loop on compiled steps forwards, their VJPs backwards through every accepted step.
   */
  private async adaptiveStep(x: Float32Array, y: Int32Array, solver: Solver): Promise<EngineStep> {
    this.checkBatch(x, y);
    const s = await this.adaptiveSessions(solver.tableau, this.o.batchSize);
    for (let i = 0; i < y.length; i++) this.yData[i] = BigInt(y[i]!);
    const params: Record<string, ort.Tensor> = {};
    this.names.forEach((n, k) => (params[n] = this.tensors[k]!));
    const r = await s.lossAndGrads(await this.encode(x, y.length), this.yData, solver, params);
    if (Number.isFinite(r.loss))
      await this.update(
        this.names.map((n, k) => new ort.Tensor('float32', r.grads[n] as Float32Array, [...this.shapes[k]!])),
      );
    return { loss: r.loss, accuracy: r.accuracy, nfe: r.stats.nfe };
  }

  private fieldParams(): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    this.names.forEach((n, k) => {
      if (n.startsWith('field.')) out[n] = this.tensors[k]!;
    });
    return out;
  }

  private async fieldSession() {
    if (!this.field) {
      const b = fieldGraph(architectureModel(this.config), {
        nchwcBlock: await nchwcBlockSize(this.sessionOptions.device),
      });
      const names = this.names.filter((n) => n.startsWith('field.'));
      paramsToInputs(b, names);
      const session = await createSession(b.toBytes(), this.sessionOptions);
      this.field = { session, names };
    }
    return this.field;
  }

  /** f(t, z) for a batch of canonical (row-major, CHW) states. */
  private async fieldAt(t: number, z: Float32Array, batch: number): Promise<Float32Array> {
    const f = await this.fieldSession();
    const feeds: Record<string, ort.Tensor> = { z: new ort.Tensor('float32', z, [batch, ...this.config.stateShape]) };
    for (const n of f.names) feeds[n] = this.feeds[n]!;
    if (fieldKind(this.config.field).usesTime(this.config.field))
      feeds.t = new ort.Tensor('float32', Float32Array.of(t), [1]);
    const r = await f.session.run(feeds, ['dz']);
    return r.dz!.data as Float32Array;
  }

  /** The encoder and head as sessions: the graphs a bundle holds, not a copy of them. */
  private ioSessions(): Promise<{ encoder: ort.InferenceSession; head: ort.InferenceSession }> {
    this.io ??= (async () => {
      const model = architectureModel(this.config);
      const head = headGraph(model);
      paramsToInputs(head, ['head.weight', 'head.bias']);
      const encoder = await createSession(encoderGraph(model).toBytes(), this.sessionOptions);
      return { encoder, head: await createSession(head.toBytes(), this.sessionOptions) };
    })();
    return this.io;
  }

  /** z(t0) of a batch: the encoder graph (zero-augmentation in the canonical layout). */
  private async encode(x: Float32Array, batch: number): Promise<Float32Array> {
    const { encoder } = await this.ioSessions();
    const r = await encoder.run({ x: new ort.Tensor('float32', x, [batch, ...this.config.inputShape]) }, ['z']);
    return r.z!.data as Float32Array;
  }

  /** Logits of a batch of final states: the head graph with the current head parameters. */
  private async logits(z: Float32Array, batch: number): Promise<Float32Array> {
    const { head } = await this.ioSessions();
    const feeds = {
      z: new ort.Tensor('float32', z, [batch, ...this.config.stateShape]),
      'head.weight': this.feeds['head.weight']!,
      'head.bias': this.feeds['head.bias']!,
    };
    return (await head.run(feeds, ['logits'])).logits!.data as Float32Array;
  }

  async accuracy(x: Float32Array, y: Int32Array, spec: Solver | SolverSpec): Promise<BatchEval> {
    const solver = asSolver(spec);
    const batch = y.length;
    const { t0, t1 } = this.config;
    const z0 = await this.encode(x, batch);
    const r =
      solver.kind === 'adaptive'
        ? await (await this.adaptiveSessions(solver.tableau, batch)).solve(z0, solver, this.fieldParams())
        : await solveAsync(float32Ops, (t, z) => this.fieldAt(t, z, batch), z0, solver, { t0, t1, checkFinite: true });
    const logits = await this.logits(r.z1 as Float32Array, batch);
    return { accuracy: countCorrect(logits, y, this.config.classes) / batch, nfe: r.stats.nfe };
  }

  async initialStep(x: Float32Array, order: number): Promise<number> {
    const batch = x.length / this.config.inputShape.reduce((a, b) => a * b, 1);
    const S = stateSize(this.config);
    const norm = (v: Float32Array) => meanRowNorm(v, batch, S);
    return driveAsync(initialStepFrom(float32Ops, norm, order, this.config.t0, await this.encode(x, batch)), (t, z) =>
      this.fieldAt(t, z, batch),
    );
  }

  params(): Params {
    const out: Params = {};
    this.names.forEach(
      (n, k) => (out[n] = { shape: [...this.shapes[k]!], data: (this.tensors[k]!.data as Float32Array).slice() }),
    );
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.current) this.sessions.release(this.current.lease);
    this.current = undefined;
    if (this.ownsSessions) await this.sessions.clear();
    if (this.field) await this.field.session.release();
    this.field = undefined;
    const io = await this.io?.catch(() => undefined);
    if (io) await Promise.all([io.encoder.release(), io.head.release()]);
    this.io = undefined;
    if (this.adamGraph) await this.adamGraph.release();
    for (const p of this.adaptive.values()) await (await p.catch(() => undefined))?.release();
    this.adaptive.clear();
    this.adamGraph = undefined;
  }
}
