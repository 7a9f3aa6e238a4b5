/**
 * The study file: one type (`StudySpec`) and one validator (`validateStudy`),
 * used by `study plan`, `study run` and the library.
 *
 * A study file is YAML or JSON:
 *
 *   name: sphere-grid                     # optional
 *   datasets: [spheres:dupont2019:dim=2]  # a spec string or a list of them
 *   field: mlp:width=32                   # a spec string or a list of them
 *   grid:                                 # training solvers and their grids
 *     - {solver: euler, steps: [0.5, 0.25, 0.1]}   # steps = step sizes h
 *     - {solver: rk4, stepCounts: [10, 20]}        # or step counts
 *     - {solver: dopri5, tols: [1e-3, 1e-5]}       # adaptive: rtol = atol = tol
 *     - midpoint:0.1                               # or one solver spec string
 *   adapt: false                          # false | true | both
 *   seeds: 5                              # a count (0..n-1) or a list
 *   iterations: 10000
 *   batchSize: 128
 *   lr: 1e-4
 *   engine: auto                          # auto | tfjs | ort
 *   testSolvers: paper                    # paper | a list of solver spec strings (may include paper)
 *   audits: {crossing: true, fan: false}  # or a list: [crossing, fan]
 *
 * Unknown keys are errors. Every error names the file, the path inside it
 * (e.g. `grid[2].steps[0]`), the value found and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { FileFormatError, OdenessError } from '../errors.js';
import { formatSolverSpec, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { ADAPTIVE_METHODS, FIXED_METHODS, METHODS } from '../solvers/tableau.js';
import { formatDatasetSpec, parseDatasetSpec } from '../data/spec.js';
import { formatFieldSpec, parseFieldSpec } from '../models/spec.js';

export type Engine = 'auto' | 'tfjs' | 'ort';
export const ENGINES: readonly Engine[] = ['auto', 'tfjs', 'ort'];

/** One training-solver entry of the grid, normalised to canonical solver spec strings. */
export interface GridEntry {
  readonly solver: string;
  /** Canonical spec strings, one per grid point (e.g. `euler:0.5`, `rk4:steps=10`, `dopri5:0.001`). */
  readonly specs: readonly string[];
}

/** A validated, normalised study. */
export interface StudySpec {
  readonly name?: string;
  readonly datasets: readonly string[];
  readonly fields: readonly string[];
  readonly grid: readonly GridEntry[];
  readonly adapt: readonly boolean[];
  readonly seeds: readonly number[];
  readonly iterations: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly engine: Engine;
  /** `paper` (resolved per training solver at plan time) or canonical spec strings. */
  readonly testSolvers: 'paper' | readonly string[];
  readonly audits: { readonly crossing: boolean; readonly fan: boolean };
}

/** Defaults follow the paper's sphere experiments (PAPER.md). */
export const STUDY_DEFAULTS = {
  adapt: false,
  seeds: 1,
  iterations: 10_000,
  batchSize: 128,
  lr: 1e-4,
  engine: 'auto' as Engine,
  testSolvers: 'paper' as const,
};

