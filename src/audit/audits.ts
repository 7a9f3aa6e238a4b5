/**
 * The solver-robustness audits on a model source: discrete trajectories,
 * crossing pairs (+ the fold check), and Lady Windermere's fan. All run the
 * one integrate loop on the float64 typed-array engine; the field itself is
 * evaluated in float32 (the model's precision).
 */
import { SpecError } from '../errors.js';
import { float64Ops } from '../engines/typed.js';
import { fixedSolveNfe } from '../solvers/solver.js';
import { solveAsync, type SolveStats } from '../solvers/integrate.js';
import { checkStepBudget, formatSolverSpec, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import type { AsyncField } from '../solvers/vector.js';
import { countCrossings, type CrossingResult } from './crossing.js';
import { DEFAULT_REFINE_MAX_EVENTS, refineCrossings, type Refinement, type SubSolve } from './refine.js';
import { fanStats, type FanResult } from './fan.js';
import { foldCheck, type FoldResult } from './fold.js';
import { requireField, type AuditData, type ModelSource } from './source.js';
import { crossingVerdict, type Verdict } from './verdict.js';

export interface Trajectories {
  readonly times: number[];
  /** states[k] = all n states at times[k], row-major [n × S]. */
  readonly states: Float64Array[];
  readonly stats: SolveStats;
  readonly n: number;
  readonly d: number;
}

/** Evaluate a float32 field on float64 states. */
function float64Field(field: AsyncField<Float32Array>): AsyncField<Float64Array> {
  return async (t, z) => Float64Array.from(await field(t, Float32Array.from(z)));
}

/**
 * What every audit accepts: a signal that stops it at its next field call (a cancelled study job, Ctrl-C), and
 * progress.
 */
export interface AuditRunOptions {
  readonly signal?: AbortSignal;
  /** Called as the audit's phases advance: the phase, and its field calls so far (of `total` when known). */
  readonly onProgress?: (phase: string, calls: number, total?: number) => void;
}

const withSignal = (o: AuditRunOptions) => (o.signal ? { signal: o.signal } : {});

/** The source's field on float64 states, counting its calls for onProgress under `phase`. */
function auditField(
  source: ModelSource,
  n: number,
  options: AuditRunOptions,
  phase: string,
  total?: number,
): AsyncField<Float64Array> {
  const field = float64Field(source.field(n));
  const report = options.onProgress;
  if (!report) return field;
  let calls = 0;
  return async (t, z) => {
    const out = await field(t, z);
    report(phase, ++calls, total);
    return out;
  };
}

/** An audit needs the field, and its interval within the step ceiling, before any work. */
function checkAuditable(source: ModelSource, spec: SolverSpec, what: string): void {
  requireField(source, what);
  checkStepBudget(spec, source.t0, source.t1);
}

export async function trajectories(
  source: ModelSource,
  data: AuditData,
  spec: SolverSpec,
  options: AuditRunOptions = {},
): Promise<Trajectories> {
  checkAuditable(source, spec, 'a trajectory audit');
  const z0 = Float64Array.from(await source.encode(data.x, data.n));
  const field = auditField(source, data.n, options, 'trajectories', fixedSolveNfe(spec, source.t0, source.t1));
  const r = await solveAsync(float64Ops, field, z0, spec, {
    t0: source.t0,
    t1: source.t1,
    record: true,
    ...withSignal(options),
  });
  const d = z0.length / data.n;
  return { times: r.trajectory!.t, states: r.trajectory!.z, stats: r.stats, n: data.n, d };
}

export interface CrossingAudit extends Omit<CrossingResult, 'pca' | 'events'> {
  readonly solver: string;
  readonly nfe: number;
  /** Human-readable note on what was tested (exact 2-D, 1-D order, or a PCA projection). */
  readonly note: string;
  readonly fold?: Omit<FoldResult, 'determinants'>;
  /** Crossing events re-solved finely (2-D states): artefacts vs persistent crossings. */
  readonly refinement?: Refinement;
  /** What the evidence allows to conclude, and what that rests on. */
  readonly verdict: Verdict;
  readonly trajectories?: Trajectories;
}

/** The refining solver: a fixed-step method far finer than any audited step once sub-divided. */
const REFINE_METHOD = 'rk4';

/** Above this state dimension the fold check (N·2d evaluations and a d×d determinant per state) is opt-in. */
export const FOLD_AUTO_MAX_DIM = 64;

export interface CrossingAuditOptions extends AuditRunOptions {
  /** Fold check; default on for states of up to FOLD_AUTO_MAX_DIM dimensions. */
  readonly fold?: boolean;
  readonly differentSteps?: boolean;
  /** Re-solve 2-D crossing pairs finely to tell persistent crossings from chord artefacts (default true). */
  readonly refine?: boolean;
  /** Return the trajectories too (for plots). */
  readonly keepTrajectories?: boolean;
}

export async function crossingAudit(
  source: ModelSource,
  data: AuditData,
  spec: SolverSpec,
  options: CrossingAuditOptions = {},
): Promise<CrossingAudit> {
  if (data.n < 2) throw new SpecError(`a crossing audit needs at least 2 points, got ${data.n}`);
  const tr = await trajectories(source, data, spec, options);
  const refine = (options.refine ?? true) && tr.d === 2;
  const {
    pca: _pca,
    events,
    ...result
  } = countCrossings(tr.states, {
    n: tr.n,
    d: tr.d,
    differentSteps: options.differentSteps ?? false,
    listEvents: refine ? DEFAULT_REFINE_MAX_EVENTS : false,
  });
  let refinement: Refinement | undefined;
  if (refine && events && events.length > 0) {
    const solveSub: SubSolve = async (z, m, k, substeps) => {
      const field = auditField(source, m, options, 'refining crossings');
      const r = await solveAsync(
        float64Ops,
        field,
        z,
        { kind: 'fixed', method: REFINE_METHOD, steps: substeps },
        { t0: tr.times[k]!, t1: tr.times[k + 1]!, record: true, ...withSignal(options) },
      );
      return r.trajectory!.z;
    };
    refinement = await refineCrossings(events, tr.states, tr.n, solveSub, { totalPairs: result.crossings });
  }
  let fold: CrossingAudit['fold'];
  if (options.fold ?? tr.d <= FOLD_AUTO_MAX_DIM) {
    const method = spec.method;
    const times = tr.times;
    const step = async (z: Float64Array, n: number, _d: number, k: number) => {
      const one: SolverSpec = spec.kind === 'fixed' ? { kind: 'fixed', method, steps: 1 } : spec;
      const r = await solveAsync(
        float64Ops,
        auditField(source, n, options, `fold check, step ${k + 1} of ${times.length - 1}`),
        z,
        one,
        { t0: times[k]!, t1: times[k + 1]!, ...withSignal(options) },
      );
      return r.z1;
    };
    const { determinants: _det, ...f } = await foldCheck(step, tr.states, { n: tr.n, d: tr.d });
    fold = f;
  }
  const verdict = crossingVerdict({
    solver: formatSolverSpec(spec),
    stepMap: spec.kind,
    d: tr.d,
    crossings: result.crossings,
    touchingPairs: result.touchingPairs,
    projected: result.projected,
    fold,
    refinement,
  });
  return {
    ...result,
    solver: formatSolverSpec(spec),
    nfe: tr.stats.nfe,
    note: crossingNote(tr.d, result.explainedVariance),
    ...(fold ? { fold } : {}),
    ...(refinement ? { refinement } : {}),
    verdict,
    ...(options.keepTrajectories ? { trajectories: tr } : {}),
  };
}

/** What the crossing count tested: exact in 1-D and 2-D, a projection above. */
function crossingNote(d: number, explainedVariance: number): string {
  if (d === 1) return 'exact: order changes of 1-D trajectories within a step';
  if (d === 2) return 'exact: 2-D chord intersections over the same step';
  return (
    'projection: 2-D segment intersections of the projection onto the 2 leading principal components ' +
    `(${(100 * explainedVariance).toFixed(1)} % of the variance); a crossing in the projection need not ` +
    `be one in ${d}-D`
  );
}

export const DEFAULT_FAN_REFERENCE = 'dopri5:rtol=1e-8,atol=1e-10';

/** Audited points per study job and per model of `audit critical`: a clear signal, cheap enough for every job. */
export const AUDIT_POINTS = 500;

export interface FanAudit extends Omit<FanResult, 'errors'> {
  readonly solver: string;
  readonly reference: string;
  readonly nfe: number;
  readonly referenceNfe: number;
}

/**
 * Global error z_h(t_k) − z(t_k) of the solver's trajectory against a
 * tight-tolerance float64 reference at the same times, summarised per class.
 */
export async function fanAudit(
  source: ModelSource,
  data: AuditData,
  spec: SolverSpec,
  reference: SolverSpec = parseSolverSpec(DEFAULT_FAN_REFERENCE),
  options: AuditRunOptions = {},
): Promise<FanAudit> {
  if (data.n < 1) throw new SpecError('a fan audit needs at least 1 point');
  checkAuditable(source, reference, 'the fan audit');
  const tr = await trajectories(source, data, spec, options);
  const z0 = tr.states[0]!;
  const ref = await solveAsync(float64Ops, auditField(source, data.n, options, 'reference solve'), z0, reference, {
    t0: source.t0,
    t1: source.t1,
    times: tr.times,
    ...withSignal(options),
  });
  const { errors: _e, ...fan } = fanStats(tr.states, ref.zs, data.y, {
    n: tr.n,
    d: tr.d,
    times: tr.times,
    keepErrors: false,
  });
  return {
    ...fan,
    solver: formatSolverSpec(spec),
    reference: formatSolverSpec(reference),
    nfe: tr.stats.nfe,
    referenceNfe: ref.stats.nfe,
  };
}
