/**
 * The report page's sections, each a function of the report model: the
 * header, one section per (dataset, field) with a block per training method
 * (figures, critical value, grid vs adaptation, audits, adaptation runs), the
 * job and evaluation tables, and the results that do not belong to the plan.
 */
import { accuracyVsStepsSvg, adaptationSvg, fanByClassSvg, type AccuracyCurve } from './figures.js';
import {
  esc,
  fmtAcc,
  fmtAccSpread,
  fmtNum,
  fmtNumSpread,
  fmtParam,
  paramHtml,
  plural,
  roundSpec,
  specHtml,
} from './format.js';
import { table, type Cell, type FigureSink } from './blocks.js';
import type {
  AuditSummary,
  ConfigSummary,
  CriticalAnswer,
  CriticalSummary,
  JobRow,
  MethodSection,
  ReportModel,
  Section,
} from './model.js';

const txt = (v: unknown): Cell => ({ html: esc(v) });
const num = (v: number | undefined | null): Cell => ({ html: esc(fmtNum(v)), num: true });
const acc = (v: number | undefined): Cell => ({ html: esc(fmtAcc(v)), num: true });
const code = (v: string): Cell => ({ html: `<code>${esc(v)}</code>` });
const spec = (v: string): Cell => ({ html: specHtml(v) });

export function header(model: ReportModel): string {
  const c = model.counts;
  const parts = [`<h1>${esc(model.title)}</h1>`, `<p class="sub">${esc(model.generatedAt)}</p>`];
  if (model.live) {
    const l = model.live;
    const who = l.pid !== undefined ? `process ${l.pid}${l.host ? ` on ${esc(l.host)}` : ''}, ` : '';
    const of = c.planned === undefined ? '?' : plural(c.planned, 'job');
    parts.push(
      `<p class="live"><b>Running</b>: ${c.done + c.failed} of ${of} finished, ${l.running} running ` +
        `(${who}as of ${esc(model.generatedAt)}). ` +
        'This page reloads itself until the study ends; if the run is killed, ' +
        '<code>odeness study status DIR</code> says so and rewrites this page.</p>',
    );
  }
  if (model.deadRun) {
    const d = model.deadRun;
    parts.push(
      `<p class="warn"><b>The run died</b>: process ${d.pid} on ${esc(d.host)}` +
        `${d.startedAt ? `, started ${esc(d.startedAt)},` : ''} ` +
        'is gone but its lock is still there (killed, e.g. kill -9). ' +
        `${c.pending ? `${plural(c.pending, 'job')} never finished. ` : ''}` +
        'Run <code>odeness study run FILE --out DIR</code> again to resume: finished results are kept.</p>',
    );
  }
  const planned = c.planned !== undefined ? ` of ${plural(c.planned, 'planned job')}` : '';
  const pending = c.pending ? `, ${c.pending} pending` : '';
  parts.push(
    `<p>${c.done} done, ${c.failed} failed${pending}${planned}. Critical step size / tolerance threshold: ` +
      `|test accuracy − train-solver accuracy| ≤ ${esc(model.threshold)}.</p>`,
  );
  const o = model.plan?.overrides;
  if (o) {
    const said = [
      ...(o.iterations !== undefined
        ? [[`--iterations ${o.iterations}`, `every job trains for ${plural(o.iterations, 'iteration')}`]]
        : []),
      ...(o.batchSize !== undefined ? [[`--batch-size ${o.batchSize}`, `on batches of ${o.batchSize}`]] : []),
      ...(o.testPoints !== undefined
        ? [[`--test-points ${o.testPoints}`, `and is evaluated and audited on ${plural(o.testPoints, 'test point')}`]]
        : []),
    ];
    parts.push(
      `<p class="warn">Run with ${said.map(([flag]) => `<code>${flag}</code>`).join(' ')}: ` +
        `${said.map(([, what]) => what).join(' ')}, instead of the study file's values — ` +
        "a smoke run, not the study's result.</p>",
    );
  }
  if (c.notInPlan > 0) {
    parts.push(
      `<p class="warn">${plural(c.notInPlan, 'result')} in this directory ${c.notInPlan === 1 ? 'does' : 'do'} ` +
        `not belong to its plan (another or an edited study); ${c.notInPlan === 1 ? 'it is' : 'they are'} ` +
        'listed at the end and left out of every table and figure above it.</p>',
    );
  }
  return parts.join('\n');
}

