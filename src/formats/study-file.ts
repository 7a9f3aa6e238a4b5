/**
 * The study file (YAML or JSON), as read by `study plan`, `study run` and the
 * library:
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
 *                                         #   (both = the grid + one adaptation run per method and seed)
 *   adaptStart: hairer                    # hairer (default) | start specs, at most one per method:
 *                                         #   [euler:0.1, dopri5:1e-5]
 *   adaptFolds: false                     # true: adaptation also shrinks fixed steps that fold space
 *                                         #   (beyond the paper)
 *   seeds: 5                              # a count (0..n-1) or a list
 *   iterations: 10000
 *   batchSize: 128
 *   lr: 1e-4
 *   engine: auto                          # auto | tfjs | ort
 *   device: cpu                           # cpu (default) | webgpu | cuda: where every job's sessions run
 *   testSolvers: paper                    # paper | a list of solver spec strings (may include paper)
 *   audits: {crossing: true, fan: false}  # or a list: [crossing, fan]
 *   solverLimits: {maxSteps: 100000, minTol: 1e-10}   # optional: the bounds every solver spec is checked against
 *
 * Unknown keys are errors. Every error names the path inside the file (e.g.
 * `grid[2].steps[0]`), the value found and what is allowed.
 *
 * What a spec string means belongs to its parser (solvers, data, models sit
 * above this layer), so `studyFileSchema` receives the parsers and the solver
 * names; src/study/schema.ts passes the real ones.
 */
import * as z from 'zod';
import { OdenessError } from '../errors.js';
import {
  AUDIT_KINDS,
  DeviceSchema,
  EngineChoiceSchema,
  finite,
  positive,
  positiveInt,
  record,
  type Device,
  type EngineChoice,
} from './common.js';
import { JOB_LIMITS, type SolverLimits } from './job.js';

/** Defaults follow the paper's sphere experiments (PAPER.md). */
export const STUDY_DEFAULTS = {
  adapt: false,
  seeds: 1,
  iterations: 10_000,
  batchSize: 128,
  lr: 1e-4,
  engine: 'auto' as EngineChoice,
  testSolvers: 'paper' as const,
};

/** Most seeds a study may list (each multiplies the whole grid). */
export const MAX_SEEDS = 1000;

/** What the study file needs from the layers above: solver names and the spec parsers (each throws an OdenessError). */
export interface StudySemantics {
  readonly methods: readonly string[];
  isAdaptive(method: string): boolean;
  /** Canonical solver spec string, checked against the limits. */
  solver(spec: string, limits: SolverLimits): string;
  dataset(spec: string): string;
  field(spec: string): string;
  readonly defaultLimits: SolverLimits;
}

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
  /**
   * Where adaptation runs start: `hairer` — Hairer's initial step for
   * fixed-step methods, the paper's 1e-6 for adaptive ones — or canonical
   * start specs, at most one per method (methods not listed start as with `hairer`).
   */
  readonly adaptStart: 'hairer' | readonly string[];
  /**
   * Adaptation also checks folds on its check batch (beyond the paper).
   * Present only when true (the study's hash stays).
   */
  readonly adaptFolds?: true;
  readonly seeds: readonly number[];
  readonly iterations: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly engine: EngineChoice;
  /** Where the jobs' sessions run (absent: the CPU). */
  readonly device?: Device;
  /** `paper` (resolved per training solver at plan time) or canonical spec strings. */
  readonly testSolvers: 'paper' | readonly string[];
  readonly audits: { readonly crossing: boolean; readonly fan: boolean };
  /** Present only when the study file sets them (jobs then carry them). */
  readonly solverLimits?: SolverLimits;
}

/** A value, or a non-empty list of them (a scalar is reported at the key's path, a list item at its index). */
function oneOrList<T extends z.ZodType>(item: T, what: string, neither = `expected a ${what} or a list of them`) {
  return z.union([item, z.array(item).min(1, { error: `expected at least one ${what}` })], { error: neither });
}

/**
 * max(v) ≤ max, reported separately so that "expected a positive integer, got 0" stays the wording below the limit.
 */
