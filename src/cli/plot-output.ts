/** Figures written by the audit and train commands (SVG + PNG) and the lines that announce them. */
import type { Trajectories, FanAudit } from '../audit/audits.js';
import type { CrossingResult } from '../audit/crossing.js';
import type { Refinement } from '../audit/refine.js';
import { displaySpec } from '../solvers/spec.js';
import type { AdaptDecision } from '../train/adapt.js';
import {
  writeAccuracyVsStepsPlot,
  writeAdaptationPlot,
  writeFanPlot as writeFan,
  writeTrajectoriesPlot,
  type WrittenPlot,
} from '../report/figures.js';

function announce(w: WrittenPlot): void {
  process.stderr.write(`wrote ${[w.svgPath, w.pngPath].filter(Boolean).join(' and ')}\n`);
}

type AuditedCrossings = Omit<CrossingResult, 'pca'> & {
  readonly solver: string;
  readonly refinement?: Pick<Refinement, 'persistentPairs' | 'artefactPairs'>;
};

/** The crossing figure's title: what the chords' crossings are, never artefacts counted as crossings. */
export function crossingTitle(r: AuditedCrossings): string {
  const pairs = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;
  const under = `under ${displaySpec(r.solver)}`;
  if (r.crossings === 0) return `${under}: no crossing`;
  if (r.projected) return `${under}: ${pairs(r.crossings, 'crossing')} in 2-D projection (no proof)`;
  if (r.d === 1) return `${under}: ${pairs(r.crossings - (r.touchingPairs ?? 0), 'order swap')}`;
  if (!r.refinement) return `${under}: ${pairs(r.crossings, 'chord crossing')} (not refined, no proof)`;
  const { persistentPairs: p, artefactPairs: a } = r.refinement;
  return `${under}: ${pairs(p, 'persistent crossing')}${a > 0 ? `, ${pairs(a, 'chord artefact')}` : ''}`;
}

export async function writeTrajectoryPlot(
  dir: string,
  tr: Trajectories,
  labels: Int32Array,
  r: AuditedCrossings,
): Promise<void> {
  const pairs = r.examples.map((e) => ({ i: e.i, j: e.j }));
  const title = crossingTitle(r);
  announce(
    await writeTrajectoriesPlot(
      dir,
      'trajectories',
      { trajectory: tr.states, n: tr.n, d: tr.d, labels, crossings: pairs },
      { png: true, title },
    ),
  );
}

export async function writeFanPlot(dir: string, r: FanAudit): Promise<void> {
  announce(await writeFan(dir, 'fan', r, { png: true }));
}

export async function writeAdaptationTrace(
  dir: string,
  kind: 'step' | 'tol',
  decisions: readonly AdaptDecision[],
): Promise<void> {
  const points = decisions.map((d) => ({
    iteration: d.iteration,
    param: d.paramAfter,
    trainAccuracy: d.trainAccuracy,
    testAccuracy: d.testAccuracy,
  }));
  announce(await writeAdaptationPlot(dir, 'adaptation', { kind, points }, { png: true }));
}

/** The paper's main figure for one model: accuracy vs test #steps (fixed solvers) or vs 1/tol (adaptive). */
export async function writeAccuracyFigure(
  dir: string,
  label: string,
  rows: readonly SolverLabelRow[],
  trainSpec?: string,
): Promise<void> {
  const train = rows.find((r) => r.spec === trainSpec);
  const title = `Test accuracy under other solvers: model ${label}`;
  const fixed = rows.filter((r) => r.steps !== undefined);
  const adaptive = rows.filter((r) => r.steps === undefined);
  if (fixed.length > 0) {
    const curve = {
      label,
      points: fixed.map((r) => ({ x: r.steps!, accuracy: r.accuracy, testSolver: r.solver })),
      ...(train?.steps !== undefined ? { train: { x: train.steps, accuracy: train.accuracy } } : {}),
    };
    announce(await writeAccuracyVsStepsPlot(dir, 'accuracy-vs-steps', [curve], { png: true, title }));
  }
  if (adaptive.length > 0) {
    const curve = {
      label,
      points: adaptive.map((r) => ({ x: r.param, accuracy: r.accuracy, testSolver: r.solver })),
      ...(train && train.steps === undefined ? { train: { x: train.param, accuracy: train.accuracy } } : {}),
    };
    announce(await writeAccuracyVsStepsPlot(dir, 'accuracy-vs-tol', [curve], { png: true, xKind: 'tol', title }));
  }
}

interface SolverLabelRow {
  readonly spec: string;
  readonly solver: string;
  readonly param: number;
  readonly steps?: number;
  readonly accuracy: number;
}