/** "critical step size ≥ 0.5" — censored values say so. */
export function criticalText(c: CriticalAnswer & Pick<CriticalSummary, 'kind' | 'smallestTested'>): string {
  const what = c.kind === 'tol' ? 'tolerance' : 'step size';
  if (c.censored === 'below')
    return (
      `no critical ${what}: the smallest tested value (${paramHtml(c.smallestTested)}) already fails, ` +
      `so it is &lt; ${paramHtml(c.smallestTested)}`
    );
  if (c.censored === 'above')
    return (
      `critical ${what} <b>≥ ${paramHtml(c.value)}</b>: the largest tested value passes ` +
      '(censored: larger values were not tested)'
    );
  return `critical ${what} = <b>${paramHtml(c.value)}</b> (the largest value such that it and every smaller one pass)`;
}

/** Value cell of a critical step for tables: "≥ 0.5", "< 0.01", "0.1". */
export function criticalValue(c: (CriticalAnswer & Pick<CriticalSummary, 'smallestTested'>) | undefined): string {
  if (!c) return '—';
  if (c.censored === 'below') return `&lt; ${paramHtml(c.smallestTested)}`;
  return `${c.censored === 'above' ? '≥ ' : ''}${paramHtml(c.value)}`;
}

const configLabel = (c: ConfigSummary) =>
  `${roundSpec(c.trainSpec)}${c.seeds.length > 1 ? ` (${c.seeds.length} seeds)` : ''}`;

async function accuracyFigures(section: Section, m: MethodSection, figures: FigureSink): Promise<string[]> {
  const out: string[] = [];
  for (const xKind of ['steps', 'tol'] as const) {
    // A tolerance axis needs at least two tolerances: one column of dots says nothing.
    if (xKind === 'tol' && m.testTolerances < 2) continue;
    const curves: AccuracyCurve[] = [];
    for (const c of m.configs) {
      const evals = c.evals.filter((e) => (e.steps !== undefined) === (xKind === 'steps'));
      if (evals.length === 0) continue;
      const own = xKind === 'steps' ? c.steps : m.kind === 'tol' ? c.param : undefined;
      curves.push({
        label: configLabel(c),
        points: evals.map((e) => ({
          x: xKind === 'steps' ? e.steps! : e.param,
          accuracy: e.accuracy.mean,
          testSolver: e.solver,
        })),
        ...(own !== undefined && c.trainAccuracy ? { train: { x: own, accuracy: c.trainAccuracy.mean } } : {}),
      });
    }
    if (curves.length === 0) continue;
    const svg = await accuracyVsStepsSvg(curves, { xKind, title: `${section.dataset}: trained with ${m.method}` });
    const marker = curves.some((c) => c.train) ? ' Diamond = the training solver itself.' : '';
    const caption =
      xKind === 'steps'
        ? 'Test accuracy vs number of test steps, one line per training configuration (mean over seeds); ' +
          `line style = test solver.${marker}`
        : `Test accuracy vs 1/tolerance of the adaptive test solvers (mean over seeds).${marker}`;
    out.push(await figures.add(`${section.dataset}-${section.field}-${m.method}-${xKind}`, svg, caption));
  }
  return out;
}

/** The rule, as the report and README state it. */
export const CRITICAL_RULES =
  'A model at chance accuracy (its training-solver accuracy not above 1/classes by more than the threshold) ' +
  'never passes. ' +
  'Proof-aware: a configuration the audits proved no ODE flow (a fold, a 1-D order swap, a persistent crossing) ' +
  'does not pass, whatever its accuracy.';

const FAILURE_TEXT = {
  deviation: 'accuracy deviates',
  chance: 'at chance accuracy',
  'non-flow': 'proven no ODE flow',
} as const;

