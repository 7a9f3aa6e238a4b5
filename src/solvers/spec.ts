/**
 * Solver specs: the one string syntax used by the CLI, study files and results.
 *   euler:0.1              fixed step h = 0.1
 *   rk4:steps=20           fixed step count
 *   dopri5:1e-5            rtol = atol = 1e-5
 *   dopri5:rtol=1e-5,atol=1e-7[,maxSteps=..,firstStep=..,minStep=..]
 */
import { SpecError } from '../errors.js';
import { isPositiveInt, tokenizeSpec, type SolverLimits } from '../formats/index.js';
import { ADAPTIVE_METHODS, METHODS } from './tableau.js';

export type { SolverLimits } from '../formats/index.js';

export interface FixedSolverSpec {
  readonly kind: 'fixed';
  readonly method: string;
  /** Exactly one of h and steps is set. */
  readonly h?: number;
  readonly steps?: number;
}

export interface AdaptiveSolverSpec {
  readonly kind: 'adaptive';
  readonly method: string;
  readonly rtol: number;
  readonly atol: number;
  readonly maxSteps?: number;
  readonly firstStep?: number;
  readonly minStep?: number;
}

export type SolverSpec = FixedSolverSpec | AdaptiveSolverSpec;

/** Default cap on accepted+rejected steps of an adaptive solve. */
export const DEFAULT_MAX_STEPS = 10_000;

/**
 * The bounds every solver spec is checked against when it is parsed (CLI,
 * study files, jobs), so that no spec can ask for an unbounded amount of work
 * or for a tolerance no float arithmetic can meet:
 *   maxSteps  100 000: a fixed grid's step count over the unit interval [0, 1]
 *             (h ≥ 1e-5), and the largest maxSteps option of an adaptive solver.
 *             The paper's finest grids use a few hundred steps; 1e9 steps of a
 *             batch exhaust memory (V8 "invalid size") long before they finish.
 *   minTol    1e-10 (rtol and atol): float64 audits reach about 1e-13 relative
 *             accuracy per step, so 1e-10 is the tightest tolerance a float64
 *             reference solve (the fan audit's dopri5:rtol=1e-8,atol=1e-10) can
 *             honour; tighter ones only shrink the step until it underflows
 *             (dopri5:1e-300 failed as "NaN near t=0", 1e-12 aborted wasm).
 * A study raises or lowers them with `solverLimits:` in its file, the library
 * by passing limits to parseSolverSpec.
 */
export const DEFAULT_SOLVER_LIMITS: SolverLimits = Object.freeze({ maxSteps: 100_000, minTol: 1e-10 });

const HINT = 'raise the limit with solverLimits in a study file, or pass limits to parseSolverSpec';

function parseNumber(spec: string, key: string, raw: string): number {
  const v = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new SpecError(`solver spec "${spec}": ${key} must be a finite number, got "${raw}"`);
  return v;
}

function positive(spec: string, key: string, v: number): number {
  if (!(v > 0)) throw new SpecError(`solver spec "${spec}": ${key} must be > 0, got ${v}`);
  return v;
}

function positiveInt(spec: string, key: string, v: number): number {
  if (!isPositiveInt(v)) throw new SpecError(`solver spec "${spec}": ${key} must be a positive integer, got ${v}`);
  return v;
}

function tolerance(spec: string, key: string, v: number, limits: SolverLimits): number {
  positive(spec, key, v);
  if (v < limits.minTol)
    throw new SpecError(`solver spec "${spec}": ${key} ${v} is below the tolerance floor ${limits.minTol} (${HINT})`);
  return v;
}

function stepCount(spec: string, key: string, n: number, limits: SolverLimits, why = ''): number {
  if (n > limits.maxSteps)
    throw new SpecError(`solver spec "${spec}": ${key} ${why}exceeds the limit of ${limits.maxSteps} steps (${HINT})`);
  return n;
}