/** A study file (or object) that does not match the schema. */
export class StudyFileError extends FileFormatError {
  constructor(file: string, readonly path: string, readonly value: unknown, expected: string) {
    super(file, `${path || '(top level)'}: ${expected}, got ${show(value)}`);
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

const TOP_KEYS = [
  'name', 'datasets', 'field', 'grid', 'adapt', 'seeds', 'iterations', 'batchSize', 'lr', 'engine', 'testSolvers', 'audits',
] as const;
const GRID_KEYS = ['solver', 'steps', 'stepCounts', 'tols'] as const;
const AUDIT_KEYS = ['crossing', 'fan'] as const;

class Checker {
  constructor(readonly file: string) {}

  fail(path: string, value: unknown, expected: string): never {
    throw new StudyFileError(this.file, path, value, expected);
  }

  record(path: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, v, 'expected a mapping (key: value)');
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) {
        this.fail(join(path, key), (v as Record<string, unknown>)[key], `unknown key "${key}"; allowed keys: ${allowed.join(', ')}`);
      }
    }
    return v as Record<string, unknown>;
  }

  /**
   * A string or a non-empty list of spec strings, each parsed by its real
   * parser and rewritten in canonical form (so equivalent spellings plan to the
   * same job id); a parser error is reported at the item's path.
   */
  specList(path: string, v: unknown, what: string, canonical: (spec: string) => string): string[] {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) this.fail(path, v, `expected at least one ${what}`);
    const out: string[] = [];
    list.forEach((item, i) => {
      const p = Array.isArray(v) ? `${path}[${i}]` : path;
      // Only the shape here; the real parser judges the rest (paths in json:/cifar10: specs may hold spaces).
      if (typeof item !== 'string' || item.trim() === '') {
        this.fail(p, item, `expected a ${what} string like ${what === 'dataset spec' ? '"spheres:dupont2019:dim=2"' : '"mlp:width=32"'}`);
      }
      let s: string;
      try {
        s = canonical(item.trim());
      } catch (e) {
        if (e instanceof OdenessError) this.fail(p, item, e.message);
        throw e;
      }
      if (!out.includes(s)) out.push(s);
    });
    return out;
  }

  positiveInt(path: string, v: unknown, what = 'a positive integer'): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) this.fail(path, v, `expected ${what}`);
    return v;
  }

  positive(path: string, v: unknown, what = 'a positive number'): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(path, v, `expected ${what}`);
    return v;
  }

  numberList(path: string, v: unknown, item: (p: string, x: unknown) => number): number[] {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) this.fail(path, v, 'expected a non-empty list');
    return list.map((x, i) => item(Array.isArray(v) ? `${path}[${i}]` : path, x));
  }

  solverSpec(path: string, v: unknown): SolverSpec {
    if (typeof v !== 'string') this.fail(path, v, 'expected a solver spec string like "rk4:0.1" or "dopri5:1e-5"');
    try {
      return parseSolverSpec(v);
    } catch (e) {
      if (e instanceof OdenessError) this.fail(path, v, `invalid solver spec (${e.message})`);
      throw e;
    }
  }
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function gridEntry(c: Checker, path: string, v: unknown): GridEntry {
  if (typeof v === 'string') {
    const s = c.solverSpec(path, v);
    return { solver: s.method, specs: [formatSolverSpec(s)] };
  }
  const r = c.record(path, v, GRID_KEYS);
  const solver = r.solver;
  if (typeof solver !== 'string' || !METHODS.includes(solver)) {
    c.fail(join(path, 'solver'), solver, `expected a solver name, one of ${METHODS.join(', ')}`);
  }
  const adaptive = ADAPTIVE_METHODS.includes(solver);
  const specs: SolverSpec[] = [];
  if (adaptive) {
    for (const key of ['steps', 'stepCounts'] as const) {
      if (r[key] !== undefined) c.fail(join(path, key), r[key], `${solver} is adaptive: give "tols", not "${key}" (fixed-step solvers: ${FIXED_METHODS.join(', ')})`);
    }
    if (r.tols === undefined) c.fail(join(path, 'tols'), undefined, `expected a list of tolerances for the adaptive solver ${solver}`);
    for (const tol of c.numberList(join(path, 'tols'), r.tols, (p, x) => {
      const t = c.positive(p, x, 'a tolerance, a number in (0, 1)');
      if (t >= 1) c.fail(p, x, 'expected a tolerance, a number in (0, 1)');
      return t;
    })) {
      specs.push({ kind: 'adaptive', method: solver, rtol: tol, atol: tol });
    }
  } else {
    if (r.tols !== undefined) c.fail(join(path, 'tols'), r.tols, `${solver} is a fixed-step solver: give "steps" (step sizes) or "stepCounts", not "tols"`);
    if (r.steps === undefined && r.stepCounts === undefined) {
      c.fail(join(path, 'steps'), undefined, `expected step sizes ("steps") or step counts ("stepCounts") for the fixed-step solver ${solver}`);
    }
    if (r.steps !== undefined) {
      for (const h of c.numberList(join(path, 'steps'), r.steps, (p, x) => {
        const h = c.positive(p, x, 'a step size h, a number in (0, 1]');
        if (h > 1) c.fail(p, x, 'expected a step size h, a number in (0, 1] (the ODE is solved over [0, 1])');
        return h;
      })) {
        specs.push({ kind: 'fixed', method: solver, h });
      }
    }
    if (r.stepCounts !== undefined) {
      for (const n of c.numberList(join(path, 'stepCounts'), r.stepCounts, (p, x) => c.positiveInt(p, x, 'a step count, a positive integer'))) {
        specs.push({ kind: 'fixed', method: solver, steps: n });
      }
    }
  }
  const out: string[] = [];
  for (const s of specs) {
    const f = formatSolverSpec(s);
    if (!out.includes(f)) out.push(f);
  }
  return { solver, specs: out };
}

/**
 * Check a parsed study document and return it normalised. `file` is used in
 * error messages only (`<study>` for objects passed to the library).
 */