/** Both criteria side by side, and where they differ, why. */
function criteriaHtml(c: CriticalSummary): string {
  const both = { kind: c.kind, smallestTested: c.smallestTested };
  const lines = [
    `<p>Proof-aware (the answer): ${criticalText({ ...c, ...both })}.</p>`,
    `<p>The paper's accuracy criterion: ${criticalText({ ...c.accuracy, ...both })}.</p>`,
  ];
  if (c.disagreements.length === 0) {
    lines.push('<p class="sub">The two criteria agree on every tested value.</p>');
  } else {
    const why = c.disagreements.map((d) => {
      const proofs = d.proofs.map((p) => `seed ${p.seed}: ${esc(p.text)}`).join('; ');
      return (
        `<li>${specHtml(d.trainSpec)} passes the accuracy criterion ` +
        `but the audits prove it is no ODE flow — ${proofs}</li>`
      );
    });
    lines.push(
      '<p class="warn">The criteria differ: a configuration with a proof of a non-flow does not pass, ' +
        `whatever its accuracy.</p><ul class="disagree">${why.join('')}</ul>`,
    );
  }
  if (c.atChance > 0)
    lines.push(`<p class="warn">${plural(c.atChance, 'model')} at chance accuracy: never passing.</p>`);
  return lines.join('\n');
}

function criticalBlock(c: CriticalSummary): string {
  const r = c.result;
  const extra = r.monotone
    ? ''
    : ` Not monotone: the largest passing value is ${paramHtml(r.largestPassing)}, ` +
      `while ${paramHtml(r.smallestFailing)} fails.`;
  const verdict = (pass: boolean, why?: string) =>
    pass ? '<span class="pass">pass</span>' : `<span class="failtxt">fail${why ? ` (${esc(why)})` : ''}</span>`;
  const rows = r.evidence.map((e) => ({
    cls: e.pass ? '' : 'fail',
    cells: [
      code(e.id ?? ''),
      spec(e.trainSpec),
      { html: paramHtml(e.trainParam), num: true },
      acc(e.trainAccuracy),
      { html: Number.isFinite(e.maxDeviation) ? esc(e.maxDeviation.toFixed(3)) : 'NaN', num: true },
      spec(e.worstTest),
      {
        html: verdict(
          e.accuracyPass && e.failure !== 'chance',
          e.failure === 'chance' ? FAILURE_TEXT.chance : undefined,
        ),
      },
      { html: verdict(e.pass, e.failure ? FAILURE_TEXT[e.failure] : undefined) },
    ],
  }));
  return (
    `${criteriaHtml(c)}\n<p class="sub">Only test solvers at least as accurate as the training solver judge. ` +
    `${esc(CRITICAL_RULES)}${extra}</p>\n` +
    `<details><summary>Evidence (${plural(r.evidence.length, 'model')})</summary>\n` +
    table(
      [
        'job',
        'train spec',
        c.kind === 'tol' ? 'tol' : 'h',
        'train-solver accuracy',
        'max |Δ accuracy|',
        'worst test',
        'accuracy criterion',
        'proof-aware',
      ],
      rows,
    ) +
    '\n</details>'
  );
}

function comparisonBlock(m: MethodSection): string {
  const cmp = m.comparison!;
  const a = m.adaptation!;
  const what = m.kind === 'tol' ? 'tol' : 'h';
  const g = cmp.grid;
  const gridNote = !g
    ? `no grid configuration keeps ODE semantics${m.critical ? '' : ' (no critical value: no test solver judges)'}`
    : m.critical?.censored === 'above'
      ? 'the largest value tested still passes: a larger, cheaper one may exist'
      : '';
  return (
    '<h4>Grid search vs adaptation (the paper’s Table 1)</h4>\n' +
    table(
      ['', 'configuration', `${what}`, 'accuracy (mean ± std over seeds)', 'training NFE', 'seeds'],
      [
        {
          cells: [
            txt('grid: cheapest run at or below the critical value'),
            g ? spec(g.trainSpec) : txt('—'),
            { html: g ? paramHtml(g.param) : '—', num: true },
            { html: esc(fmtAccSpread(g?.trainAccuracy)), num: true },
            { html: esc(fmtNumSpread(g?.trainNfe)), num: true },
            num(g?.trainAccuracy?.n),
          ],
        },
        {
          cells: [
            txt('grid search: every configuration (cost of finding it)'),
            txt(plural(m.configs.length, 'configuration')),
            { html: criticalValue(m.critical), num: true },
            txt(''),
            { html: esc(fmtNumSpread(cmp.gridSearchNfe)), num: true },
            num(cmp.gridSearchNfe?.n),
          ],
        },
        {
          cells: [
            { html: `adaptation${adaptFlag(cmp.adaptation)}` },
            txt(`start: ${a.start}`),
            {
              html: a.finalParam
                ? `${paramHtml(a.finalParam.mean)}` +
                  `${a.finalParam.n > 1 ? ` ± ${esc(fmtParam(a.finalParam.std))}` : ''} (final)`
                : '—',
              num: true,
            },
            { html: esc(fmtAccSpread(cmp.adaptation.trainAccuracy)), num: true },
            { html: esc(fmtNumSpread(cmp.adaptation.trainNfe)), num: true },
            num(a.runs.length),
          ],
        },
      ],
      'comparison',
    ) +
    '<p class="sub">Accuracy: test set, under the training solver (the final one for adaptation). ' +
    'NFE: field evaluations in training (forward + backward, plus the adaptation checks), per run.' +
    `${gridNote ? ` Grid: ${esc(gridNote)}.` : ''}` +
    (cmp.adaptation.provenNonFlow > 0
      ? ' ⚠ The paper’s adaptation checks accuracy only: a run can end at a step whose model folds space.'
      : '') +
    '</p>'
  );
}