function atMost<T extends z.ZodType<number>>(s: T, max: number, what: string) {
  return s.refine((v) => v <= max, { error: `expected at most ${max} ${what}` });
}

const specString = (example: string, what: string) =>
  z
    .string({ error: `expected a ${what} string like ${example}` })
    .refine((s) => s.trim() !== '', { error: `expected a ${what} string like ${example}` });

const stepSize = finite('a step size h, a number in (0, 1]')
  .refine((h) => h > 0, { error: 'expected a step size h, a number in (0, 1]' })
  .refine((h) => h <= 1, { error: 'expected a step size h, a number in (0, 1] (the ODE is solved over [0, 1])' });
const tolerance = finite('a tolerance, a number in (0, 1)').refine((t) => t > 0 && t < 1, {
  error: 'expected a tolerance, a number in (0, 1)',
});
const SOLVER_EXAMPLE = 'a solver spec string like "rk4:0.1" or "dopri5:1e-5"';

/** A spec string checked by its parser; a parser error is reported at the item's path. */
const canonical =
  (parse: (s: string) => string, wrap = (m: string) => m) =>
  (s: string, ctx: z.RefinementCtx): string => {
    try {
      return parse(s.trim());
    } catch (e) {
      if (!(e instanceof OdenessError)) throw e;
      ctx.addIssue({ code: 'custom', message: wrap(e.message), input: s });
      return z.NEVER;
    }
  };

/** One spec string or a list of them, each made canonical by `parse`, repeats dropped. */
const specList = (example: string, what: string, parse: (s: string) => string) =>
  oneOrList(
    specString(example, what).transform(canonical(parse)),
    what,
    `expected a ${what} string like ${example}`,
  ).transform((v) => [...new Set(Array.isArray(v) ? v : [v])]);

/** A required key holding one spec string or a list of them. */
const requiredSpecs = (example: string, what: string, parse: (s: string) => string) =>
  z
    .unknown()
    .refine((v) => v !== undefined, { error: `expected a ${what} or a list of them (required)` })
    .pipe(specList(example, what, parse));

/** `grid:` — training solvers, each a spec string or a mapping of one solver and its grid. */
function gridSchema(methods: readonly string[]) {
  const gridRecord = record({
    solver: z.enum(methods as [string, ...string[]], { error: `expected a solver name, one of ${methods.join(', ')}` }),
    steps: oneOrList(stepSize, 'step size').optional(),
    stepCounts: oneOrList(positiveInt('a step count, a positive integer'), 'step count').optional(),
    tols: oneOrList(tolerance, 'tolerance').optional(),
  });
  const gridEntry = z.union([z.string({ error: SOLVER_EXAMPLE }), gridRecord], {
    error: 'expected a solver spec string like "rk4:0.1" or a mapping like {solver: euler, steps: [0.1]}',
  });
  return z
    .array(gridEntry, {
      error: (iss) =>
        iss.input === undefined
          ? 'expected a list of training solvers (required)'
          : 'expected a list of training solvers, e.g. [{solver: euler, steps: [0.1]}]',
    })
    .min(1, { error: 'expected at least one training solver' });
}

const seedList = z
  .array(
    z
      .number({ error: 'expected a seed, a non-negative integer' })
      .refine((s) => Number.isSafeInteger(s) && s >= 0 && s <= JOB_LIMITS.seed, {
        error: 'expected a seed, a non-negative integer',
      }),
  )
  .min(1, { error: 'expected a seed count or a non-empty list of seeds' })
  .max(MAX_SEEDS, { error: `expected at most ${MAX_SEEDS} seeds` })
  .superRefine((seeds, ctx) => {
    seeds.forEach((s, i) => {
      if (seeds.indexOf(s) !== i)
        ctx.addIssue({ code: 'custom', message: 'expected each seed once', input: s, path: [i] });
    });
  });
const seedCount = atMost(positiveInt('a seed count (positive integer) or a list of seeds'), MAX_SEEDS, 'seeds');
/** `seeds:` — a count (0..n-1) or a list of distinct seeds. */
const seedsSchema = z.union([seedCount, seedList], {
  error: 'expected a seed count (positive integer) or a list of seeds',
});

