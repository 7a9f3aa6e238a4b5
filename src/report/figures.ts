/**
 * The project's figures as vega-lite specs (typed with vega-lite's
 * `TopLevelSpec`), rendered by vega.ts:
 *
 *  (a) accuracyVsStepsSvg — test accuracy vs test #steps (log x) or vs 1/tol,
 *                           one line per training configuration, the train
 *                           point marked by a diamond (the paper's main figure)
 *  (b) trajectoriesSvg    — 2-D trajectories coloured by class, crossing
 *                           pairs highlighted, start/end markers
 *  (c) fanSvg             — global error over t per class: mean line + band, log y;
 *      fanByClassSvg      — the same for several training configurations, one panel per class
 *  (d) adaptationSvg      — h (or tol) over iterations and both accuracies, two panels
 *
 * Each `xxxSvg` returns the SVG text; each `writeXxxPlot(dir, name, …)`
 * writes `name.svg` (and `name.png` when `png: true`) into `dir`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { LayerSpec, UnitSpec } from 'vega-lite/types_unstable/spec/index.js';
import { SpecError } from '../errors.js';
import type { CrossingResult } from '../audit/crossing.js';
import { pca2, projectStates } from '../linalg/pca.js';
import { type Floats, type TrajectoryInput, trajectorySteps } from '../audit/states.js';
import type { FanResult } from '../audit/fan.js';
import { renderVegaLite, writePlot, type WriteOptions, type WrittenPlot } from './vega.js';

export { renderVegaLite, svgToPng, writePlot, type WriteOptions, type WrittenPlot } from './vega.js';

export interface PlotOptions {
  readonly title?: string;
  /** Plot area size in pixels (per panel). */
  readonly width?: number;
  readonly height?: number;
}

const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#b279a2',
  '#e45756',
  '#72b7b2',
  '#eeca3b',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
];

type Row = Record<string, string | number>;
/** One layer of a layered figure. */
type Layer = LayerSpec<string> | UnitSpec<string>;

const finite = (v: number): boolean => Number.isFinite(v);

// ---------------------------------------------------------------------------
// (a) accuracy vs test steps (or 1/tol)
// ---------------------------------------------------------------------------

export interface AccuracyPoint {
  /** Number of test steps (xKind 'steps') or the test tolerance (xKind 'tol'; plotted as 1/tol). */
  readonly x: number;
  readonly accuracy: number;
  /** Test solver name (e.g. "euler"); lines are dashed per solver when several appear. */
  readonly testSolver?: string;
}

export interface AccuracyCurve {
  /** Training configuration, e.g. "euler h=0.1". */
  readonly label: string;
  readonly points: readonly AccuracyPoint[];
  /** The training solver's own point, drawn as a diamond. Same x convention as points. */
  readonly train?: { readonly x: number; readonly accuracy: number };
}

export interface AccuracyPlotOptions extends PlotOptions {
  /** 'steps' (default): x = test #steps; 'tol': x given as tolerance, plotted as 1/tol. */
  readonly xKind?: 'steps' | 'tol';
  readonly xTitle?: string;
  readonly yTitle?: string;
  /** Fixed y domain, e.g. [0, 1]; default: fit the data. */
  readonly yDomain?: readonly [number, number];
}

/**
 * The data's accuracy range, widened to at least 0.1 and kept inside [0, 1]:
 * fitted exactly, equal accuracies (an untrained smoke-run model) collapse
 * the axis to one tick printed as "0.580000".
 */
