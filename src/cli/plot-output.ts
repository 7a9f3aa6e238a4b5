/** Figures written by the audit and train commands (SVG + PNG) and the lines that announce them. */
import type { Trajectories, FanAudit } from '../audit/audits.js';
import type { CrossingResult } from '../audit/crossing.js';
import type { AdaptDecision } from '../train/adapt.js';
import { writeAdaptationPlot, writeFanPlot as writeFan, writeTrajectoriesPlot, type WrittenPlot } from '../audit/plots.js';

function announce(w: WrittenPlot): void {
  process.stderr.write(`wrote ${[w.svgPath, w.pngPath].filter(Boolean).join(' and ')}\n`);
}

export async function writeTrajectoryPlot(dir: string, tr: Trajectories, labels: Int32Array, r: Omit<CrossingResult, 'pca'>): Promise<void> {
  const pairs = r.examples.map((e) => ({ i: e.i, j: e.j }));
  announce(await writeTrajectoriesPlot(dir, 'trajectories', { trajectory: tr.states, n: tr.n, d: tr.d, labels, crossings: pairs }, { png: true }));
}

export async function writeFanPlot(dir: string, r: FanAudit): Promise<void> {
  announce(await writeFan(dir, 'fan', r, { png: true }));
}

export async function writeAdaptationTrace(dir: string, kind: 'step' | 'tol', decisions: readonly AdaptDecision[]): Promise<void> {
  const points = decisions.map((d) => ({ iteration: d.iteration, param: d.paramAfter, trainAccuracy: d.trainAccuracy, testAccuracy: d.testAccuracy }));
  announce(await writeAdaptationPlot(dir, 'adaptation', { kind, points }, { png: true }));
}
