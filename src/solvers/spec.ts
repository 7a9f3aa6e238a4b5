/**
 * Solver specs: the one string syntax used by the CLI, study files and results.
 *   euler:0.1              fixed step h = 0.1
 *   rk4:steps=20           fixed step count
 *   dopri5:1e-5            rtol = atol = 1e-5
 *   dopri5:rtol=1e-5,atol=1e-7[,maxSteps=..,firstStep=..,minStep=..]
 */
import { SpecError } from '../errors.js';
import { getTableau, METHODS } from './tableau.js';

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
  if (!Number.isInteger(v) || v < 1) throw new SpecError(`solver spec "${spec}": ${key} must be a positive integer, got ${v}`);
  return v;
}

export function parseSolverSpec(spec: string): SolverSpec {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const method = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (!METHODS.includes(method)) {
    throw new SpecError(`solver spec "${spec}": unknown solver "${method}"; expected one of ${METHODS.join(', ')}`);
  }
  const tableau = getTableau(method);
  if (rest.trim() === '') {
    const what = tableau.adaptive ? 'a tolerance, e.g. ' + method + ':1e-5' : 'a step size or count, e.g. ' + method + ':0.1 or ' + method + ':steps=10';
    throw new SpecError(`solver spec "${spec}": missing value; expected ${what}`);
  }
  const parts = rest.split(',').map((p) => p.trim());
  const named = new Map<string, number>();
  let positional: number | undefined;
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (positional !== undefined || named.size > 0) throw new SpecError(`solver spec "${spec}": a bare value may only come first and once`);
      positional = parseNumber(spec, tableau.adaptive ? 'tolerance' : 'step size', part);
      continue;
    }
    const key = part.slice(0, eq).trim();
    if (named.has(key)) throw new SpecError(`solver spec "${spec}": ${key} given twice`);
    named.set(key, parseNumber(spec, key, part.slice(eq + 1)));
  }
  // The bare value is the step size h (fixed) or the tolerance tol (adaptive).
  const bareKey = tableau.adaptive ? 'tol' : 'h';
  if (positional !== undefined && named.has(bareKey)) throw new SpecError(`solver spec "${spec}": ${bareKey} given twice (as the bare value and as ${bareKey}=)`);
  const allowed = tableau.adaptive ? ['rtol', 'atol', 'tol', 'maxSteps', 'firstStep', 'minStep'] : ['h', 'steps'];
  for (const key of named.keys()) {
    if (!allowed.includes(key)) throw new SpecError(`solver spec "${spec}": unknown option "${key}" for ${method}; expected ${allowed.join(', ')}`);
  }
  if (!tableau.adaptive) {
    const h = positional ?? named.get('h');
    const steps = named.get('steps');
    if (h !== undefined && steps !== undefined) throw new SpecError(`solver spec "${spec}": give a step size or a step count, not both`);
    if (steps !== undefined) return { kind: 'fixed', method, steps: positiveInt(spec, 'steps', steps) };
    if (h === undefined) throw new SpecError(`solver spec "${spec}": missing step size`);
    return { kind: 'fixed', method, h: positive(spec, 'step size', h) };
  }
  const tol = positional ?? named.get('tol');
  const rtol = named.get('rtol') ?? tol;
  const atol = named.get('atol') ?? tol;
  if (rtol === undefined || atol === undefined) throw new SpecError(`solver spec "${spec}": give a tolerance, or both rtol and atol`);
  const out: AdaptiveSolverSpec = {
    kind: 'adaptive',
    method,
    rtol: positive(spec, 'rtol', rtol),
    atol: positive(spec, 'atol', atol),
    ...(named.has('maxSteps') ? { maxSteps: positiveInt(spec, 'maxSteps', named.get('maxSteps')!) } : {}),
    ...(named.has('firstStep') ? { firstStep: positive(spec, 'firstStep', named.get('firstStep')!) } : {}),
    ...(named.has('minStep') ? { minStep: positive(spec, 'minStep', named.get('minStep')!) } : {}),
  };
  return out;
}

/** Parse a comma/space separated list where each item starts with a method name. */
export function parseSolverList(list: string): SolverSpec[] {
  // Split on commas that begin a new spec (followed by a method name and ':' or end).
  const items: string[] = [];
  for (const piece of list.split(/[,\s]+/).filter(Boolean)) {
    const head = piece.split(':')[0]!;
    if (METHODS.includes(head) || items.length === 0) items.push(piece);
    else items[items.length - 1] += ',' + piece;
  }
  if (items.length === 0) throw new SpecError('empty solver list');
  return items.map(parseSolverSpec);
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