/** Table 1's mark on adaptation runs that end at a proven non-flow. */
function adaptFlag(a: { provenNonFlow: number; runs: number }): string {
  if (a.provenNonFlow === 0) return '';
  return (
    ` <span class="failtxt">⚠ ${a.provenNonFlow} of ${plural(a.runs, 'run')} end${a.runs === 1 ? 's' : ''} ` +
    'at a proven non-flow (see the audits)</span>'
  );
}

function verdictHtml(seeds: NonNullable<AuditSummary['crossing']>['seeds']): string {
  // Every seed's own verdict (its numbers differ), proofs in red.
  return seeds
    .map((s) => {
      const text = esc(s.verdict.text);
      const shown = s.verdict.conclusion === 'not-an-ode-flow' ? `<span class="failtxt">${text}</span>` : text;
      return `${seeds.length > 1 ? `seed ${s.seed}: ` : ''}${shown}`;
    })
    .join('<br>');
}

/** The audited solver: one when every seed shares it, else each seed's (adaptation runs end apart). */
function seedSolvers(seeds: readonly { seed: number; solver: string }[]): string {
  const distinct = new Set(seeds.map((s) => s.solver));
  if (distinct.size <= 1) return specHtml(seeds[0]?.solver ?? '');
  return seeds.map((s) => `seed ${s.seed}: ${specHtml(s.solver)}`).join('<br>');
}

/** One audited training configuration of a method (a grid point, or the adaptation runs). */
interface AuditRow {
  readonly label: string;
  readonly specHtml: string;
  readonly audits: AuditSummary;
}

async function auditBlock(section: Section, m: MethodSection, figures: FigureSink): Promise<string> {
  const rows: AuditRow[] = m.configs.map((c) => ({
    label: configLabel(c),
    specHtml: specHtml(c.trainSpec),
    audits: c.audits,
  }));
  if (m.adaptation)
    rows.push({
      label: `adaptation (${m.adaptation.start})`,
      specHtml: esc(`adaptation, start: ${m.adaptation.start}`),
      audits: m.adaptation.audits,
    });
  const crossing = rows.filter((r) => r.audits.crossing);
  const fan = rows.filter((r) => r.audits.fan);
  if (crossing.length === 0 && fan.length === 0) return '';
  const parts: string[] = [];
  if (crossing.length > 0) {
    parts.push('<h4>Trajectory crossings and folds</h4>');
    parts.push(crossingTable(crossing));
    const first = crossing[0]!.audits.crossing!;
    parts.push(`<p class="sub">${esc(first.note)}; ${first.points} test points per run.</p>`);
  }
  if (fan.length > 0) {
    parts.push("<h4>Lady Windermere's fan: global error at t = 1 per class</h4>");
    parts.push(fanTable(fan));
    const figure = await fanFigure(section, m, fan, figures);
    if (figure !== undefined) parts.push(figure);
  }
  return parts.join('\n');
}

