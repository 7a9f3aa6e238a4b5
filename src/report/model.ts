/**
 * The report model: a pure function from a study's typed results (and its
 * plan) to everything the report shows — no I/O, no rendering. The HTML page
 * (html.ts, sections.ts) and report.json are two renderings of it.
 *
 * Grouping: per (dataset, field), per training method (euler, rk4, dopri5, …):
 *  - grid configurations (one training spec, means over seeds with spread),
 *    their cross-solver evaluations and audits;
 *  - the critical step size / tolerance (audit/critical.ts), censored when it
 *    is the largest value tested ("≥") or when even the smallest fails ("<"),
 *    by two criteria side by side: the paper's (accuracy) and proof-aware
 *    (a configuration the audits proved no ODE flow fails) — the answer is the
 *    proof-aware one, and where they differ the report says why; a model at
 *    chance accuracy never passes either;
 *  - the adaptation runs of the method, each (dataset, field, method, seed,
 *    start) counted once even if an older plan ran duplicates;
 *  - the paper's Table 1: the grid's cheapest configuration that keeps ODE
 *    semantics (at or below the critical value) against the adaptation run.
 */
import {
  atLeastAsAccurate,
  checkThreshold,
  criticalStep,
  DEFAULT_THRESHOLD,
  type CriticalCriterion,
  type CriticalResult,
  type CriticalRow,
} from '../audit/critical.js';
import { crossingVerdict, type Verdict } from '../audit/verdict.js';
import { displaySpec, fixedStepCount, parseSolverSpec, solverParam, type SolverSpec } from '../solvers/spec.js';
import type { AdaptStart, EvalRow, Job, JobResult } from '../study/types.js';
import { groupBy, spread, type Spread } from './stats.js';
import type { PlanOverrides } from '../formats/index.js';

export interface ReportPlan {
  readonly name?: string;
  readonly jobs: readonly Job[];
  /** Canonical hash of the study the directory belongs to. */
  readonly studyHash?: string;
  /** `study run --iterations/--test-points/--batch-size`: values of the study file were overridden (a smoke run). */
  readonly overrides?: PlanOverrides;
}

/** A run in progress (live report): what is running right now. */
export interface ReportLive {
  readonly running: number;
  readonly startedAt?: string;
  /** The process writing the page, so a reader can check it. */
  readonly pid?: number;
  readonly host?: string;
}

