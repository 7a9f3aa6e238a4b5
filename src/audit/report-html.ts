/**
 * The study report: one self-contained HTML page (inline CSS, figures as
 * inline SVG, no scripts, no external fonts or styles — it opens in a browser
 * without network access). Each figure is also written beside it as an SVG
 * (and PNG on request).
 *
 * Content, per dataset:
 *  - accuracy vs number of test steps (or vs 1/tol for adaptive test solvers):
 *    one figure per training solver, one line per training configuration
 *    (accuracies averaged over seeds), the training solver's point marked;
 *  - the critical step size / tolerance per training solver (see critical.ts),
 *    with its evidence table;
 *  - grid vs adaptation cost when both exist for a training solver: accuracy
 *    and total NFE of the grid search against the adaptation runs;
 *  - adaptation traces;
 * and for the whole study a table of every job and every evaluation
 * (accuracy and NFE). Failed jobs appear in the job table with their error.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSolverSpec, solverParam } from '../solvers/spec.js';
import { SpecError } from '../errors.js';
import { type CriticalResult, atLeastAsAccurate, checkThreshold, criticalStep, DEFAULT_THRESHOLD } from './critical.js';
import { type AccuracyCurve, type AdaptationPoint, accuracyVsStepsSvg, adaptationSvg, svgToPng } from './plots.js';

/** One cross-solver evaluation of a trained model. */
export interface ReportEval {
  /** Test solver spec, e.g. "rk4:steps=20" or "dopri5:1e-4". */
  readonly spec: string;
  /** Test solver name, e.g. "rk4". */
  readonly solver: string;
  /** Step size h (fixed-step) or tolerance (adaptive). */
  readonly param: number;
  /** Number of steps for fixed-step solvers; absent for adaptive ones (they are plotted against 1/param). */
  readonly steps?: number;
  /** Test-set accuracy in [0, 1]. */
  readonly accuracy: number;
  /** Function evaluations per sample for this evaluation. */
  readonly nfe: number;
}

/** The record of a step-size or tolerance adaptation run. */
export interface ReportAdaptation {
  readonly kind: 'step' | 'tol';
  /** h or tol at the end of training. */
  readonly finalParam: number;
  /** Checks made during training (iteration, param, both accuracies). */
  readonly trace: readonly AdaptationPoint[];
}

/** One job of the study (one training run and its evaluations). */
export interface ReportJob {
  readonly id: string;
  readonly dataset: string;
  /** Training solver spec (the initial one for adaptation runs). */
  readonly trainSpec: string;
  readonly seed: number;
  /** True for step-size / tolerance adaptation runs. */
  readonly adapt: boolean;
  readonly status: 'done' | 'failed';
  /** Error message of a failed job. */
  readonly error?: string;
  /** Training solver name; default: parsed from trainSpec. */
  readonly trainSolver?: string;
  /** h (or 1/steps on [0, 1]) or tol of the training solver; default: parsed from trainSpec. */
  readonly trainParam?: number;
  /** Test-set accuracy with the training solver (final solver for adaptation runs). */
  readonly trainAccuracy?: number;
  /** Total function evaluations spent by the job (training + evaluation). */
  readonly totalNfe?: number;
  readonly evals?: readonly ReportEval[];
  readonly adaptation?: ReportAdaptation;
}

export interface StudyReportInput {
  readonly title: string;
  /** Shown under the title, e.g. an ISO date. */
  readonly subtitle?: string;
  /** Threshold for the critical step size (default 0.1). */
  readonly threshold?: number;
  /** Free-text notes shown at the top (escaped). */
  readonly notes?: readonly string[];
  readonly jobs: readonly ReportJob[];
}

export interface StudyReportOptions {
  /** Also write PNGs of the figures. Default false. */
  readonly png?: boolean;
  /** HTML file name. Default "report.html". */
  readonly fileName?: string;
  /** Most adaptation-trace figures (default 12). */
  readonly maxAdaptationFigures?: number;
}

export interface CriticalSummary {
  readonly dataset: string;
  readonly trainSolver: string;
  readonly result: CriticalResult;
}