export function parseSolverSpec(spec: string, limits: SolverLimits = DEFAULT_SOLVER_LIMITS): SolverSpec {
  const { head: method, items } = tokenizeSpec(spec);
  if (!METHODS.includes(method)) {
    throw new SpecError(`solver spec "${spec}": unknown solver "${method}"; expected one of ${METHODS.join(', ')}`);
  }
  // The tableau decides the syntax: a method with an error estimate takes a tolerance (see solver.ts).
  const adaptive = ADAPTIVE_METHODS.includes(method);
  if (items.length === 0) {
    const what = adaptive
      ? 'a tolerance, e.g. ' + method + ':1e-5'
      : 'a step size or count, e.g. ' + method + ':0.1 or ' + method + ':steps=10';
    throw new SpecError(`solver spec "${spec}": missing value; expected ${what}`);
  }
  const named = new Map<string, number>();
  let positional: number | undefined;
  for (const item of items) {
    if (item.key === undefined) {
      if (positional !== undefined || named.size > 0)
        throw new SpecError(`solver spec "${spec}": a bare value may only come first and once, got "${item.text}"`);
      positional = parseNumber(spec, adaptive ? 'tolerance' : 'step size', item.value);
      continue;
    }
    if (named.has(item.key)) throw new SpecError(`solver spec "${spec}": ${item.key} given twice`);
    named.set(item.key, parseNumber(spec, item.key, item.value));
  }
  // The bare value is the step size h (fixed) or the tolerance tol (adaptive).
  const bareKey = adaptive ? 'tol' : 'h';
  if (positional !== undefined && named.has(bareKey))
    throw new SpecError(`solver spec "${spec}": ${bareKey} given twice (as the bare value and as ${bareKey}=)`);
  const allowed = adaptive ? ['rtol', 'atol', 'tol', 'maxSteps', 'firstStep', 'minStep'] : ['h', 'steps'];
  for (const key of named.keys()) {
    if (!allowed.includes(key))
      throw new SpecError(
        `solver spec "${spec}": unknown option "${key}" for ${method}; expected ${allowed.join(', ')}`,
      );
  }
  if (!adaptive) {
    const h = positional ?? named.get('h');
    const steps = named.get('steps');
    if (h !== undefined && steps !== undefined)
      throw new SpecError(`solver spec "${spec}": give a step size or a step count, not both`);
    if (steps !== undefined)
      return { kind: 'fixed', method, steps: stepCount(spec, 'steps', positiveInt(spec, 'steps', steps), limits) };
    if (h === undefined) throw new SpecError(`solver spec "${spec}": missing step size`);
    positive(spec, 'step size', h);
    const n = fixedStepCount({ kind: 'fixed', method, h });
    stepCount(spec, 'step size', n, limits, `${h} means ${n} steps over [0, 1], which `);
    return { kind: 'fixed', method, h };
  }
  const tol = positional ?? named.get('tol');
  // A tolerance named and given as 0 or less is wrong as given, not missing (dopri5:rtol=0).
  for (const key of ['rtol', 'atol', 'tol'] as const) if (named.has(key)) tolerance(spec, key, named.get(key)!, limits);
  const rtol = named.get('rtol') ?? tol;
  const atol = named.get('atol') ?? tol;
  if (rtol === undefined || atol === undefined)
    throw new SpecError(`solver spec "${spec}": give a tolerance, or both rtol and atol`);
  const out: AdaptiveSolverSpec = {
    kind: 'adaptive',
    method,
    rtol: tolerance(spec, 'rtol', rtol, limits),
    atol: tolerance(spec, 'atol', atol, limits),
    ...(named.has('maxSteps')
      ? { maxSteps: stepCount(spec, 'maxSteps', positiveInt(spec, 'maxSteps', named.get('maxSteps')!), limits) }
      : {}),
    ...(named.has('firstStep') ? { firstStep: positive(spec, 'firstStep', named.get('firstStep')!) } : {}),
    ...(named.has('minStep') ? { minStep: positive(spec, 'minStep', named.get('minStep')!) } : {}),
  };
  return out;
}

/**
 * Parse a comma/space separated list where each item starts with a method
 * name: `euler:0.5,rk4:steps=10` or `dopri5:rtol=1e-4,atol=1e-6 rk4:0.1`.
 * A piece with a ':' always starts a new spec (options never hold one), so an
 * unknown solver is named as such.
 */
export function parseSolverList(list: string, limits: SolverLimits = DEFAULT_SOLVER_LIMITS): SolverSpec[] {
  const items: string[] = [];
  for (const piece of list.split(/[,\s]+/).filter(Boolean)) {
    if (piece.includes(':') && !piece.startsWith(':')) {
      items.push(piece);
      continue;
    }
    const last = items.length - 1;
    if (METHODS.includes(piece) || last < 0) items.push(piece);
    // 'euler: 0.5' is one spec with a space after the colon, not 'euler:' and ',0.5'.
    else items[last] += items[last]!.endsWith(':') || piece.startsWith(':') ? piece : ',' + piece;
  }
  if (items.length === 0)
    throw new SpecError(`empty solver list "${list}"; expected specs like euler:0.1,rk4:steps=10`);
  return items.map((s) => parseSolverSpec(s, limits));
}

/** Canonical string form; parseSolverSpec(formatSolverSpec(s)) deep-equals s. */
export function formatSolverSpec(s: SolverSpec): string {
  if (s.kind === 'fixed') return s.steps !== undefined ? `${s.method}:steps=${s.steps}` : `${s.method}:${s.h}`;
  const extra = [
    s.maxSteps !== undefined ? `maxSteps=${s.maxSteps}` : '',
    s.firstStep !== undefined ? `firstStep=${s.firstStep}` : '',
    s.minStep !== undefined ? `minStep=${s.minStep}` : '',
  ].filter(Boolean);
  const base = s.rtol === s.atol ? `${s.method}:${s.rtol}` : `${s.method}:rtol=${s.rtol},atol=${s.atol}`;
  return [base, ...extra].join(',');
}