/** Crossing pairs, folded states and the verdict of every seed, one row per configuration. */
function crossingTable(rows: readonly AuditRow[]): string {
  return table(
    [
      'training configuration',
      'audited solver',
      'crossing pairs per seed (refined: persistent)',
      'folded states per seed',
      'verdict',
    ],
    rows.map((r) => {
      const c = r.audits.crossing!;
      const pairs = c.seeds.map(
        (s) =>
          `${fmtNum(s.crossings)} / ${fmtNum(s.pairsChecked)}` +
          (s.persistent !== undefined && s.crossings > 0 ? ` (${fmtNum(s.persistent)} persist)` : ''),
      );
      const folds = c.seeds.map((s) =>
        s.folded !== undefined ? `${fmtNum(s.folded)} / ${fmtNum(s.foldStates)}` : 'not checked',
      );
      return {
        cls: c.seeds.some((s) => s.verdict.conclusion === 'not-an-ode-flow') ? 'fail' : '',
        cells: [
          { html: r.specHtml },
          { html: seedSolvers(c.seeds) },
          { html: esc(pairs.join(', ')), num: true },
          { html: esc(folds.join(', ')), num: true },
          { html: verdictHtml(c.seeds) },
        ],
      };
    }),
    'audits',
  );
}

/** The fan's final global error per class (mean and max), one row per configuration. */
function fanTable(rows: readonly AuditRow[]): string {
  const labels = [...new Set(rows.flatMap((r) => r.audits.fan!.perClass.map((c) => c.label)))].sort((a, b) => a - b);
  return table(
    ['training configuration', 'audited solver', ...labels.map((l) => `class ${l}: mean (max)`)],
    rows.map((r) => {
      const f = r.audits.fan!;
      return {
        cells: [
          { html: r.specHtml },
          { html: seedSolvers(f.seeds ?? [{ seed: 0, solver: f.solver }]) },
          ...labels.map((l) => {
            const c = f.perClass.find((x) => x.label === l);
            return { html: c ? esc(`${fmtNum(c.finalMean.mean)} (${fmtNum(c.finalMax)})`) : '—', num: true };
          }),
        ],
      };
    }),
    'audits',
  );
}

/** The fan's mean global error against t per class, one line per configuration with a series; undefined without. */
async function fanFigure(
  section: Section,
  m: MethodSection,
  rows: readonly AuditRow[],
  figures: FigureSink,
): Promise<string | undefined> {
  const series = rows.filter((r) => r.audits.fan!.series).map((r) => ({ label: r.label, ...r.audits.fan!.series! }));
  if (series.length === 0) return undefined;
  const svg = await fanByClassSvg(series, {
    title: `${section.dataset}: global error vs t, trained with ${m.method}`,
  });
  return figures.add(
    `${section.dataset}-${section.field}-${m.method}-fan`,
    svg,
    "Lady Windermere's fan per class: mean global error ‖z_h(t) − z(t)‖ of the training solver's trajectory " +
      `against ${rows[0]!.audits.fan!.reference}, one line per training configuration (mean over seeds).`,
  );
}

async function adaptationBlock(
  section: Section,
  m: MethodSection,
  figures: FigureSink,
  maxFigures: number,
): Promise<string> {
  const a = m.adaptation!;
  const parts = [`<h4>Adaptation runs (start: ${esc(a.start)})</h4>`];
  if (a.duplicates > 0)
    parts.push(
      `<p class="warn">${plural(a.duplicates, 'duplicate adaptation result')} ` +
        '(same dataset, field, method, seed and start, planned by an older version once per grid point) ' +
        'counted once.</p>',
    );
  parts.push(
    table(
      ['job', 'seed', 'final solver', 'accuracy', 'training NFE', 'decisions', 'audit of the final solver'],
      a.runs.map((r) => ({
        cls: r.nonFlow ? 'fail' : '',
        cells: [
          code(r.id),
          num(r.seed),
          spec(r.finalSpec),
          acc(r.trainAccuracy),
          num(r.trainNfe),
          num(r.trace.length),
          { html: r.nonFlow ? `<span class="failtxt">${esc(r.nonFlow)}</span>` : '' },
        ],
      })),
    ),
  );
  const traced = a.runs.filter((r) => r.trace.length > 0);
  const figs: string[] = [];
  for (const r of traced.slice(0, maxFigures)) {
    const svg = await adaptationSvg(
      { kind: a.kind, points: r.trace },
      { title: `${m.method} adaptation, seed ${r.seed}` },
    );
    figs.push(
      await figures.add(
        `${section.dataset}-${section.field}-adapt-${r.id}`,
        svg,
        `Job ${r.id}: ${a.kind === 'tol' ? 'tolerance' : 'step size'} and accuracies over training.`,
      ),
    );
  }
  if (figs.length > 0) parts.push(figs.join('\n'));
  if (traced.length > maxFigures)
    parts.push(
      `<p class="sub">${traced.length - maxFigures} more adaptation traces not plotted (see report.json).</p>`,
    );
  return parts.join('\n');
}