export function accuracyDomain(values: readonly number[]): [number, number] {
  const v = values.filter(finite);
  if (v.length === 0) return [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  const pad = Math.max(0, 0.1 - (hi - lo)) / 2;
  lo = Math.max(0, lo - pad);
  hi = Math.min(1, hi + pad);
  if (hi - lo < 0.1) lo === 0 ? (hi = 0.1) : (lo = hi - 0.1);
  return [lo, hi];
}

export function accuracyVsStepsSpec(curves: readonly AccuracyCurve[], options: AccuracyPlotOptions = {}): TopLevelSpec {
  const xKind = options.xKind ?? 'steps';
  const toX = (x: number): number => (xKind === 'tol' ? 1 / x : x);
  const lines: Row[] = [];
  const trains: Row[] = [];
  for (const c of curves) {
    for (const p of c.points) {
      const x = toX(p.x);
      if (x > 0 && finite(x) && finite(p.accuracy))
        lines.push({ config: c.label, x, accuracy: p.accuracy, solver: p.testSolver ?? '' });
    }
    if (c.train) {
      const x = toX(c.train.x);
      if (x > 0 && finite(x) && finite(c.train.accuracy))
        trains.push({ config: c.label, x, accuracy: c.train.accuracy, marker: 'train solver' });
    }
  }
  const solvers = new Set(lines.map((r) => r['solver']));
  const xTitle = options.xTitle ?? (xKind === 'tol' ? '1 / tolerance (test)' : 'number of test steps');
  const yTitle = options.yTitle ?? 'test accuracy';
  const domain = curves.map((c) => c.label);
  const color = { field: 'config', type: 'nominal', title: 'training configuration', scale: { domain } } as const;
  // Ticks at the tested values themselves (when few), thinned where they would overlap: a log axis's
  // own ticks put "9" and "10" on top of each other.
  const tested = [...new Set([...lines, ...trains].map((r) => Number(r['x'])))].sort((a, b) => a - b);
  const axis = {
    labelOverlap: 'greedy',
    labelFlush: true,
    ...(tested.length <= 12 ? { values: spacedOnLogAxis(tested, options.width ?? 380) } : {}),
  } as const;
  const x = { field: 'x', type: 'quantitative', scale: { type: 'log', nice: false }, axis, title: xTitle } as const;
  // A margin of 4 % of the span beyond the data: a diamond at the best accuracy sits inside the frame.
  const fitted = accuracyDomain([...lines, ...trains].map((r) => Number(r['accuracy'])));
  const margin = 0.04 * (fitted[1] - fitted[0]);
  const yDomain: number[] = [...(options.yDomain ?? [fitted[0] - margin, fitted[1] + margin])];
  const y = { field: 'accuracy', type: 'quantitative', title: yTitle, scale: { domain: yDomain } } as const;
  const dash = {
    field: 'solver',
    type: 'nominal',
    title: 'test solver',
    legend: {
      symbolType: 'stroke',
      symbolSize: 300,
      encode: { symbols: { update: { stroke: { value: '#333' }, strokeWidth: { value: 2 } } } },
    },
  } as const;
  const layers: Layer[] = [
    {
      data: { values: lines },
      mark: { type: 'line', point: { filled: true, size: 30 }, strokeWidth: 1.8 },
      encoding: { x, y, color: { ...color, scale: { domain } }, ...(solvers.size > 1 ? { strokeDash: dash } : {}) },
    },
  ];
  if (trains.length > 0) {
    layers.push({
      data: { values: trains },
      mark: { type: 'point', filled: true, size: 170, stroke: 'black', strokeWidth: 1, opacity: 1 },
      encoding: {
        x,
        y,
        color: { ...color, scale: { domain } },
        shape: {
          field: 'marker',
          type: 'nominal',
          title: 'marker',
          scale: { domain: ['train solver'], range: ['diamond'] },
        },
      },
    });
  }
  return {
    ...(options.title ? { title: options.title } : {}),
    width: options.width ?? 380,
    height: options.height ?? 260,
    resolve: { scale: { color: 'shared' } },
    layer: layers,
  };
}

/** The paper's main figure: test accuracy vs test #steps (log x), one line per training configuration. */
/**
 * The sorted values whose labels stay at least `gap` pixels apart on a log axis `width` wide (the
 * first and the last always kept): vega's greedy overlap removal hides a label by opacity, which
 * the PNG renderer does not honour.
 */
function spacedOnLogAxis(sorted: readonly number[], width: number, gap = 26): number[] {
  if (sorted.length < 3) return [...sorted];
  const lo = Math.log(sorted[0]!);
  const span = Math.log(sorted[sorted.length - 1]!) - lo || 1;
  const px = (v: number): number => ((Math.log(v) - lo) / span) * width;
  const last = sorted[sorted.length - 1]!;
  const kept: number[] = [sorted[0]!];
  for (const v of sorted.slice(1, -1)) {
    if (px(v) - px(kept[kept.length - 1]!) >= gap && px(last) - px(v) >= gap) kept.push(v);
  }
  kept.push(last);
  return kept;
}

export async function accuracyVsStepsSvg(
  curves: readonly AccuracyCurve[],
  options: AccuracyPlotOptions = {},
): Promise<string> {
  return renderVegaLite(accuracyVsStepsSpec(curves, options));
}

export async function writeAccuracyVsStepsPlot(
  dir: string,
  name: string,
  curves: readonly AccuracyCurve[],
  options: AccuracyPlotOptions & WriteOptions = {},
): Promise<WrittenPlot> {
  return writePlot(dir, name, await accuracyVsStepsSvg(curves, options), options);
}

// ---------------------------------------------------------------------------
// (b) 2-D trajectories
// ---------------------------------------------------------------------------

export interface TrajectoryPlotInput {
  /** States at K+1 times ([K+1][N·d] or flat). d > 2 is projected on its 2 leading principal components. */
  readonly trajectory: TrajectoryInput;
  readonly n: number;
  readonly d: number;
  /** Class of each point (default: all 0). */
  readonly labels?: ArrayLike<number>;
  /** Pairs to highlight: a crossing result (its `pairs` if listed, else its examples) or an explicit list. */
  readonly crossings?: CrossingResult | readonly { readonly i: number; readonly j: number }[];
}

export interface TrajectoryPlotOptions extends PlotOptions {
  /** Most trajectories drawn (crossing ones first, then evenly spaced others). Default 300. */
  readonly maxTrajectories?: number;
  readonly xTitle?: string;
  readonly yTitle?: string;
}

const CROSSING_SERIES = 'crossing pair';

export function trajectoriesSpec(input: TrajectoryPlotInput, options: TrajectoryPlotOptions = {}): TopLevelSpec {
  const { n, d } = input;
  const plane = planeOf(trajectorySteps(input.trajectory, n, d, 'trajectory plot'), n, d, options);
  const labels = input.labels ?? new Array<number>(n).fill(0);
  if (labels.length !== n) throw new SpecError(`trajectory plot: ${labels.length} labels for ${n} points`);
  let pairs: readonly { i: number; j: number }[] = [];
  if (input.crossings) {
    pairs = Array.isArray(input.crossings)
      ? input.crossings
      : ((input.crossings as CrossingResult).pairs ?? (input.crossings as CrossingResult).examples);
  }
  const { ids, crossingIds } = chooseTrajectories(pairs, n, options.maxTrajectories ?? 300);
  const classes = [...new Set(Array.from(labels))].sort((a, b) => a - b).map((c) => `class ${c}`);
  const { rows, hi, marks } = trajectoryRows(plane.states, ids, crossingIds, labels);
  const domain = hi.length > 0 ? [...classes, CROSSING_SERIES] : classes;
  const range = domain.map((s, q) => (s === CROSSING_SERIES ? '#000000' : PALETTE[q % PALETTE.length]!));
  const color = { field: 'series', type: 'nominal', title: 'class', scale: { domain, range } } as const;
  const x = { field: 'x', type: 'quantitative', title: plane.axisX, scale: { zero: false } } as const;
  const y = { field: 'y', type: 'quantitative', title: plane.axisY, scale: { zero: false } } as const;
  const path = { detail: { field: 'id', type: 'nominal' }, order: { field: 'k', type: 'quantitative' } } as const;
  return {
    ...(options.title ? { title: options.title } : {}),
    width: options.width ?? 360,
    height: options.height ?? 360,
    layer: [
      ...(hi.length > 0
        ? [
            {
              data: { values: hi },
              mark: { type: 'line', strokeWidth: 4, opacity: 0.85 },
              encoding: { x, y, color, ...path },
            } satisfies Layer,
          ]
        : []),
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 1.2, opacity: 0.8 },
        encoding: { x, y, color, ...path },
      },
      {
        data: { values: marks },
        mark: { type: 'point', filled: true, size: 22, opacity: 0.9 },
        encoding: {
          x,
          y,
          color,
          shape: {
            field: 'marker',
            type: 'nominal',
            title: 'marker',
            scale: { domain: ['start', 'end'], range: ['circle', 'square'] },
          },
        },
      },
    ],
  };
}

