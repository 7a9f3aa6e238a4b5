/**
 * The report in the real browser (headless Chromium): the page loads with no
 * console message or script error, and every figure is laid out with a
 * visible size — for a finished study and for a live one (which reloads
 * itself). A broken page proves the check can fail.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { writeReport } from '../src/report/html.js';
import { buildReportModel } from '../src/report/model.js';
import { checkPage } from './helpers/browser.js';
import { syntheticStudy } from './helpers/synthetic-study.js';

test.serial('the finished report: no console messages or script errors, every figure laid out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-browser-'));
  const s = syntheticStudy();
  const r = await writeReport(buildReportModel({ results: s.results, plan: s.plan }), dir);
  const page = await checkPage(r.htmlPath);
  t.deepEqual(page.console, []);
  const svgFigures = r.figures.filter((f) => f.endsWith('.svg')).length;
  t.is(page.figures.length, svgFigures);
  t.true(svgFigures >= 5);
  for (const f of page.figures) t.true(f.width > 100 && f.height > 100, `${f.name} laid out at ${f.width}×${f.height}`);
  t.regex(page.dom, /Grid search vs adaptation/);
});

test.serial('the live report of a running study loads in the browser and says it is running', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-browser-'));
  const s = syntheticStudy();
  const r = await writeReport(
    buildReportModel({ results: s.results.slice(0, 4), plan: s.plan, live: { running: 2 } }),
    dir,
    { refreshSeconds: 2 },
  );
  t.true(r.html.includes('<meta http-equiv="refresh" content="2">'));
  const page = await checkPage(r.htmlPath);
  t.deepEqual(page.console, []);
  t.regex(page.dom, /<b>Running<\/b>: 4 of 14 jobs finished, 2 running/);
  for (const f of page.figures) t.true(f.width > 100 && f.height > 100, `${f.name} laid out at ${f.width}×${f.height}`);
});

test.serial('the check fails on a script error and on a figure without its SVG', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-browser-'));
  const bad = join(dir, 'bad.html');
  await writeFile(
    bad,
    '<!DOCTYPE html><html><body><figure data-figure="fig-lost"><figcaption>lost</figcaption></figure><script>notDefined()</script></body></html>',
  );
  const page = await checkPage(bad);
  t.true(
    page.console.some((l) => l.includes('Uncaught ReferenceError: notDefined is not defined')),
    page.console.join('\n'),
  );
  t.deepEqual(page.figures, [{ name: 'fig-lost', width: 0, height: 0 }]);
});