/**
 * A number as people write it: at most 6 significant digits, trailing zeros
 * dropped, exponent form below 1e-3 (0.7320500000000003 → 0.73205,
 * 0.09526850748025809 → 0.0952685, 0.000001 → 1e-6). For printing only: the
 * canonical spec (formatSolverSpec, which job ids hash) and --json keep the
 * exact value.
 */
export function displayNumber(v: number): string {
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a < 1e-3)
    return v
      .toExponential(5)
      .replace(/\.?0+e/, 'e')
      .replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

/** A spec as people read it: formatSolverSpec with each number through displayNumber. */
export function displaySolverSpec(s: SolverSpec): string {
  if (s.kind === 'fixed')
    return s.steps !== undefined ? `${s.method}:steps=${s.steps}` : `${s.method}:${displayNumber(s.h!)}`;
  const extra = [
    s.maxSteps !== undefined ? `maxSteps=${s.maxSteps}` : '',
    s.firstStep !== undefined ? `firstStep=${displayNumber(s.firstStep)}` : '',
    s.minStep !== undefined ? `minStep=${displayNumber(s.minStep)}` : '',
  ].filter(Boolean);
  const base =
    s.rtol === s.atol
      ? `${s.method}:${displayNumber(s.rtol)}`
      : `${s.method}:rtol=${displayNumber(s.rtol)},atol=${displayNumber(s.atol)}`;
  return [base, ...extra].join(',');
}

/** A spec string as people read it (displaySolverSpec); a string that does not parse is returned as it is. */
export function displaySpec(spec: string): string {
  try {
    return displaySolverSpec(parseSolverSpec(spec, { maxSteps: Infinity, minTol: 0 }));
  } catch {
    return spec;
  }
}

/** The number that characterises a spec in tables: h (or 1/steps) or rtol. */
export function solverParam(s: SolverSpec, t0 = 0, t1 = 1): number {
  if (s.kind === 'fixed') return s.h ?? (t1 - t0) / s.steps!;
  return s.rtol;
}

/** Number of steps a fixed spec takes over [t0, t1] (torchdiffeq's grid). */
export function fixedStepCount(s: FixedSolverSpec, t0 = 0, t1 = 1): number {
  if (s.steps !== undefined) return s.steps;
  const span = Math.abs(t1 - t0);
  // Tolerate round-off so that h = 0.1 over [0, 1] gives 10 steps, not 11.
  return Math.max(1, Math.ceil(span / s.h! - 1e-9));
}

/**
 * The step ceiling over the interval a solve really covers: a fixed grid over
 * [t0, t1] takes |t1 − t0| / h steps, so `euler:0.5` is 2 steps over [0, 1]
 * but 2·10^5 over [0, 10^5]. parseSolverSpec can only check [0, 1]; every
 * command that knows its interval (train, solve, evaluate, the audits) checks
 * it here before any work starts. Adaptive solves are bounded by maxSteps.
 */
export function checkStepBudget(
  s: SolverSpec,
  t0: number,
  t1: number,
  limits: SolverLimits = DEFAULT_SOLVER_LIMITS,
  where = '',
): void {
  if (s.kind !== 'fixed' || s.steps !== undefined) return;
  const span = Math.abs(t1 - t0);
  const n = span / s.h! - 1e-9;
  if (!(n <= limits.maxSteps)) {
    const shown = formatSolverSpec(s);
    throw new SpecError(
      `${where}solver spec "${shown}" over [${t0}, ${t1}] takes ` +
        `${Number.isFinite(n) ? Math.ceil(n) : 'unboundedly many'} steps, ` +
        `above the limit of ${limits.maxSteps}; shorten the interval or take a larger step (a study file may raise ` +
        `the limit with solverLimits)`,
    );
  }
}

/** How a solver configuration is labelled in result rows: method, h or rtol, spec string, step count. */
export interface SolverLabel {
  readonly solver: string;
  readonly param: number;
  readonly spec: string;
  /** Steps of a fixed-step solver over [t0, t1]. */
  readonly steps?: number;
}

export function solverLabel(s: SolverSpec, t0 = 0, t1 = 1): SolverLabel {
  return {
    solver: s.method,
    param: solverParam(s, t0, t1),
    spec: formatSolverSpec(s),
    ...(s.kind === 'fixed' ? { steps: fixedStepCount(s, t0, t1) } : {}),
  };
}