/**
 * The states as points of the plotted plane (2n values per time) with its axis titles: 2-D as they are, 1-D against
 * time (step / K), d > 2 on their two leading principal components.
 */
function planeOf(
  states: Floats[],
  n: number,
  d: number,
  options: TrajectoryPlotOptions,
): { states: Floats[]; axisX: string; axisY: string } {
  if (d === 1) {
    const K1 = states.length;
    const planar = states.map((s, k) => {
      const out = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) {
        out[2 * i] = K1 === 1 ? 0 : k / (K1 - 1);
        out[2 * i + 1] = s[i]!;
      }
      return out;
    });
    return { states: planar, axisX: options.xTitle ?? 'step / K', axisY: options.yTitle ?? 'z' };
  }
  if (d > 2) {
    const pca = pca2(states, n, d);
    const pct = (100 * pca.explainedVariance).toFixed(1);
    return {
      states: projectStates(states, n, d, pca),
      axisX: options.xTitle ?? `PC 1 (PC 1+2 explain ${pct}% of variance)`,
      axisY: options.yTitle ?? 'PC 2',
    };
  }
  return { states, axisX: options.xTitle ?? 'z₁', axisY: options.yTitle ?? 'z₂' };
}

/** At most maxT trajectories, ascending: the crossing pairs' first, then evenly spaced others. */
function chooseTrajectories(
  pairs: readonly { i: number; j: number }[],
  n: number,
  maxT: number,
): { ids: number[]; crossingIds: Set<number> } {
  const chosen = new Set<number>();
  const crossingIds = new Set<number>();
  for (const p of pairs) {
    if (chosen.size + 2 > maxT) break;
    chosen.add(p.i);
    chosen.add(p.j);
    crossingIds.add(p.i);
    crossingIds.add(p.j);
  }
  const rest = maxT - chosen.size;
  if (rest > 0) {
    const stride = Math.max(1, n / rest);
    for (let f = 0; f < n && chosen.size < maxT; f += stride) chosen.add(Math.floor(f));
  }
  return { ids: [...chosen].sort((a, b) => a - b), crossingIds };
}