/** The run that wrote the directory died (its lock outlived its process): the page says so instead of "running". */
export interface ReportDeadRun {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

export interface ReportInput {
  readonly results: readonly JobResult[];
  readonly plan?: ReportPlan;
  readonly live?: ReportLive;
  readonly deadRun?: ReportDeadRun;
}

export interface ReportOptions {
  /** Accuracy difference for the critical step size, in (0, 1). Default 0.1. */
  readonly threshold?: number;
  readonly title?: string;
  /** Time stamp shown on the page (default: now). */
  readonly generatedAt?: string;
}

export interface JobRow {
  readonly id: string;
  readonly dataset: string;
  readonly field: string;
  /** The job's training spec (the start for adaptation runs). */
  readonly trainSpec: string;
  readonly method: string;
  readonly adapt: boolean;
  readonly adaptStart?: AdaptStart;
  readonly seed: number;
  readonly iterations: number;
  readonly status: 'done' | 'failed';
  readonly error?: string;
  /** Final training solver (differs from trainSpec for adaptation runs). */
  readonly finalSpec?: string;
  readonly trainAccuracy?: number;
  readonly trainNfe?: number;
  readonly evals: readonly EvalRow[];
  readonly ms: number;
  readonly worker: string;
}

export interface EvalSummary {
  readonly spec: string;
  readonly solver: string;
  readonly param: number;
  readonly steps?: number;
  readonly accuracy: Spread;
  readonly nfe: number;
  /** At least as accurate as the training solver: it judges ODE semantics (critical step). */
  readonly judges: boolean;
}

export interface CrossingSeed {
  readonly seed: number;
  readonly id: string;
  /** The solver this seed's model was audited under (adaptation runs end at different ones). */
  readonly solver: string;
  readonly crossings: number;
  /** Of the crossing pairs, those that persist when re-solved finely (proof); absent when not refined. */
  readonly persistent?: number;
  readonly pairsChecked: number;
  readonly projected: boolean;
  readonly folded?: number;
  readonly foldStates?: number;
  readonly verdict: Verdict;
}

export interface FanClassSummary {
  readonly label: number;
  /** Global error at t1 of the class's points: mean over points, then over seeds. */
  readonly finalMean: Spread;
  readonly finalMax: number;
}

export interface AuditSummary {
  readonly crossing?: {
    readonly solver: string;
    readonly points: number;
    readonly note: string;
    readonly seeds: readonly CrossingSeed[];
  };
  readonly fan?: {
    readonly solver: string;
    /** Each seed's audited solver (adaptation runs end at different ones). */
    readonly seeds: readonly { readonly seed: number; readonly solver: string }[];
    readonly reference: string;
    readonly perClass: readonly FanClassSummary[];
    /** Global error over t per class (mean over seeds where their times agree, else the first seed's). */
    readonly series?: {
      readonly times: readonly number[];
      readonly perClass: readonly { readonly label: number; readonly mean: readonly number[] }[];
    };
  };
}

/** One grid configuration: a training spec, its seeds aggregated. */
export interface ConfigSummary {
  readonly trainSpec: string;
  /** h (1/steps over [0, 1]) or tol. */
  readonly param: number;
  /** Step count of a fixed-step spec. */
  readonly steps?: number;
  readonly seeds: readonly number[];
  readonly jobIds: readonly string[];
  readonly trainAccuracy?: Spread;
  readonly trainNfe?: Spread;
  readonly evals: readonly EvalSummary[];
  readonly audits: AuditSummary;
}

/** The critical value by one criterion. */
export interface CriticalAnswer {
  readonly criterion: CriticalCriterion;
  readonly value: number | null;
  /**
   * 'above': the largest tested value passes, the true critical value may be larger (≥); 'below': even the smallest
   * fails (<).
   */
  readonly censored: 'above' | 'below' | null;
  readonly result: CriticalResult;
}

/** A tested value the paper's criterion passes and the proof-aware one fails: the proofs. */
export interface CriticalDisagreement {
  readonly param: number;
  readonly trainSpec: string;
  /** Each proven row: its job, seed and the verdict's text. */
  readonly proofs: readonly { readonly id: string; readonly seed: number; readonly text: string }[];
}

/**
 * The one answer of a (dataset, field, method): proof-aware (value, censored,
 * result), with the paper's accuracy criterion beside it and where they differ.
 */
export interface CriticalSummary extends CriticalAnswer {
  readonly kind: 'step' | 'tol';
  readonly smallestTested: number;
  readonly largestTested: number;
  /** The paper's accuracy criterion alone (with the chance rule). */
  readonly accuracy: CriticalAnswer;
  /**
   * Values that pass the paper's criterion but are proven no ODE flow; empty when the criteria agree on every
   * value.
   */
  readonly disagreements: readonly CriticalDisagreement[];
  /** Rows left out of both for being at chance accuracy (counted, never passing). */
  readonly atChance: number;
}

export interface AdaptationRun {
  readonly id: string;
  readonly seed: number;
  readonly finalSpec: string;
  /** The audits' proof that the final solver's model is no ODE flow (the verdict's text), when they found one. */
  readonly nonFlow?: string;
  readonly finalParam: number;
  readonly trainAccuracy: number;
  readonly trainNfe: number;
  readonly trace: readonly { iteration: number; param: number; trainAccuracy: number; testAccuracy: number }[];
}

export interface AdaptationSummary {
  readonly kind: 'step' | 'tol';
  /** Where the runs start: "Hairer's initial step" or a spec. */
  readonly start: string;
  readonly runs: readonly AdaptationRun[];
  readonly trainAccuracy?: Spread;
  readonly trainNfe?: Spread;
  readonly finalParam?: Spread;
  readonly audits: AuditSummary;
  /** Results that repeat an already counted (dataset, field, method, seed, start): ignored. */
  readonly duplicates: number;
}

/** The paper's Table 1 row of one method. */
export interface Comparison {
  /** The grid's cheapest configuration at or below the critical value (null when none keeps ODE semantics). */
  readonly grid: {
    readonly trainSpec: string;
    readonly param: number;
    readonly trainAccuracy?: Spread;
    readonly trainNfe?: Spread;
  } | null;
  /** The whole grid search's training NFE per seed (every configuration must be trained to find the critical value). */
  readonly gridSearchNfe?: Spread;
  readonly adaptation: {
    readonly trainAccuracy?: Spread;
    readonly trainNfe?: Spread;
    readonly finalParam?: Spread;
    /** Runs whose final solver the audits proved no ODE flow, of `runs` (Table 1 marks them). */
    readonly provenNonFlow: number;
    readonly runs: number;
  };
}

export interface MethodSection {
  readonly method: string;
  readonly kind: 'step' | 'tol';
  /** Grid configurations, largest parameter first. */
  readonly configs: readonly ConfigSummary[];
  readonly critical?: CriticalSummary;
  readonly adaptation?: AdaptationSummary;
  readonly comparison?: Comparison;
  /** Distinct tolerances among adaptive test solvers: an accuracy-vs-1/tol figure needs at least two. */
  readonly testTolerances: number;
}

export interface Section {
  readonly dataset: string;
  readonly field: string;
  readonly methods: readonly MethodSection[];
}

export interface ReportModel {
  readonly title: string;
  readonly generatedAt: string;
  readonly threshold: number;
  readonly plan?: {
    readonly name?: string;
    readonly studyHash?: string;
    readonly overrides?: PlanOverrides;
    readonly jobs: number;
  };
  readonly counts: {
    readonly planned?: number;
    readonly done: number;
    readonly failed: number;
    readonly pending?: number;
    readonly notInPlan: number;
  };
  readonly live?: ReportLive;
  readonly deadRun?: ReportDeadRun;
  readonly sections: readonly Section[];
  /** Every result of the plan (or every result, without a plan), planned jobs without a result excluded. */
  readonly jobs: readonly JobRow[];
  /** Results whose job is not in the plan (another or an edited study): listed, never analysed. */
  readonly notInPlan: readonly JobRow[];
}

export function methodOf(spec: string): string {
  return spec.split(':')[0]!.trim();
}

function parse(spec: string): SolverSpec | undefined {
  try {
    return parseSolverSpec(spec);
  } catch {
    return undefined; // a spec this version cannot parse: shown, not analysed
  }
}

function jobRow(r: JobResult): JobRow {
  const m = r.metrics;
  return {
    id: r.id,
    dataset: r.job.dataset,
    field: r.job.field,
    trainSpec: r.job.trainSolver,
    method: methodOf(r.job.trainSolver),
    adapt: r.job.adapt,
    ...(r.job.adaptStart ? { adaptStart: r.job.adaptStart } : {}),
    seed: r.job.seed,
    iterations: r.job.iterations,
    status: r.status,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(m ? { finalSpec: m.trainSolver, trainAccuracy: m.trainAccuracy, trainNfe: m.nfe.total } : {}),
    evals: m?.evals ?? [],
    ms: r.timings.ms,
    worker: r.worker,
  };
}

/** The evaluation is the training solver itself (same spec, or same method and parameter). */
function isOwn(train: SolverSpec, e: EvalRow): boolean {
  if (e.solver !== train.method) return false;
  const p = solverParam(train);
  return Math.abs(e.param - p) <= 1e-9 * Math.abs(p);
}

function summariseEvals(train: SolverSpec, trainSpec: string, results: readonly JobResult[]): EvalSummary[] {
  const bySpec = groupBy(
    results.flatMap((r) => r.metrics!.evals),
    (e) => e.spec,
  );
  return [...bySpec.values()].map((es) => {
    const e = es[0]!;
    return {
      spec: e.spec,
      solver: e.solver,
      param: e.param,
      ...(e.steps !== undefined ? { steps: e.steps } : {}),
      accuracy: spread(es.map((x) => x.accuracy))!,
      nfe: e.nfe,
      judges: !isOwn(train, e) && atLeastAsAccurate(trainSpec, e.spec),
    };
  });
}

function summariseAudits(results: readonly JobResult[]): AuditSummary {
  const withCrossing = results.filter((r) => r.metrics?.audits?.crossing);
  const withFan = results.filter((r) => r.metrics?.audits?.fan);
  const out: { crossing?: AuditSummary['crossing']; fan?: AuditSummary['fan'] } = {};
  if (withCrossing.length > 0) {
    const first = withCrossing[0]!.metrics!.audits!.crossing!;
    out.crossing = {
      solver: first.solver,
      points: first.points,
      note: first.note,
      seeds: withCrossing.map(crossingSeed),
    };
  }
  if (withFan.length > 0) out.fan = fanSummary(withFan);
  return out;
}

/** One seed's crossing audit, with the verdict it recorded (or, for older results, weighed again on what they kept). */
function crossingSeed(r: JobResult): CrossingSeed {
  const c = r.metrics!.audits!.crossing!;
  const fold =
    c.folded !== undefined && c.foldStates !== undefined
      ? { folded: c.folded, states: c.foldStates, minDet: c.minDet ?? NaN }
      : undefined;
  return {
    seed: r.job.seed,
    id: r.id,
    solver: c.solver,
    crossings: c.crossings,
    ...(c.refinement ? { persistent: c.refinement.persistentPairs } : {}),
    pairsChecked: c.pairsChecked,
    projected: c.projected,
    ...(fold ? { folded: fold.folded, foldStates: fold.states } : {}),
    // The verdict the audit reached; results written before it was recorded are weighed again on what they kept.
    // Written before specs were printed rounded: the exact solver in the text is shown as people write it.
    verdict:
      (c.verdict && {
        ...c.verdict,
        text: c.verdict.text.replace(` under ${c.solver}`, ` under ${displaySpec(c.solver)}`),
      }) ??
      crossingVerdict({
        solver: c.solver,
        stepMap: parse(c.solver)?.kind ?? 'fixed',
        d: c.d ?? (c.projected ? 3 : 2),
        crossings: c.crossings,
        ...(c.touchingPairs !== undefined ? { touchingPairs: c.touchingPairs } : {}),
        projected: c.projected,
        ...(fold ? { fold } : {}),
        ...(c.refinement ? { refinement: c.refinement } : {}),
      }),
  };
}

type FanAudit = NonNullable<NonNullable<NonNullable<JobResult['metrics']>['audits']>['fan']>;

/** The fan audits of a configuration's seeds: the final error per class over seeds, and the mean series. */
function fanSummary(withFan: readonly JobResult[]): NonNullable<AuditSummary['fan']> {
  const fans = withFan.map((r) => r.metrics!.audits!.fan!);
  const labels = [...new Set(fans.flatMap((f) => f.final.perClass.map((c) => c.label)))].sort((a, b) => a - b);
  const perClass = labels.map((label) => {
    const cs = fans.flatMap((f) => f.final.perClass.filter((c) => c.label === label));
    return { label, finalMean: spread(cs.map((c) => c.mean))!, finalMax: Math.max(...cs.map((c) => c.max)) };
  });
  const series = meanFanSeries(fans);
  const seeds = withFan.map((r) => ({ seed: r.job.seed, solver: r.metrics!.audits!.fan!.solver }));
  return {
    solver: fans[0]!.solver,
    seeds,
    reference: fans[0]!.reference,
    perClass,
    ...(series ? { series } : {}),
  };
}

/** The per-class mean error against t, averaged over the seeds on the first seed's time grid; undefined without. */
function meanFanSeries(fans: readonly FanAudit[]): NonNullable<AuditSummary['fan']>['series'] {
  const withSeries = fans.filter((f) => f.series);
  if (withSeries.length === 0) return undefined;
  const times = withSeries[0]!.series!.times;
  const same = withSeries.filter(
    (f) => f.series!.times.length === times.length && f.series!.times.every((t, k) => Math.abs(t - times[k]!) < 1e-12),
  );
  return {
    times,
    perClass: withSeries[0]!.series!.perClass.map((c) => ({
      label: c.label,
      mean: times.map((_, k) => {
        const vals = same.flatMap((f) => f.series!.perClass.filter((x) => x.label === c.label).map((x) => x.mean[k]!));
        return vals.reduce((s, v) => s + v, 0) / vals.length;
      }),
    })),
  };
}

function configSummary(trainSpec: string, results: readonly JobResult[]): ConfigSummary | undefined {
  const train = parse(trainSpec);
  if (!train) return undefined;
  const sorted = [...results].sort((a, b) => a.job.seed - b.job.seed);
  return {
    trainSpec,
    param: solverParam(train),
    ...(train.kind === 'fixed' ? { steps: fixedStepCount(train) } : {}),
    seeds: sorted.map((r) => r.job.seed),
    jobIds: sorted.map((r) => r.id),
    ...optional('trainAccuracy', spread(sorted.map((r) => r.metrics!.trainAccuracy))),
    ...optional('trainNfe', spread(sorted.map((r) => r.metrics!.nfe.total))),
    evals: summariseEvals(train, trainSpec, sorted),
    audits: summariseAudits(sorted),
  };
}

function optional<K extends string, V>(key: K, v: V | undefined): { [k in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [k in K]?: V };
}

/** The audits' proof that a job's model is no ODE flow (its crossing verdict's text), if any. */
export function nonFlowProof(r: JobResult): string | undefined {
  const c = r.metrics?.audits?.crossing;
  if (!c) return undefined;
  const verdict = c.verdict ?? summariseAudits([r]).crossing?.seeds[0]?.verdict;
  return verdict?.conclusion === 'not-an-ode-flow' ? verdict.text : undefined;
}

/**
 * Chance accuracy (1/classes) of a job's task: recorded by the job, else the
 * fan audit's classes, else the dataset family's (spheres 2, MNIST/CIFAR-10 10).
 */
export function chanceOf(r: JobResult): number | undefined {
  const m = r.metrics;
  const fanClasses = m?.audits?.fan?.final.perClass.length;
  const family = r.job.dataset.split(':')[0];
  const classes =
    m?.classes ??
    (fanClasses && fanClasses > 1
      ? fanClasses
      : family === 'spheres'
        ? 2
        : family === 'mnist' || family === 'cifar10'
          ? 10
          : undefined);
  return classes ? 1 / classes : undefined;
}

function answer(
  rows: readonly CriticalRow[],
  criterion: CriticalCriterion,
  kind: 'step' | 'tol',
  threshold: number,
): CriticalAnswer {
  const result = criticalStep(rows, { threshold, kind, criterion });
  const largestTested = result.params.at(-1)!.param;
  const censored = result.critical === null ? 'below' : result.critical === largestTested ? 'above' : null;
  return { criterion, value: result.critical, censored, result };
}

function critical(
  configs: readonly ConfigSummary[],
  results: ReadonlyMap<string, JobResult>,
  kind: 'step' | 'tol',
  threshold: number,
): CriticalSummary | undefined {
  const rows: CriticalRow[] = configs.flatMap((c) =>
    c.jobIds.flatMap((id) => {
      const r = results.get(id)!;
      const train = parse(c.trainSpec)!;
      const tests = r
        .metrics!.evals.filter((e) => !isOwn(train, e) && atLeastAsAccurate(c.trainSpec, e.spec))
        .map((e) => ({ spec: e.spec, accuracy: e.accuracy }));
      const chance = chanceOf(r);
      const nonFlow = nonFlowProof(r);
      const row = {
        id,
        trainSpec: c.trainSpec,
        trainParam: c.param,
        trainAccuracy: r.metrics!.trainAccuracy,
        tests,
        ...(chance !== undefined ? { chance } : {}),
        ...(nonFlow ? { nonFlow } : {}),
      };
      return tests.length > 0 && c.param > 0 ? [row] : [];
    }),
  );
  if (rows.length === 0) return undefined;
  const proofAware = answer(rows, 'proof-aware', kind, threshold);
  const accuracy = answer(rows, 'accuracy', kind, threshold);
  const seedOf = (id: string) => results.get(id)!.job.seed;
  const disagreements = proofAware.result.params
    .filter((p, i) => !p.pass && accuracy.result.params[i]!.pass)
    .map((p) => {
      const proven = proofAware.result.evidence.filter((e) => e.trainParam === p.param && e.failure === 'non-flow');
      return {
        param: p.param,
        trainSpec: proven[0]!.trainSpec,
        proofs: proven.map((e) => ({ id: e.id!, seed: seedOf(e.id!), text: e.nonFlow! })),
      };
    });
  return {
    ...proofAware,
    kind,
    smallestTested: proofAware.result.params[0]!.param,
    largestTested: proofAware.result.params.at(-1)!.param,
    accuracy,
    disagreements,
    atChance: proofAware.result.evidence.filter((e) => e.failure === 'chance').length,
  };
}

function adaptationSummary(results: readonly JobResult[], kind: 'step' | 'tol'): AdaptationSummary {
  // One run per (seed, start): older plans ran identical adaptation jobs once per grid point.
  const bySeed = groupBy(results, (r) => {
    const j = r.job;
    const start = j.adaptStart === 'spec' ? j.trainSolver : '';
    return `${j.seed}|${j.adaptStart ?? 'hairer'}|${start}|${j.adaptFolds ? 'folds' : ''}`;
  });
  const counted = [...bySeed.values()].map((rs) => rs[0]!).sort((a, b) => a.job.seed - b.job.seed);
  const starts = [...new Set(counted.map((r) => startText(r.job)))];
  const runs: AdaptationRun[] = counted.map((r) => {
    const m = r.metrics!;
    const final = parse(m.trainSolver);
    return {
      id: r.id,
      seed: r.job.seed,
      finalSpec: m.trainSolver,
      ...optional('nonFlow', nonFlowProof(r)),
      finalParam: final ? solverParam(final) : NaN,
      trainAccuracy: m.trainAccuracy,
      trainNfe: m.nfe.total,
      trace: (m.adaptation?.trace ?? []).map((d) => ({
        iteration: d.iteration,
        param: d.paramAfter,
        trainAccuracy: d.trainAccuracy,
        testAccuracy: d.testAccuracy,
      })),
    };
  });
  return {
    kind,
    start: starts.join('; '),
    runs,
    ...optional('trainAccuracy', spread(runs.map((r) => r.trainAccuracy))),
    ...optional('trainNfe', spread(runs.map((r) => r.trainNfe))),
    ...optional('finalParam', spread(runs.map((r) => r.finalParam))),
    audits: summariseAudits(counted),
    duplicates: results.length - counted.length,
  };
}

/** Where an adaptation job starts, in words. */
export function startText(job: Pick<Job, 'adaptStart' | 'trainSolver' | 'adaptFolds'>): string {
  // Jobs planned before adaptStart existed started from Hairer's step (fixed) or the paper's 1e-6 (adaptive).
  const start = (job.adaptStart ?? 'hairer') === 'hairer' ? "Hairer's initial step" : job.trainSolver;
  return job.adaptFolds ? `${start}, with fold checks (beyond the paper)` : start;
}

function comparison(
  configs: readonly ConfigSummary[],
  crit: CriticalSummary | undefined,
  adaptation: AdaptationSummary,
  results: ReadonlyMap<string, JobResult>,
): Comparison {
  const valid = crit && crit.value !== null ? configs.filter((c) => c.param <= crit.value! && c.trainNfe) : [];
  const cheapest = [...valid].sort((a, b) => a.trainNfe!.mean - b.trainNfe!.mean)[0];
  // The whole search's cost per seed: the sum over every configuration trained with that seed.
  const perSeed = groupBy(
    configs.flatMap((c) => c.jobIds.map((id) => results.get(id)!)),
    (r) => String(r.job.seed),
  );
  const gridSearchNfe = spread([...perSeed.values()].map((rs) => rs.reduce((s, r) => s + r.metrics!.nfe.total, 0)));
  return {
    grid: cheapest
      ? {
          trainSpec: cheapest.trainSpec,
          param: cheapest.param,
          ...optional('trainAccuracy', cheapest.trainAccuracy),
          ...optional('trainNfe', cheapest.trainNfe),
        }
      : null,
    ...optional('gridSearchNfe', gridSearchNfe),
    adaptation: {
      ...optional('trainAccuracy', adaptation.trainAccuracy),
      ...optional('trainNfe', adaptation.trainNfe),
      ...optional('finalParam', adaptation.finalParam),
      provenNonFlow: adaptation.runs.filter((r) => r.nonFlow !== undefined).length,
      runs: adaptation.runs.length,
    },
  };
}

function methodSection(
  method: string,
  done: readonly JobResult[],
  byId: ReadonlyMap<string, JobResult>,
  threshold: number,
): MethodSection {
  const grid = done.filter((r) => !r.job.adapt);
  const adapt = done.filter((r) => r.job.adapt);
  const sample = parse(done[0]!.job.trainSolver);
  const kind = sample?.kind === 'adaptive' ? 'tol' : 'step';
  const configs = [...groupBy(grid, (r) => r.job.trainSolver)]
    .flatMap(([spec, rs]) => configSummary(spec, rs) ?? [])
    .sort((a, b) => b.param - a.param || a.trainSpec.localeCompare(b.trainSpec));
  const crit = critical(configs, byId, kind, threshold);
  const adaptation = adapt.length > 0 ? adaptationSummary(adapt, kind) : undefined;
  const tolerances = new Set(configs.flatMap((c) => c.evals.filter((e) => e.steps === undefined).map((e) => e.param)));
  return {
    method,
    kind,
    configs,
    ...optional('critical', crit),
    ...optional('adaptation', adaptation),
    ...(adaptation && configs.length > 0 ? { comparison: comparison(configs, crit, adaptation, byId) } : {}),
    testTolerances: tolerances.size,
  };
}

/** Build the report model: pure, deterministic given `options.generatedAt`. */
export function buildReportModel(input: ReportInput, options: ReportOptions = {}): ReportModel {
  const threshold = checkThreshold(options.threshold ?? DEFAULT_THRESHOLD);
  const planned = input.plan ? new Set(input.plan.jobs.map((j) => j.id)) : undefined;
  const inPlan = input.results.filter((r) => !planned || planned.has(r.id));
  const notInPlan = planned ? input.results.filter((r) => !planned.has(r.id)) : [];
  const done = inPlan.filter((r) => r.status === 'done' && r.metrics);
  const byId = new Map(done.map((r) => [r.id, r]));
  const sections: Section[] = [];
  const sectionKey = (j: Job) => `${j.dataset}\n${j.field}`;
  // Sections and methods in the study's own order (its plan; else the order results came in), not
  // alphabetical: dim=10 before dim=2 and dopri5 before euler read wrong.
  const jobOrder = input.plan?.jobs ?? done.map((r) => r.job);
  const rank = (keys: readonly string[]) => {
    const first = new Map<string, number>();
    keys.forEach((k, i) => first.has(k) || first.set(k, i));
    return (a: string, b: string) => (first.get(a) ?? Infinity) - (first.get(b) ?? Infinity) || a.localeCompare(b);
  };
  const sectionOrder = rank(jobOrder.map(sectionKey));
  const methodOrder = rank(jobOrder.map((j) => methodOf(j.trainSolver)));
  const bySection = groupBy(done, (r) => sectionKey(r.job));
  for (const key of [...bySection.keys()].sort(sectionOrder)) {
    const rs = bySection.get(key)!;
    const byMethod = groupBy(rs, (r) => methodOf(r.job.trainSolver));
    sections.push({
      dataset: rs[0]!.job.dataset,
      field: rs[0]!.job.field,
      methods: [...byMethod.keys()].sort(methodOrder).map((m) => methodSection(m, byMethod.get(m)!, byId, threshold)),
    });
  }
  const failed = inPlan.filter((r) => r.status === 'failed').length;
  const plan = input.plan;
  return {
    title: options.title ?? `odeness study${plan?.name ? `: ${plan.name}` : ''}`,
    generatedAt: options.generatedAt ?? new Date().toISOString(),
    threshold,
    ...(plan
      ? {
          plan: {
            ...optional('name', plan.name),
            ...optional('studyHash', plan.studyHash),
            ...optional('overrides', plan.overrides),
            jobs: plan.jobs.length,
          },
        }
      : {}),
    counts: {
      ...(plan ? { planned: plan.jobs.length, pending: plan.jobs.length - done.length - failed } : {}),
      done: done.length,
      failed,
      notInPlan: notInPlan.length,
    },
    ...optional('live', input.live),
    ...optional('deadRun', input.live ? undefined : input.deadRun),
    sections,
    jobs: inPlan.map(jobRow),
    notInPlan: notInPlan.map(jobRow),
  };
}