export interface StudyReport {
  readonly html: string;
  readonly htmlPath: string;
  /** Written figure files (SVG, and PNG when asked). */
  readonly figures: string[];
  readonly critical: CriticalSummary[];
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const esc = (v: unknown): string => escapeHtml(String(v));

function fmtAcc(a: number | undefined): string {
  return a === undefined || !Number.isFinite(a) ? '—' : `${(100 * a).toFixed(1)} %`;
}

function fmtNum(v: number | undefined | null): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length;
}

function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length);
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'x';
}

interface TrainInfo {
  readonly solver: string;
  readonly param: number;
  readonly adaptive: boolean;
}

/** Solver name, parameter and kind of a job's training spec (tolerant of specs this version cannot parse). */
function trainInfo(job: ReportJob): TrainInfo {
  let solver = job.trainSolver;
  let param = job.trainParam;
  let adaptive = job.adaptation ? job.adaptation.kind === 'tol' : false;
  try {
    const spec = parseSolverSpec(job.trainSpec);
    solver ??= spec.method;
    param ??= solverParam(spec);
    adaptive = spec.kind === 'adaptive';
  } catch {
    solver ??= job.trainSpec.split(':')[0]!.trim() || job.trainSpec;
    param ??= NaN;
  }
  return { solver, param, adaptive };
}

/** Is this evaluation the job's own training solver (same spec, or same solver and parameter)? */
function isOwnEval(job: ReportJob, e: ReportEval): boolean {
  if (e.spec === job.trainSpec) return true;
  const info = trainInfo(job);
  return e.solver === info.solver && Math.abs(e.param - info.param) <= 1e-9 * Math.abs(info.param);
}

/** Inline copy of an SVG: drop the XML namespace attributes (not needed inside HTML). */
function inlineSvg(svg: string): string {
  return svg.replace(/\s+xmlns(:xlink)?="[^"]*"/g, '');
}

const CSS = `
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:2px solid #ddd;padding-bottom:.2em}h3{margin-top:1.2em}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fff0f0}.pass{color:#1a7f37;font-weight:bold}.failtxt{color:#b42318;font-weight:bold}
figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}figcaption{font-size:.85em;color:#555;max-width:640px}
.note{background:#f8f8f8;border-left:4px solid #bbb;padding:6px 10px;margin:6px 0}
code{font-size:.95em}
`;