/** The plotted rows: every trajectory's points, the crossing ones again (the underlay), start and end markers. */
function trajectoryRows(
  states: readonly Floats[],
  ids: readonly number[],
  crossingIds: ReadonlySet<number>,
  labels: ArrayLike<number>,
): { rows: Row[]; hi: Row[]; marks: Row[] } {
  const rows: Row[] = [];
  const hi: Row[] = [];
  const marks: Row[] = [];
  const K1 = states.length;
  for (const i of ids) {
    const series = `class ${labels[i]}`;
    for (let k = 0; k < K1; k++) {
      const x = states[k]![2 * i]!;
      const y = states[k]![2 * i + 1]!;
      rows.push({ id: i, k, x, y, series });
      if (crossingIds.has(i)) hi.push({ id: i, k, x, y, series: CROSSING_SERIES });
    }
    marks.push({ id: i, x: states[0]![2 * i]!, y: states[0]![2 * i + 1]!, series, marker: 'start' });
    marks.push({ id: i, x: states[K1 - 1]![2 * i]!, y: states[K1 - 1]![2 * i + 1]!, series, marker: 'end' });
  }
  return { rows, hi, marks };
}

/** Trajectories as polylines coloured by class; crossing pairs get a thick black underlay. */
export async function trajectoriesSvg(
  input: TrajectoryPlotInput,
  options: TrajectoryPlotOptions = {},
): Promise<string> {
  return renderVegaLite(trajectoriesSpec(input, options));
}

export async function writeTrajectoriesPlot(
  dir: string,
  name: string,
  input: TrajectoryPlotInput,
  options: TrajectoryPlotOptions & WriteOptions = {},
): Promise<WrittenPlot> {
  return writePlot(dir, name, await trajectoriesSvg(input, options), options);
}

// ---------------------------------------------------------------------------
// (c) Lady Windermere's fan
// ---------------------------------------------------------------------------

