/**
 * The live report: while `study run` works, DIR/report.html is rewritten as
 * results arrive and reloads itself in the browser; the run's end leaves the
 * final page without the reload. Real tiny jobs through the real CLI, the
 * live page checked in headless Chromium.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';
import { checkPage } from './helpers/browser.js';
import { liveReportMs, pageMs } from '../src/report/live.js';

async function until<T>(probe: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.serial('report.html follows a running study, then ends without the reload', async (t) => {
  const dir = tempDir();
  const file = writeStudy(
    dir,
    's.yaml',
    tinyStudy({ grid: '[{solver: euler, stepCounts: [1, 2, 3]}]', seeds: 2, iterations: 3000 }),
  );
  const out = join(dir, 'out');
  // Rewrites at most every second (the default 5 s can outlast the whole tiny run on a fast machine).
  const run = cli(['study', 'run', file, '--out', out, '--workers', '1', '--report-interval', '1']);
  const html = () => (existsSync(join(out, 'report.html')) ? readFileSync(join(out, 'report.html'), 'utf8') : '');
  // The first page appears at the start of the run, before any result.
  const first = await until(() => (/<b>Running<\/b>: 0 of 6 jobs finished/.test(html()) ? html() : undefined), 60_000);
  t.true(first.includes('<meta http-equiv="refresh"'));
  // A later page shows finished jobs while others are still to come.
  const later = await until(() => {
    const m = /<b>Running<\/b>: ([1-5]) of 6 jobs finished/.exec(html());
    return m ? { n: Number(m[1]), page: html() } : undefined;
  }, 240_000);
  t.regex(later.page, /Trained with <code>euler<\/code>/, 'results are analysed while the study runs');
  const live = join(dir, 'live-copy.html');
  (await import('node:fs')).writeFileSync(live, later.page);
  const page = await checkPage(live);
  t.deepEqual(page.console, []);
  for (const f of page.figures) t.true(f.width > 100 && f.height > 100, `${f.name} laid out at ${f.width}×${f.height}`);
  t.is(await run.exited, 0, run.err());
  const final = html();
  t.false(final.includes('http-equiv="refresh"'), 'the final page does not reload');
  t.false(final.includes('<b>Running</b>'));
  t.regex(final, /6 done, 0 failed of 6 planned jobs/);
  t.regex(run.out(), /report: .*report\.html/);
});

test('the estimate prices the live report: its final page, and live pages within a tenth of the time', (t) => {
  // 2 000 results over 20 s on 2 workers of 2 cores: pages at 0, 5 and 10 s (the last in a child, ~1 s, so the
  // next would come after 20 s), each taking the cores from the workers, then the final page.
  const live = pageMs(0) + pageMs(500) + pageMs(1000);
  t.is(liveReportMs(2000, 20_000, 2, 2), pageMs(2000) + live / 2);
  t.true(
    pageMs(2000) > 1000 && pageMs(2000) < 2000,
    `a child's page of 2 000 results, measured ~1.3 s: ${pageMs(2000)}`,
  );
  // With a core to spare the live pages cost no wall time; the final page still does.
  t.is(liveReportMs(2000, 20_000, 1, 2), pageMs(2000));
  // A long big run: live pages never take more than a tenth of its time.
  const hour = 3_600_000;
  t.true(liveReportMs(20_000, hour, 2, 2) - pageMs(20_000) <= hour / 10 / 2);
  // Figures dominate a big study's page (paper-spheres: 620 results and 32 figures, 2.7 s in a child, idle), and its
  // live pages over a 400 s run cost more than its final one, and less than their tenth of one core's time.
  t.true(pageMs(620, 32) > 2000 && pageMs(620, 32) < 4000, `paper-spheres' page: ${pageMs(620, 32)}`);
  const spheres = liveReportMs(620, 400_000, 2, 2, 32);
  t.true(spheres > 2 * pageMs(620, 32) && spheres < pageMs(620, 32) + 400_000 / 10 / 2 + 1, `${spheres}`);
});
