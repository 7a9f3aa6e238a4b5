/**
 * Butcher tableaus: every Runge–Kutta method odeness knows, defined once as
 * frozen data that checks itself on creation. Both numeric engines (tfjs
 * tensors for training, typed arrays / onnxruntime for evaluation) step with
 * these same numbers through one generic RK step (`integrate.ts`).
 */
import { SpecError } from '../errors.js';

export interface Tableau {
  readonly name: string;
  /** Order of the propagated solution (drives the step-size exponent). */
  readonly order: number;
  /** Stage times c_i. */
  readonly c: readonly number[];
  /** Strictly lower-triangular stage weights; a[i] has i entries. */
  readonly a: readonly (readonly number[])[];
  /** Weights of the propagated solution. */
  readonly b: readonly number[];
  /** Error weights b − b̂ of the embedded pair (adaptive methods only). */
  readonly bErr?: readonly number[];
  /** First-same-as-last: the last stage is f(t+h, y1), reusable as the next k1. */
  readonly fsal: boolean;
  readonly adaptive: boolean;
}

interface TableauInput {
  name: string;
  order: number;
  c: number[];
  a: number[][];
  b: number[];
  /** Weights of the embedded lower-order solution; bErr = b − bLow. */
  bLow?: number[];
  /** Or the error weights directly (when published that way, e.g. Tsit5). */
  bErr?: number[];
}

const TOL = 1e-12;

function defineTableau(input: TableauInput): Tableau {
  const s = input.c.length;
  const fail = (why: string): never => {
    throw new Error(`tableau ${input.name}: ${why}`);
  };
  if (input.a.length !== s || input.b.length !== s) fail('c, a and b must have one entry per stage');
  input.a.forEach((row, i) => {
    if (row.length !== i) fail(`row a[${i}] must have ${i} entries`);
    const sum = row.reduce((x, y) => x + y, 0);
    if (Math.abs(sum - input.c[i]!) > TOL) fail(`row a[${i}] sums to ${sum}, not c[${i}] = ${input.c[i]}`);
  });
  const bSum = input.b.reduce((x, y) => x + y, 0);
  if (Math.abs(bSum - 1) > TOL) fail(`weights b sum to ${bSum}, not 1`);
  let bErr: number[] | undefined = input.bErr;
  if (input.bLow) {
    if (input.bLow.length !== s) fail('bLow must have one entry per stage');
    bErr = input.b.map((bi, i) => bi - input.bLow![i]!);
  }
  if (bErr) {
    if (bErr.length !== s) fail('bErr must have one entry per stage');
    const eSum = bErr.reduce((x, y) => x + y, 0);
    if (Math.abs(eSum) > TOL) fail(`error weights sum to ${eSum}, not 0`);
  }
  // FSAL: the last stage is evaluated at (t + h, y1) exactly.
  const last = input.a[s - 1]!;
  const fsal =
    s > 1 && input.c[s - 1] === 1 && input.b[s - 1] === 0 && last.every((v, j) => Math.abs(v - input.b[j]!) <= TOL);
  return Object.freeze({
    name: input.name,
    order: input.order,
    c: Object.freeze([...input.c]),
    a: Object.freeze(input.a.map((r) => Object.freeze([...r]))),
    b: Object.freeze([...input.b]),
    bErr: bErr ? Object.freeze([...bErr]) : undefined,
    fsal,
    adaptive: bErr !== undefined,
  });
}

const tableaus: Tableau[] = [
  defineTableau({ name: 'euler', order: 1, c: [0], a: [[]], b: [1] }),
  defineTableau({ name: 'midpoint', order: 2, c: [0, 1 / 2], a: [[], [1 / 2]], b: [0, 1] }),
  defineTableau({ name: 'heun', order: 2, c: [0, 1], a: [[], [1]], b: [1 / 2, 1 / 2] }),
  defineTableau({
    name: 'rk4',
    order: 4,
    c: [0, 1 / 2, 1 / 2, 1],
    a: [[], [1 / 2], [0, 1 / 2], [0, 0, 1]],
    b: [1 / 6, 1 / 3, 1 / 3, 1 / 6],
  }),
  // Kutta's 3/8 rule: what torchdiffeq calls "rk4".
  defineTableau({
    name: 'rk4_38',
    order: 4,
    c: [0, 1 / 3, 2 / 3, 1],
    a: [[], [1 / 3], [-1 / 3, 1], [1, -1, 1]],
    b: [1 / 8, 3 / 8, 3 / 8, 1 / 8],
  }),
  // Heun–Euler 2(1).
  defineTableau({ name: 'adaptive_heun', order: 2, c: [0, 1], a: [[], [1]], b: [1 / 2, 1 / 2], bLow: [1, 0] }),
  // Runge–Kutta–Fehlberg 1(2), propagating the 2nd-order solution as torchdiffeq does.
  defineTableau({
    name: 'fehlberg2',
    order: 2,
    c: [0, 1 / 2, 1],
    a: [[], [1 / 2], [1 / 256, 255 / 256]],
    b: [1 / 512, 255 / 256, 1 / 512],
    bLow: [1 / 256, 255 / 256, 0],
  }),
  // Bogacki–Shampine 3(2), FSAL.
  defineTableau({
    name: 'bosh3',
    order: 3,
    c: [0, 1 / 2, 3 / 4, 1],
    a: [[], [1 / 2], [0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]],
    b: [2 / 9, 1 / 3, 4 / 9, 0],
    bLow: [7 / 24, 1 / 4, 1 / 3, 1 / 8],
  }),
  // Dormand–Prince 5(4), FSAL (Hairer, Nørsett & Wanner I, Table 5.2).
  defineTableau({
    name: 'dopri5',
    order: 5,
    c: [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
    a: [
      [],
      [1 / 5],
      [3 / 40, 9 / 40],
      [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
      [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ],
    b: [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    bLow: [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
  }),
  // Tsitouras 5(4), FSAL (Tsitouras 2011, Comput. Math. Appl. 62:770).
  defineTableau({
    name: 'tsit5',
    order: 5,
    c: [0, 0.161, 0.327, 0.9, 0.9800255409045097, 1, 1],
    a: [
      [],
      [0.161],
      [-0.008480655492356989, 0.335480655492357],
      [2.897153057105493, -6.359448489975075, 4.3622954328695815],
      [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
      [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383],
      [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774],
    ],
    b: [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774, 0],
    bErr: [
      -0.00178001105222577714,
      -0.0008164344596567469,
      0.007880878010261995,
      -0.1447110071732629,
      0.5823571654525552,
      -0.45808210592918697,
      1 / 66,
    ],
  }),
];

const registry = new Map<string, Tableau>();
for (const t of tableaus) {
  if (registry.has(t.name)) throw new Error(`duplicate tableau ${t.name}`);
  registry.set(t.name, t);
}

export const FIXED_METHODS: readonly string[] = tableaus.filter((t) => !t.adaptive).map((t) => t.name);
export const ADAPTIVE_METHODS: readonly string[] = tableaus.filter((t) => t.adaptive).map((t) => t.name);
export const METHODS: readonly string[] = [...FIXED_METHODS, ...ADAPTIVE_METHODS];

export function getTableau(name: string): Tableau {
  const t = registry.get(name);
  if (!t) throw new SpecError(`unknown solver "${name}"; expected one of ${METHODS.join(', ')}`);
  return t;
}