export function validateStudy(raw: unknown, file = '<study>'): StudySpec {
  const c: Checker = new Checker(file);
  const r = c.record('', raw, TOP_KEYS);

  let name: string | undefined;
  if (r.name !== undefined) {
    const n = r.name;
    if (typeof n !== 'string' || n.trim() === '') c.fail('name', n, 'expected a non-empty string');
    name = n.trim();
  }
  if (r.datasets === undefined) c.fail('datasets', undefined, 'expected a dataset spec or a list of them (required)');
  const datasets = c.specList('datasets', r.datasets, 'dataset spec', (d) => formatDatasetSpec(parseDatasetSpec(d)));
  if (r.field === undefined) c.fail('field', undefined, 'expected a field spec or a list of them (required)');
  const fields = c.specList('field', r.field, 'field spec', (f) => formatFieldSpec(parseFieldSpec(f)));

  if (r.grid === undefined) c.fail('grid', undefined, 'expected a list of training solvers (required)');
  const gridRaw = Array.isArray(r.grid) ? r.grid : c.fail('grid', r.grid, 'expected a list of training solvers, e.g. [{solver: euler, steps: [0.1]}]');
  if (gridRaw.length === 0) c.fail('grid', r.grid, 'expected at least one training solver');
  const grid = gridRaw.map((g, i) => gridEntry(c, `grid[${i}]`, g));

  const adaptRaw = r.adapt ?? STUDY_DEFAULTS.adapt;
  if (adaptRaw !== true && adaptRaw !== false && adaptRaw !== 'both') c.fail('adapt', adaptRaw, 'expected false, true or "both"');
  const adapt: boolean[] = adaptRaw === 'both' ? [false, true] : [adaptRaw === true];

  const seedsRaw = r.seeds ?? STUDY_DEFAULTS.seeds;
  let seeds: number[] = [];
  if (typeof seedsRaw === 'number') {
    seeds = Array.from({ length: c.positiveInt('seeds', seedsRaw, 'a seed count (positive integer) or a list of seeds') }, (_, i) => i);
  } else if (Array.isArray(seedsRaw)) {
    if (seedsRaw.length === 0) c.fail('seeds', seedsRaw, 'expected a seed count or a non-empty list of seeds');
    seeds = [];
    seedsRaw.forEach((s, i) => {
      if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) c.fail(`seeds[${i}]`, s, 'expected a seed, a non-negative integer');
      if (seeds.includes(s)) c.fail(`seeds[${i}]`, s, 'expected each seed once');
      seeds.push(s);
    });
  } else {
    c.fail('seeds', seedsRaw, 'expected a seed count (positive integer) or a list of seeds');
  }

  const iterations = c.positiveInt('iterations', r.iterations ?? STUDY_DEFAULTS.iterations);
  const batchSize = c.positiveInt('batchSize', r.batchSize ?? STUDY_DEFAULTS.batchSize);
  const lr = c.positive('lr', r.lr ?? STUDY_DEFAULTS.lr, 'a learning rate, a positive number');
  const engineRaw = r.engine ?? STUDY_DEFAULTS.engine;
  if (typeof engineRaw !== 'string' || !(ENGINES as readonly string[]).includes(engineRaw)) c.fail('engine', engineRaw, `expected one of ${ENGINES.join(', ')}`);
  const engine = engineRaw as Engine;

  const tsRaw = r.testSolvers ?? STUDY_DEFAULTS.testSolvers;
  let testSolvers: 'paper' | string[] = 'paper';
  if (tsRaw === 'paper') testSolvers = 'paper';
  else if (Array.isArray(tsRaw)) {
    if (tsRaw.length === 0) c.fail('testSolvers', tsRaw, 'expected "paper" or a non-empty list of solver specs');
    testSolvers = [];
    tsRaw.forEach((s, i) => {
      // "paper" inside a list adds the paper's set around each training solver.
      const f = s === 'paper' ? 'paper' : formatSolverSpec(c.solverSpec(`testSolvers[${i}]`, s));
      if (!(testSolvers as string[]).includes(f)) (testSolvers as string[]).push(f);
    });
  } else c.fail('testSolvers', tsRaw, 'expected "paper" or a list of solver spec strings like ["rk4:0.05", "dopri5:1e-6"]');

  const audits = { crossing: false, fan: false };
  if (Array.isArray(r.audits)) {
    r.audits.forEach((a, i) => {
      if (typeof a !== 'string' || !(AUDIT_KEYS as readonly string[]).includes(a)) c.fail(`audits[${i}]`, a, `expected one of ${AUDIT_KEYS.join(', ')}`);
      audits[a as 'crossing' | 'fan'] = true;
    });
  } else if (r.audits !== undefined) {
    const a = c.record('audits', r.audits, AUDIT_KEYS);
    for (const key of AUDIT_KEYS) {
      if (a[key] === undefined) continue;
      if (typeof a[key] !== 'boolean') c.fail(`audits.${key}`, a[key], 'expected true or false');
      audits[key] = a[key] as boolean;
    }
  }

  return {
    ...(name !== undefined ? { name } : {}),
    datasets, fields, grid, adapt, seeds, iterations, batchSize, lr, engine, testSolvers, audits,
  };
}

/** Parse a study file's text (YAML 1.2, which includes JSON; `.json` files as strict JSON). */
export function parseStudyText(text: string, file: string): StudySpec {
  let raw: unknown;
  if (file.toLowerCase().endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new FileFormatError(file, `not valid JSON: ${(e as Error).message}`);
    }
  } else {
    try {
      raw = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
    } catch (e) {
      if (e instanceof YAMLParseError) throw new FileFormatError(file, `not valid YAML: ${e.message.split('\n')[0]}`);
      throw e;
    }
  }
  return validateStudy(raw, file);
}

export function loadStudyFile(file: string): StudySpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(file, `cannot read the study file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseStudyText(text, file);
}