export async function studySection(
  section: Section,
  _model: ReportModel,
  figures: FigureSink,
  options: { maxAdaptationFigures: number },
): Promise<string> {
  const parts = [`<h2>Dataset <code>${esc(section.dataset)}</code>, field <code>${esc(section.field)}</code></h2>`];
  for (const m of section.methods) {
    parts.push(`<h3>Trained with <code>${esc(m.method)}</code></h3>`);
    if (m.configs.length > 0) {
      parts.push(`<p class="sub">Grid: ${m.configs.map((c) => specHtml(c.trainSpec)).join(', ')}.</p>`);
      const figs = await accuracyFigures(section, m, figures);
      if (figs.length > 0) parts.push(figs.join('\n'));
    }
    if (m.critical) parts.push(criticalBlock(m.critical));
    else if (m.configs.length > 0)
      parts.push('<p>No critical value: no test solver at least as accurate as the training solver was run.</p>');
    if (m.comparison) parts.push(comparisonBlock(m));
    parts.push(await auditBlock(section, m, figures));
    if (m.adaptation) parts.push(await adaptationBlock(section, m, figures, options.maxAdaptationFigures));
  }
  return parts.filter(Boolean).join('\n');
}

function jobCells(j: JobRow): Cell[] {
  return [
    code(j.id),
    txt(j.dataset),
    txt(j.field),
    spec(j.trainSpec),
    txt(j.adapt ? `yes (${j.adaptStart === 'spec' ? 'from spec' : "Hairer's step"})` : 'no'),
    num(j.seed),
    { html: j.status === 'done' ? 'done' : '<span class="failtxt">failed</span>' },
    j.finalSpec ? spec(j.finalSpec) : txt(''),
    acc(j.trainAccuracy),
    num(j.trainNfe),
    num(j.evals.length),
    txt(j.error ?? ''),
  ];
}

const JOB_HEADERS = [
  'job',
  'dataset',
  'field',
  'train spec',
  'adapt',
  'seed',
  'status',
  'final solver',
  'train-solver accuracy',
  'training NFE',
  'evaluations',
  'error',
];

export function jobsSection(model: ReportModel): string {
  const parts = [
    '<h2>Jobs</h2>',
    table(
      JOB_HEADERS,
      model.jobs.map((j) => ({ cls: j.status === 'done' ? '' : 'fail', cells: jobCells(j) })),
      'jobs',
    ),
  ];
  const evalRows = model.jobs.filter((j) => j.status === 'done').flatMap((j) => j.evals.map((e) => ({ j, e })));
  if (evalRows.length > 0) {
    parts.push(`<details><summary>Evaluations (${plural(evalRows.length, 'row')})</summary>`);
    parts.push(
      table(
        ['job', 'dataset', 'train spec', 'seed', 'test spec', 'solver', 'h / tol', 'steps', 'accuracy', 'NFE'],
        evalRows.map(({ j, e }) => ({
          cells: [
            code(j.id),
            txt(j.dataset),
            spec(j.trainSpec),
            num(j.seed),
            spec(e.spec),
            txt(e.solver),
            { html: paramHtml(e.param), num: true },
            num(e.steps),
            acc(e.accuracy),
            num(e.nfe),
          ],
        })),
        'evals',
      ),
    );
    parts.push('</details>');
  }
  return parts.join('\n');
}

export function notInPlanSection(model: ReportModel): string {
  if (model.notInPlan.length === 0) return '';
  return [
    `<h2>Results not in this study's plan (${model.notInPlan.length})</h2>`,
    '<p class="sub">Written into this directory by another or an edited study file; not analysed above.</p>',
    table(
      JOB_HEADERS,
      model.notInPlan.map((j) => ({ cls: j.status === 'done' ? '' : 'fail', cells: jobCells(j) })),
      'not-in-plan',
    ),
  ].join('\n');
}