/** `audits:` — a list of audit kinds or a mapping of kind → boolean. */
const auditsSchema = z.union(
  [
    z.array(z.enum(AUDIT_KINDS, { error: `expected one of ${AUDIT_KINDS.join(', ')}` })),
    record({
      crossing: z.boolean({ error: 'expected true or false' }).optional(),
      fan: z.boolean({ error: 'expected true or false' }).optional(),
    }),
  ],
  { error: 'expected a list like [crossing, fan] or a mapping like {crossing: true, fan: false}' },
);

/** `solverLimits:` — the bounds every solver spec is checked against. */
const limitsSchema = record({
  maxSteps: atMost(positiveInt('a step count ceiling, a positive integer'), JOB_LIMITS.maxSolverSteps, 'steps'),
  minTol: positive('a tolerance floor, a number in (0, 1)').refine((t) => t < 1, {
    error: 'expected a tolerance floor, a number in (0, 1)',
  }),
}).partial();

const nameSchema = z
  .string({ error: 'expected a non-empty string' })
  .refine((n) => n.trim() !== '', { error: 'expected a non-empty string' });

const adaptSchema = z.union([z.boolean(), z.literal('both', { error: 'expected false, true or "both"' })], {
  error: 'expected false, true or "both"',
});

const adaptStartSchema = z.union([z.literal('hairer'), oneOrList(z.string({ error: SOLVER_EXAMPLE }), 'start spec')], {
  error: 'expected "hairer" or a list of start specs like ["euler:0.1", "dopri5:1e-5"]',
});

const testSolversSchema = z.union(
  [
    z.literal('paper', {
      error: 'expected "paper" or a list of solver spec strings like ["rk4:0.05", "dopri5:1e-6"]',
    }),
    z
      .array(z.string({ error: SOLVER_EXAMPLE }))
      .min(1, { error: 'expected "paper" or a non-empty list of solver specs' }),
  ],
  {
    error: 'expected "paper" or a list of solver spec strings like ["rk4:0.05", "dopri5:1e-6"]',
  },
);

/** The file's keys as written, each checked on its own (cross-key rules are `normalise`'s). */
function rawStudySchema(sem: StudySemantics) {
  return record({
    name: nameSchema.optional(),
    datasets: requiredSpecs('"spheres:dupont2019:dim=2"', 'dataset spec', sem.dataset),
    field: requiredSpecs('"mlp:width=32"', 'field spec', sem.field),
    grid: gridSchema(sem.methods),
    adapt: adaptSchema.optional(),
    adaptStart: adaptStartSchema.optional(),
    adaptFolds: z.boolean({ error: 'expected true or false' }).optional(),
    seeds: seedsSchema.optional(),
    iterations: atMost(positiveInt(), JOB_LIMITS.iterations, 'iterations').optional(),
    batchSize: atMost(positiveInt(), JOB_LIMITS.batchSize, 'samples per batch').optional(),
    lr: atMost(positive('a learning rate, a positive number'), JOB_LIMITS.lr, '(a learning rate)').optional(),
    engine: EngineChoiceSchema.optional(),
    device: DeviceSchema.optional(),
    solverLimits: limitsSchema.optional(),
    testSolvers: testSolversSchema.optional(),
    audits: auditsSchema.optional(),
  });
}

type RawStudy = z.output<ReturnType<typeof rawStudySchema>>;
type RawGridRecord = Exclude<RawStudy['grid'][number], string>;

export function studyFileSchema(sem: StudySemantics) {
  return rawStudySchema(sem).transform((r, ctx): StudySpec => {
    try {
      return normalise(sem, r, ctx);
    } catch (e) {
      if (e instanceof Reported) return z.NEVER;
      throw e;
    }
  });
}