function table(headers: readonly string[], rows: readonly { cells: readonly { html: string; num?: boolean }[]; cls?: string }[], cls = ''): string {
  const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows
    .map((r) => `<tr${r.cls ? ` class="${r.cls}"` : ''}>${r.cells.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.html}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

const txt = (v: unknown): { html: string } => ({ html: esc(v) });
const num = (v: number | undefined | null): { html: string; num: boolean } => ({ html: esc(fmtNum(v)), num: true });
const acc = (v: number | undefined): { html: string; num: boolean } => ({ html: esc(fmtAcc(v)), num: true });

// ---------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------

/**
 * Write `outDir/report.html` (self-contained) and its figures; returns the HTML
 * and the paths. Throws SpecError for an invalid threshold.
 */
/** Subfolder of the report's directory that holds the SVG (and PNG) figures. */
export const FIGURE_DIR = 'figures';

export async function renderStudyReport(input: StudyReportInput, outDir: string, options: StudyReportOptions = {}): Promise<StudyReport> {
  const threshold = checkThreshold(input.threshold ?? DEFAULT_THRESHOLD);
  const fileName = options.fileName ?? 'report.html';
  if (!/^[A-Za-z0-9._-]+\.html?$/.test(fileName)) throw new SpecError(`report file name "${fileName}" must be a plain *.html name`);
  // Figures beside the page, in their own folder, so a study directory stays readable.
  const figureDir = join(outDir, FIGURE_DIR);
  await mkdir(figureDir, { recursive: true });
  const figures: string[] = [];
  const usedNames = new Set<string>();
  const figure = async (base: string, svg: string, caption: string): Promise<string> => {
    let name = `fig-${slug(base)}`;
    for (let q = 2; usedNames.has(name); q++) name = `fig-${slug(base)}-${q}`;
    usedNames.add(name);
    const svgPath = join(figureDir, `${name}.svg`);
    await writeFile(svgPath, svg, 'utf8');
    figures.push(svgPath);
    if (options.png) {
      const pngPath = join(figureDir, `${name}.png`);
      await writeFile(pngPath, await svgToPng(svg));
      figures.push(pngPath);
    }
    return `<figure>${inlineSvg(svg)}<figcaption>${esc(caption)} <span class="sub">(${FIGURE_DIR}/${esc(name)}.svg)</span></figcaption></figure>`;
  };

  const jobs = input.jobs;
  const done = jobs.filter((j) => j.status === 'done');
  const failed = jobs.filter((j) => j.status !== 'done');
  const datasets = [...new Set(jobs.map((j) => j.dataset))].sort();
  const parts: string[] = [];
  const criticalOut: CriticalSummary[] = [];

  parts.push(`<h1>${esc(input.title)}</h1>`);
  if (input.subtitle) parts.push(`<p class="sub">${esc(input.subtitle)}</p>`);
  parts.push(
    `<p>${jobs.length} jobs: ${done.length} done, ${failed.length} failed. Datasets: ${datasets.map((d) => `<code>${esc(d)}</code>`).join(', ') || '—'}. ` +
      `Critical step size / tolerance threshold: |test accuracy − train-solver accuracy| ≤ ${esc(threshold)}.</p>`,
  );
  for (const note of input.notes ?? []) parts.push(`<p class="note">${esc(note)}</p>`);

  for (const dataset of datasets) {
    parts.push(`<h2>Dataset <code>${esc(dataset)}</code></h2>`);
    const dsJobs = done.filter((j) => j.dataset === dataset);
    const solvers = [...new Set(dsJobs.map((j) => trainInfo(j).solver))].sort();
    for (const solver of solvers) {
      const sJobs = dsJobs.filter((j) => trainInfo(j).solver === solver);
      const grid = sJobs.filter((j) => !j.adapt);
      const adapt = sJobs.filter((j) => j.adapt);
      parts.push(`<h3>Trained with <code>${esc(solver)}</code></h3>`);

      // --- accuracy vs test steps (grid jobs), lines per training configuration
      const configs = [...new Set(grid.map((j) => j.trainSpec))].sort((a, b) => {
        const pa = trainInfo(grid.find((j) => j.trainSpec === a)!).param;
        const pb = trainInfo(grid.find((j) => j.trainSpec === b)!).param;
        return pb - pa || a.localeCompare(b);
      });
      const figs: string[] = [];
      for (const xKind of ['steps', 'tol'] as const) {
        const curves: AccuracyCurve[] = [];
        for (const spec of configs) {
          const cJobs = grid.filter((j) => j.trainSpec === spec);
          const bySpec = new Map<string, { x: number; solver: string; accs: number[]; own: boolean }>();
          for (const j of cJobs) {
            for (const e of j.evals ?? []) {
              const isSteps = e.steps !== undefined;
              if (isSteps !== (xKind === 'steps')) continue;
              const x = isSteps ? e.steps! : e.param;
              const entry = bySpec.get(e.spec) ?? { x, solver: e.solver, accs: [], own: isOwnEval(j, e) };
              entry.accs.push(e.accuracy);
              bySpec.set(e.spec, entry);
            }
          }
          if (bySpec.size === 0) continue;
          const points = [...bySpec.values()].map((v) => ({ x: v.x, accuracy: mean(v.accs), testSolver: v.solver }));
          const own = [...bySpec.values()].find((v) => v.own);
          const seeds = cJobs.length;
          const curve: AccuracyCurve = {
            label: `${spec}${seeds > 1 ? ` (${seeds} seeds)` : ''}`,
            points,
            ...(own ? { train: { x: own.x, accuracy: mean(own.accs) } } : {}),
          };
          curves.push(curve);
        }
        if (curves.length === 0) continue;
        const svg = await accuracyVsStepsSvg(curves, {
          xKind,
          title: `${dataset}: trained with ${solver}`,
        });
        figs.push(
          await figure(
            `${dataset}-${solver}-${xKind}`,
            svg,
            xKind === 'steps'
              ? `Test accuracy vs number of test steps, one line per training configuration (mean over seeds); diamond = the training solver itself.`
              : `Test accuracy vs 1/tolerance of adaptive test solvers; diamond = the training solver itself.`,
          ),
        );
      }
      if (figs.length > 0) parts.push(figs.join('\n'));

      // --- critical step / tolerance
      const rows = grid
        .filter((j) => (j.evals ?? []).length > 0)
        .map((j) => {
          const info = trainInfo(j);
          const own = (j.evals ?? []).filter((e) => isOwnEval(j, e));
          const trainAccuracy = own.length > 0 ? mean(own.map((e) => e.accuracy)) : (j.trainAccuracy ?? NaN);
          return {
            id: j.id,
            trainSpec: j.trainSpec,
            trainParam: info.param,
            trainAccuracy,
            tests: (j.evals ?? []).filter((e) => !isOwnEval(j, e) && atLeastAsAccurate(j.trainSpec, e.spec)).map((e) => ({ spec: e.spec, accuracy: e.accuracy })),
            adaptive: info.adaptive,
          };
        })
        .filter((r) => r.tests.length > 0 && Number.isFinite(r.trainParam) && r.trainParam > 0);
      let critical: CriticalResult | undefined;
      if (rows.length > 0) {
        const kind = rows.every((r) => r.adaptive) ? 'tol' : 'step';
        critical = criticalStep(rows, { threshold, kind });
        criticalOut.push({ dataset, trainSolver: solver, result: critical });
        const what = kind === 'tol' ? 'tolerance' : 'step size';
        const verdict =
          critical.critical === null
            ? `no critical ${what}: the smallest tested value (${fmtNum(critical.params[0]!.param)}) already fails`
            : `critical ${what} = <b>${esc(fmtNum(critical.critical))}</b> (largest value such that it and every smaller one pass; only test solvers at least as accurate as the training solver count)`;
        const extra = critical.monotone
          ? ''
          : ` Not monotone: the largest passing value is ${esc(fmtNum(critical.largestPassing))}, while ${esc(fmtNum(critical.smallestFailing))} fails.`;
        parts.push(`<p>${verdict}.${extra}</p>`);
        parts.push(
          table(
            ['job', 'train spec', kind === 'tol' ? 'tol' : 'h', 'train-solver accuracy', 'max |Δ accuracy|', 'worst test', 'verdict'],
            critical.evidence.map((e) => ({
              cls: e.pass ? '' : 'fail',
              cells: [
                { html: `<code>${esc(e.id ?? '')}</code>` },
                { html: `<code>${esc(e.trainSpec)}</code>` },
                num(e.trainParam),
                acc(e.trainAccuracy),
                { html: Number.isFinite(e.maxDeviation) ? esc(e.maxDeviation.toFixed(3)) : 'NaN', num: true },
                { html: `<code>${esc(e.worstTest)}</code>` },
                { html: e.pass ? '<span class="pass">pass</span>' : '<span class="failtxt">fail</span>' },
              ],
            })),
          ),
        );
      }

      // --- grid vs adaptation
      if (grid.length > 0 && adapt.length > 0) {
        const gridNfe = grid.reduce((s, j) => s + (j.totalNfe ?? 0), 0);
        const chosen = critical?.critical ?? null;
        const atCritical = chosen === null ? [] : grid.filter((j) => trainInfo(j).param === chosen).map((j) => j.trainAccuracy).filter((a): a is number => a !== undefined);
        const adaptAcc = adapt.map((j) => j.trainAccuracy).filter((a): a is number => a !== undefined);
        const adaptNfe = adapt.reduce((s, j) => s + (j.totalNfe ?? 0), 0);
        const finals = adapt.map((j) => j.adaptation?.finalParam).filter((p): p is number => p !== undefined);
        parts.push('<h4>Grid search vs adaptation</h4>');
        parts.push(
          table(
            ['method', 'jobs', 'accuracy (mean ± std over seeds)', 'total NFE', 'NFE per job', 'step / tol'],
            [
              {
                cells: [
                  txt('grid search (all fixed configurations)'),
                  num(grid.length),
                  { html: atCritical.length > 0 ? esc(`${fmtAcc(mean(atCritical))} ± ${(100 * std(atCritical)).toFixed(1)} (at the critical value)`) : '—' },
                  num(gridNfe),
                  num(Math.round(gridNfe / grid.length)),
                  num(chosen),
                ],
              },
              {
                cells: [
                  txt('adaptation'),
                  num(adapt.length),
                  { html: adaptAcc.length > 0 ? esc(`${fmtAcc(mean(adaptAcc))} ± ${(100 * std(adaptAcc)).toFixed(1)}`) : '—' },
                  num(adaptNfe),
                  num(Math.round(adaptNfe / adapt.length)),
                  num(finals.length > 0 ? mean(finals) : null),
                ],
              },
            ],
          ),
        );
        parts.push(`<p class="sub">Grid cost is the sum over every grid job (the whole search); its accuracy is that of the models trained at the critical value. Adaptation: final accuracy and the final h / tol, mean over runs.</p>`);
      }
    }

    // --- adaptation traces
    const traced = dsJobs.filter((j) => j.adapt && j.adaptation && j.adaptation.trace.length > 0);
    const maxFigs = options.maxAdaptationFigures ?? 12;
    if (traced.length > 0) {
      parts.push('<h3>Adaptation traces</h3>');
      const figs: string[] = [];
      for (const j of traced.slice(0, maxFigs)) {
        const svg = await adaptationSvg({ kind: j.adaptation!.kind, points: j.adaptation!.trace }, { title: `${j.trainSpec} seed ${j.seed}` });
        figs.push(await figure(`${dataset}-adapt-${j.id}`, svg, `Job ${j.id}: ${j.adaptation!.kind === 'tol' ? 'tolerance' : 'step size'} and accuracies over training.`));
      }
      parts.push(figs.join('\n'));
      if (traced.length > maxFigs) parts.push(`<p class="sub">${traced.length - maxFigs} more adaptation runs not plotted.</p>`);
    }
  }

  // --- jobs table
  parts.push('<h2>Jobs</h2>');
  parts.push(
    table(
      ['job', 'dataset', 'train spec', 'seed', 'adapt', 'status', 'train-solver accuracy', 'total NFE', 'evaluations', 'error'],
      jobs.map((j) => ({
        cls: j.status === 'done' ? '' : 'fail',
        cells: [
          { html: `<code>${esc(j.id)}</code>` },
          txt(j.dataset),
          { html: `<code>${esc(j.trainSpec)}</code>` },
          num(j.seed),
          txt(j.adapt ? 'yes' : 'no'),
          { html: j.status === 'done' ? 'done' : '<span class="failtxt">failed</span>' },
          acc(j.trainAccuracy),
          num(j.totalNfe),
          num((j.evals ?? []).length),
          txt(j.error ?? ''),
        ],
      })),
      'jobs',
    ),
  );

  // --- evaluations table
  const evalRows = done.flatMap((j) => (j.evals ?? []).map((e) => ({ j, e })));
  if (evalRows.length > 0) {
    parts.push('<h2>Evaluations</h2>');
    parts.push(
      table(
        ['job', 'dataset', 'train spec', 'seed', 'test spec', 'solver', 'h / tol', 'steps', 'accuracy', 'NFE'],
        evalRows.map(({ j, e }) => ({
          cells: [
            { html: `<code>${esc(j.id)}</code>` },
            txt(j.dataset),
            { html: `<code>${esc(j.trainSpec)}</code>` },
            num(j.seed),
            { html: `<code>${esc(e.spec)}</code>` },
            txt(e.solver),
            num(e.param),
            num(e.steps),
            acc(e.accuracy),
            num(e.nfe),
          ],
        })),
        'evals',
      ),
    );
  }

  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.title)}</title>
<style>${CSS}</style>
</head>
<body>
${parts.join('\n')}
</body>
</html>
`;
  const htmlPath = join(outDir, fileName);
  await writeFile(htmlPath, html, 'utf8');
  return { html, htmlPath, figures, critical: criticalOut };
}
