/**
 * The report page rendered from the synthetic study: self-contained HTML,
 * figures inline and beside it, values that could be wrong (critical values,
 * Table 1, audits and their verdicts), rounding with exact tooltips, no
 * tolerance figure for a single tolerance, results outside the plan listed.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SpecError } from '../src/errors.js';
import { escapeHtml } from '../src/report/format.js';
import { writeReport } from '../src/report/html.js';
import { buildReportModel } from '../src/report/model.js';
import { ADAPT_FINAL_H, FAILED_ERROR, syntheticStudy } from './helpers/synthetic-study.js';

async function rendered(options: Parameters<typeof writeReport>[2] = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-report-'));
  const s = syntheticStudy();
  const model = buildReportModel({ results: s.results, plan: s.plan }, { generatedAt: '2026-11-29T20:00:00.000Z' });
  const r = await writeReport(model, dir, options);
  return { dir, s, model, r, html: await readFile(r.htmlPath, 'utf8') };
}

test('self-contained page: no scripts, styles or network; user strings escaped; report.json holds the model', async (t) => {
  const { dir, r, html, model } = await rendered();
  try {
    t.is(html, r.html);
    t.false(/<script|<link|@import|url\(|https?:\/\//i.test(html));
    t.false(/http-equiv="refresh"/.test(html), 'a finished report does not reload');
    t.true(html.includes('<title>odeness study: synthetic &lt;study&gt; &amp; co</title>'));
    t.true(html.includes(escapeHtml(FAILED_ERROR)));
    t.deepEqual(JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')), JSON.parse(JSON.stringify(model)));
    t.regex(html, /13 done, 1 failed of 14 planned jobs/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('figures: accuracy vs steps per method, a tolerance figure only with two tolerances, the fan per class, adaptation traces', async (t) => {
  const { dir, r, html } = await rendered();
  try {
    const svgs = (await readdir(join(dir, 'figures'))).filter((f) => f.endsWith('.svg')).sort();
    t.is(svgs.length, r.figures.length);
    t.is((html.match(/<svg/g) ?? []).length, svgs.length, 'every figure is inline too');
    const base = 'fig-spheres-dupont2019-dim-2-mlp-width-8-depth-2-act-tanh';
    t.true(svgs.includes(`${base}-euler-steps.svg`));
    t.false(
      svgs.includes(`${base}-euler-tol.svg`),
      'euler models met one test tolerance (dopri5:1e-6): no 1/tol figure',
    );
    t.true(svgs.includes(`${base}-dopri5-tol.svg`));
    t.true(svgs.includes(`${base}-euler-fan.svg`));
    t.is(
      svgs.filter((f) => f.includes('-adapt-')).length,
      2,
      'one trace per adaptation run that logged decisions (the 2 euler seeds)',
    );
    const fan = await readFile(join(dir, 'figures', `${base}-euler-fan.svg`), 'utf8');
    t.true(fan.includes('class 0') && fan.includes('class 1'), 'one panel per class');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('critical values with censoring, Table 1, audits with verdicts, rounded steps with exact tooltips', async (t) => {
  const { dir, html, s } = await rendered();
  try {
    t.true(html.includes('critical step size = <b>0.25</b>'));
    t.true(html.includes('critical tolerance <b>≥ 0.01</b>'), 'the largest tested tolerance passes: censored');
    t.false(html.includes('critical tolerance = '));
    // Table 1 for euler: grid at 0.25 (800 NFE, 96.0 % ± 1.0) vs adaptation (1,600 ± 100 NFE).
    const euler = html.slice(html.indexOf('Trained with <code>euler</code>'));
    const table1 = euler.slice(
      euler.indexOf('<table class="comparison">'),
      euler.indexOf('</table>', euler.indexOf('<table class="comparison">')),
    );
    t.regex(table1, /<code>euler:0\.25<\/code>/);
    t.regex(table1, /96\.0 % ± 1\.0/);
    t.regex(table1, />800 ± 0</);
    t.regex(table1, />3,200 ± 0</, 'the whole grid search per seed');
    t.regex(table1, />1,600 ± 100</);
    t.regex(table1, /start: Hairer&#39;s initial step/);
    // Audits: proof of non-ODE behaviour on h = 0.5 only.
    t.regex(
      euler,
      /seed 1: <span class="failtxt">NOT an ODE flow under euler:0\.5 — proof: a step folds space \(3 of 200 visited states have det ≤ 0\)<\/span>/,
    );
    t.regex(euler, /12 \/ 4,950, 12 \/ 4,950/);
    t.regex(euler, /no crossing found/);
    // A long step is rounded, its exact value in the tooltip.
    t.true(html.includes(`<code title="euler:${ADAPT_FINAL_H}">euler:0.0767</code>`));
    t.false(new RegExp(`>euler:${String(ADAPT_FINAL_H).replace('.', '\\.')}<`).test(html), 'never printed unrounded');
    // Every planned job in the job table; the foreign result only in its own section.
    for (const r of s.results) t.true(html.includes(`<code>${r.id}</code>`), r.id);
    const notInPlan = html.slice(html.indexOf('Results not in this study'));
    t.true(notInPlan.includes(s.foreign.id));
    t.false(html.slice(0, html.indexOf('Results not in this study')).includes(s.foreign.id));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('live page reloads itself; PNGs on request; bad file names refused; an empty study renders', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-report-'));
  try {
    const s = syntheticStudy();
    const live = buildReportModel({ results: s.results.slice(0, 3), plan: s.plan, live: { running: 2 } });
    const r = await writeReport(live, dir, { png: true, fileName: 'index.html', refreshSeconds: 3 });
    t.true(r.html.includes('<meta http-equiv="refresh" content="3">'));
    t.regex(r.html, /<b>Running<\/b>: 3 of 14 jobs finished, 2 running/);
    const pngs = r.figures.filter((f) => f.endsWith('.png'));
    t.true(pngs.length > 0);
    t.deepEqual((await readFile(pngs[0]!)).subarray(0, 4), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    await t.throwsAsync(writeReport(live, dir, { fileName: '../x.html' }), { instanceOf: SpecError });
    const empty = await writeReport(buildReportModel({ results: [], plan: s.plan }), dir);
    t.regex(empty.html, /0 done, 0 failed, 14 pending of 14 planned jobs/);
    t.true(empty.html.includes('<table class="jobs">'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