/** What the normalising steps share: the semantics, the study's limits and how to report one problem. */
interface Normaliser {
  readonly sem: StudySemantics;
  /** Records an issue at `path` and stops normalising (throws `Reported`). */
  fail(path: PropertyKey[], input: unknown, message: string): never;
  /** The canonical solver spec, checked against the study's limits; a parser error fails at `path`. */
  solverSpec(path: PropertyKey[], s: string): string;
}

function normaliser(sem: StudySemantics, lim: SolverLimits, ctx: z.RefinementCtx): Normaliser {
  const fail = (path: PropertyKey[], input: unknown, message: string): never => {
    ctx.addIssue({
      code: 'custom',
      message,
      input,
      path,
      ...(input === undefined ? { params: { absent: true } } : {}),
    });
    throw new Reported();
  };
  const solverSpec = (path: PropertyKey[], s: string): string => {
    try {
      return sem.solver(s, lim);
    } catch (e) {
      if (!(e instanceof OdenessError)) throw e;
      return fail(path, s, `invalid solver spec (${e.message})`);
    }
  };
  return { sem, fail, solverSpec };
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const itemPath = (base: PropertyKey[], v: unknown, i: number) => (Array.isArray(v) ? [...base, i] : base);

function normalise(sem: StudySemantics, r: RawStudy, ctx: z.RefinementCtx): StudySpec {
  const lim: SolverLimits = { ...sem.defaultLimits, ...(r.solverLimits ?? {}) };
  const n = normaliser(sem, lim, ctx);
  const grid: GridEntry[] = r.grid.map((g, i) => gridEntry(n, g, ['grid', i]));
  const adaptRaw = r.adapt ?? STUDY_DEFAULTS.adapt;
  if (r.adaptFolds && adaptRaw === false)
    n.fail(['adaptFolds'], r.adaptFolds, 'expected adapt: true or both (fold checks are part of adaptation runs)');
  const adaptStart = adaptStarts(n, r.adaptStart, grid);
  const seedsRaw = r.seeds ?? STUDY_DEFAULTS.seeds;
  const testSolvers = testSolverSpecs(n, r.testSolvers ?? STUDY_DEFAULTS.testSolvers);
  return {
    ...(r.name !== undefined ? { name: r.name.trim() } : {}),
    datasets: r.datasets,
    fields: r.field,
    grid,
    adapt: adaptRaw === 'both' ? [false, true] : [adaptRaw],
    adaptStart,
    ...(r.adaptFolds ? { adaptFolds: true as const } : {}),
    seeds: typeof seedsRaw === 'number' ? Array.from({ length: seedsRaw }, (_, i) => i) : seedsRaw,
    iterations: r.iterations ?? STUDY_DEFAULTS.iterations,
    batchSize: r.batchSize ?? STUDY_DEFAULTS.batchSize,
    lr: r.lr ?? STUDY_DEFAULTS.lr,
    engine: r.engine ?? STUDY_DEFAULTS.engine,
    ...(r.device !== undefined && r.device !== 'cpu' ? { device: r.device } : {}),
    testSolvers,
    audits: auditFlags(r.audits),
    ...(r.solverLimits && Object.keys(r.solverLimits).length > 0 ? { solverLimits: lim } : {}),
  };
}

/** One grid entry at `path`: a spec string, or a mapping expanded into one canonical spec per grid point. */
function gridEntry(n: Normaliser, g: RawStudy['grid'][number], path: PropertyKey[]): GridEntry {
  if (typeof g === 'string') {
    const spec = n.solverSpec(path, g);
    return { solver: spec.split(':')[0]!, specs: [spec] };
  }
  const solver = g.solver;
  const specs: string[] = [];
  const paths: PropertyKey[][] = [];
  const add = (at: PropertyKey[], spec: string) => {
    specs.push(n.solverSpec(at, spec));
    paths.push(at);
  };
  if (n.sem.isAdaptive(solver)) addAdaptivePoints(n, g, path, add);
  else addFixedPoints(n, g, path, add);
  // A repeated grid point is reported, not merged silently: it is a slip in the file.
  specs.forEach((spec, k) => {
    const first = specs.indexOf(spec);
    if (first < k)
      n.fail(
        paths[k]!,
        spec,
        `repeats ${spec} (the grid point at ${pathText(paths[first]!)}): ` +
          'each grid point trains once; remove the repeat',
      );
  });
  return { solver, specs };
}

type AddPoint = (at: PropertyKey[], spec: string) => void;

/** An adaptive solver's grid: tolerances only. */
function addAdaptivePoints(n: Normaliser, g: RawGridRecord, path: PropertyKey[], add: AddPoint): void {
  const solver = g.solver;
  for (const key of ['steps', 'stepCounts'] as const) {
    if (g[key] !== undefined) {
      const fixed = n.sem.methods.filter((m) => !n.sem.isAdaptive(m)).join(', ');
      n.fail([...path, key], g[key], `${solver} is adaptive: give "tols", not "${key}" (fixed-step solvers: ${fixed})`);
    }
  }
  if (g.tols === undefined)
    n.fail([...path, 'tols'], undefined, `expected a list of tolerances for the adaptive solver ${solver}`);
  list(g.tols!).forEach((tol, k) => add(itemPath([...path, 'tols'], g.tols, k), `${solver}:${tol}`));
}

/** A fixed-step solver's grid: step sizes and/or step counts, no tolerances. */
function addFixedPoints(n: Normaliser, g: RawGridRecord, path: PropertyKey[], add: AddPoint): void {
  const solver = g.solver;
  if (g.tols !== undefined)
    n.fail(
      [...path, 'tols'],
      g.tols,
      `${solver} is a fixed-step solver: give "steps" (step sizes) or "stepCounts", not "tols"`,
    );
  if (g.steps === undefined && g.stepCounts === undefined) {
    n.fail(
      [...path, 'steps'],
      undefined,
      `expected step sizes ("steps") or step counts ("stepCounts") for the fixed-step solver ${solver}`,
    );
  }
  if (g.steps !== undefined)
    list(g.steps).forEach((h, k) => add(itemPath([...path, 'steps'], g.steps, k), `${solver}:${h}`));
  if (g.stepCounts !== undefined)
    list(g.stepCounts).forEach((c, k) =>
      add(itemPath([...path, 'stepCounts'], g.stepCounts, k), `${solver}:steps=${c}`),
    );
}

/** `adaptStart`: `hairer`, or canonical start specs, at most one per method of the grid. */
function adaptStarts(n: Normaliser, raw: RawStudy['adaptStart'], grid: readonly GridEntry[]): 'hairer' | string[] {
  if (raw === undefined || raw === 'hairer') return 'hairer';
  const gridMethods = [...new Set(grid.map((g) => g.solver))];
  const starts: string[] = [];
  list(raw).forEach((item, i) => {
    const path = itemPath(['adaptStart'], raw, i);
    const spec = n.solverSpec(path, item);
    const method = spec.split(':')[0]!;
    if (!gridMethods.includes(method))
      n.fail(path, item, `expected a start for a method of the grid (${gridMethods.join(', ')})`);
    if (starts.some((o) => o.split(':')[0] === method))
      n.fail(path, item, `expected at most one start per method; ${method} has two`);
    starts.push(spec);
  });
  return starts;
}

/**
 * `testSolvers`: "paper", or canonical specs; "paper" inside a list adds the
 * paper's set around each training solver.
 */
function testSolverSpecs(n: Normaliser, raw: NonNullable<RawStudy['testSolvers']>): 'paper' | string[] {
  if (raw === 'paper') return 'paper';
  return [...new Set(raw.map((s, i) => (s === 'paper' ? 'paper' : n.solverSpec(['testSolvers', i], s))))];
}

/** `audits`: a list or a mapping, as flags for every kind. */
function auditFlags(raw: RawStudy['audits']): { crossing: boolean; fan: boolean } {
  const audits = { crossing: false, fan: false };
  if (Array.isArray(raw)) for (const a of raw) audits[a] = true;
  else if (raw) Object.assign(audits, Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  return audits;
}

/** A path inside the file as errors name it: grid[0].steps[2]. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

/** Thrown inside the normalising transform once an issue is recorded: one problem is reported, not its consequences. */
class Reported extends Error {}