export interface FanPlotOptions extends PlotOptions {
  /** Band: mean ± std (default) or min…max. */
  readonly band?: 'std' | 'minmax';
}

/** A tenth of the smallest positive value: the band's lower edge is clipped there so the log scale holds. */
function logFloor(series: readonly (readonly number[])[]): number {
  let floor = Infinity;
  for (const s of series) for (const m of s) if (m > 0 && m < floor) floor = m;
  return floor === Infinity ? 1e-300 : floor / 10;
}

const FAN_Y_TITLE = 'global error ‖z_h(t) − z(t)‖';

export function fanSpec(fan: Pick<FanResult, 'times' | 'perClass'>, options: FanPlotOptions = {}): TopLevelSpec {
  const band = options.band ?? 'std';
  const floor = logFloor(fan.perClass.map((c) => c.mean));
  const rows: Row[] = [];
  for (const c of fan.perClass) {
    fan.times.forEach((t, k) => {
      const mean = c.mean[k]!;
      if (!(mean > 0) || !finite(mean)) return;
      const lo = band === 'std' ? mean - c.std[k]! : c.min[k]!;
      const hi = band === 'std' ? mean + c.std[k]! : c.max[k]!;
      rows.push({ t, cls: `class ${c.label}`, mean, lo: Math.max(lo, floor), hi: Math.max(hi, floor) });
    });
  }
  const color = { field: 'cls', type: 'nominal', title: 'class' } as const;
  // At most ~6 t labels, dropped where they would overlap ("0.500.55").
  const tAxis = { tickCount: 6, labelOverlap: 'greedy', labelFlush: true } as const;
  const x = { field: 't', type: 'quantitative', title: 't', axis: tAxis } as const;
  return {
    title: options.title ?? `Lady Windermere's fan (mean, band ${band === 'std' ? '± std' : 'min–max'})`,
    width: options.width ?? 380,
    height: options.height ?? 260,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'area', opacity: 0.18 },
        encoding: {
          x,
          y: { field: 'lo', type: 'quantitative', scale: { type: 'log' }, title: FAN_Y_TITLE },
          y2: { field: 'hi' },
          color,
        },
      },
      {
        mark: { type: 'line', strokeWidth: 2, point: { size: 18 } },
        encoding: { x, y: { field: 'mean', type: 'quantitative', scale: { type: 'log' }, title: FAN_Y_TITLE }, color },
      },
    ],
  };
}

/**
 * Global error over t per class, log y: a mean line and a band. Points with a
 * zero mean (t0, where the error is 0) are left out.
 */
export async function fanSvg(
  fan: Pick<FanResult, 'times' | 'perClass'>,
  options: FanPlotOptions = {},
): Promise<string> {
  return renderVegaLite(fanSpec(fan, options));
}

export async function writeFanPlot(
  dir: string,
  name: string,
  fan: Pick<FanResult, 'times' | 'perClass'>,
  options: FanPlotOptions & WriteOptions = {},
): Promise<WrittenPlot> {
  return writePlot(dir, name, await fanSvg(fan, options), options);
}

/** The fan of one training configuration (mean over its points, per class). */
export interface FanSeries {
  readonly label: string;
  readonly times: readonly number[];
  readonly perClass: readonly { readonly label: number; readonly mean: readonly number[] }[];
}

/**
 * Several training configurations' fans side by side: one panel per class, one
 * line per configuration (log y) — how the global error's bias differs between
 * classes is what a classifier can exploit.
 */
/** Class panels per row of the fan-by-class figure. */
export const FAN_PANELS_PER_ROW = 3;

export function fanByClassSpec(series: readonly FanSeries[], options: PlotOptions = {}): TopLevelSpec {
  const rows: Row[] = [];
  for (const s of series) {
    for (const c of s.perClass) {
      s.times.forEach((t, k) => {
        const mean = c.mean[k]!;
        if (mean > 0 && finite(mean)) rows.push({ t, config: s.label, cls: `class ${c.label}`, mean });
      });
    }
  }
  return {
    ...(options.title ? { title: options.title } : {}),
    data: { values: rows },
    // Wrapped: ten MNIST classes side by side are wider than any page.
    facet: { field: 'cls', type: 'nominal', title: null, sort: [...new Set(rows.map((r) => String(r['cls'])))] },
    columns: FAN_PANELS_PER_ROW,
    spec: {
      width: options.width ?? 240,
      height: options.height ?? 200,
      mark: { type: 'line', strokeWidth: 1.8, point: { size: 14 } },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 't', axis: { tickCount: 5, labelOverlap: 'greedy' } },
        y: { field: 'mean', type: 'quantitative', scale: { type: 'log' }, title: FAN_Y_TITLE },
        color: {
          field: 'config',
          type: 'nominal',
          title: 'training configuration',
          scale: { domain: series.map((s) => s.label) },
        },
      },
    },
  };
}

export async function fanByClassSvg(series: readonly FanSeries[], options: PlotOptions = {}): Promise<string> {
  return renderVegaLite(fanByClassSpec(series, options));
}

// ---------------------------------------------------------------------------
// (d) adaptation trace
// ---------------------------------------------------------------------------

export interface AdaptationPoint {
  readonly iteration: number;
  /** Step size h (kind 'step') or tolerance (kind 'tol') in use. */
  readonly param: number;
  /** Accuracy with the training solver. */
  readonly trainAccuracy: number;
  /** Accuracy with the test solver. */
  readonly testAccuracy: number;
}

export interface AdaptationTrace {
  readonly kind: 'step' | 'tol';
  readonly points: readonly AdaptationPoint[];
}

export interface AdaptationPlotOptions extends PlotOptions {
  /** Log y for the parameter panel. Default true for 'tol', false for 'step'. */
  readonly logParam?: boolean;
}

export function adaptationSpec(trace: AdaptationTrace, options: AdaptationPlotOptions = {}): TopLevelSpec {
  const logParam = options.logParam ?? trace.kind === 'tol';
  const paramTitle = trace.kind === 'tol' ? 'tolerance' : 'step size h';
  const params: Row[] = trace.points
    .filter((p) => finite(p.param) && (!logParam || p.param > 0))
    .map((p) => ({ iteration: p.iteration, param: p.param }));
  const acc: Row[] = [];
  for (const p of trace.points) {
    if (finite(p.trainAccuracy))
      acc.push({ iteration: p.iteration, accuracy: p.trainAccuracy, series: 'train solver' });
    if (finite(p.testAccuracy)) acc.push({ iteration: p.iteration, accuracy: p.testAccuracy, series: 'test solver' });
  }
  const width = options.width ?? 420;
  const height = options.height ?? 150;
  const x = { field: 'iteration', type: 'quantitative', title: 'iteration', axis: { format: 'd' } } as const;
  return {
    title: options.title ?? (trace.kind === 'tol' ? 'Tolerance adaptation' : 'Step-size adaptation'),
    vconcat: [
      {
        width,
        height,
        data: { values: params },
        mark: { type: 'line', interpolate: 'step-after', point: { size: 14 } },
        encoding: {
          x,
          y: {
            field: 'param',
            type: 'quantitative',
            title: paramTitle,
            scale: logParam ? { type: 'log' } : { zero: false },
            ...(logParam ? { axis: { format: '.0e' } } : {}),
          },
        },
      },
      {
        width,
        height,
        data: { values: acc },
        mark: { type: 'line', point: { size: 14 } },
        encoding: {
          x,
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { zero: false } },
          color: {
            field: 'series',
            type: 'nominal',
            title: 'solver',
            scale: { domain: ['train solver', 'test solver'] },
          },
        },
      },
    ],
  };
}

/** Two panels over iterations: h (or tol) on top, train- and test-solver accuracy below. */
export async function adaptationSvg(trace: AdaptationTrace, options: AdaptationPlotOptions = {}): Promise<string> {
  return renderVegaLite(adaptationSpec(trace, options));
}

export async function writeAdaptationPlot(
  dir: string,
  name: string,
  trace: AdaptationTrace,
  options: AdaptationPlotOptions & WriteOptions = {},
): Promise<WrittenPlot> {
  return writePlot(dir, name, await adaptationSvg(trace, options), options);
}
