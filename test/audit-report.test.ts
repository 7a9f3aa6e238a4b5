import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SpecError } from '../src/errors.js';
import { escapeHtml, renderStudyReport, type ReportEval, type ReportJob, type StudyReportInput } from '../src/audit/report-html.js';

/** Synthetic study: Euler-trained spheres at h = 0.5, 0.25, 0.1 (2 seeds), an adaptation run, dopri5 on mnist, one failure. */
function study(): StudyReportInput {
  const jobs: ReportJob[] = [];
  const fixedEvals = (h: number, trainAcc: number, bad: boolean): ReportEval[] =>
    ['euler', 'midpoint', 'rk4'].flatMap((solver) =>
      [0.5, 0.75, 1, 1.5, 2].map((f) => {
        const steps = Math.max(1, Math.round(f / h));
        const own = solver === 'euler' && f === 1;
        return { spec: `${solver}:steps=${steps}`, solver, param: 1 / steps, steps, accuracy: own ? trainAcc : bad ? 0.55 : trainAcc - 0.01, nfe: steps * ({ euler: 1, midpoint: 2, rk4: 4 } as Record<string, number>)[solver]! };
      }),
    );
  for (const h of [0.5, 0.25, 0.1]) {
    for (const seed of [0, 1]) {
      jobs.push({
        id: `sph-euler-${h}-s${seed}`,
        dataset: 'spheres2',
        trainSpec: `euler:${h}`,
        seed,
        adapt: false,
        status: 'done',
        trainAccuracy: 0.97,
        totalNfe: Math.round(10_000 / h),
        evals: fixedEvals(h, 0.97, h === 0.5),
      });
    }
  }
  jobs.push({
    id: 'sph-euler-adapt-s0',
    dataset: 'spheres2',
    trainSpec: 'euler:0.5',
    seed: 0,
    adapt: true,
    status: 'done',
    trainAccuracy: 0.965,
    totalNfe: 30_000,
    adaptation: {
      kind: 'step',
      finalParam: 0.2,
      trace: Array.from({ length: 8 }, (_, i) => ({ iteration: 50 * i, param: 0.5 / (1 + i / 4), trainAccuracy: 0.6 + i * 0.05, testAccuracy: 0.5 + i * 0.06 })),
    },
  });
  for (const tol of [1e-2, 1e-4]) {
    jobs.push({
      id: `mnist-dopri5-${tol}`,
      dataset: 'mnist',
      trainSpec: `dopri5:${tol}`,
      seed: 0,
      adapt: false,
      status: 'done',
      trainAccuracy: 0.98,
      totalNfe: 1e6,
      evals: [0.1, 1, 10].map((f) => ({ spec: `dopri5:${tol * f}`, solver: 'dopri5', param: tol * f, accuracy: tol > 1e-3 && f < 1 ? 0.7 : 0.98, nfe: 50 })),
    });
  }
  jobs.push({ id: 'mnist-broken', dataset: 'mnist', trainSpec: 'rk4:0.1', seed: 3, adapt: false, status: 'failed', error: 'loss became NaN at <iteration 12> & "stopped"' });
  return { title: 'Spheres & MNIST <study>', subtitle: '2026-11-27', notes: ['synthetic numbers'], jobs };
}

test('report: self-contained HTML with figures, critical values, job and evaluation tables', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-report-'));
  try {
    const r = await renderStudyReport(study(), dir);
    const html = await readFile(r.htmlPath, 'utf8');
    t.is(html, r.html);
    t.is(r.htmlPath, join(dir, 'report.html'));
    // Self-contained: no scripts, stylesheets, fonts or any http(s) reference.
    t.false(/<script/i.test(html));
    t.false(/<link/i.test(html));
    t.false(/@import|url\(/i.test(html));
    t.false(/https?:\/\//i.test(html));
    t.true(html.includes('<style>'));
    // Escaping of user strings.
    t.true(html.includes('<title>Spheres &amp; MNIST &lt;study&gt;</title>'));
    t.true(html.includes('loss became NaN at &lt;iteration 12&gt; &amp; &quot;stopped&quot;'));
    // Figures inline and beside the page.
    const svgFiles = (await readdir(join(dir, 'figures'))).filter((f) => f.endsWith('.svg'));
    t.is(svgFiles.length, r.figures.length);
    t.is((html.match(/<svg/g) ?? []).length, svgFiles.length);
    t.true(svgFiles.includes('fig-spheres2-euler-steps.svg'));
    t.true(svgFiles.includes('fig-mnist-dopri5-tol.svg'));
    t.true(svgFiles.some((f) => f.startsWith('fig-spheres2-adapt-')));
    // Critical values: h = 0.5 fails (tests fall to 0.55), 0.25 passes; tol 1e-2 fails, 1e-4 passes.
    const sph = r.critical.find((c) => c.dataset === 'spheres2')!;
    t.is(sph.trainSolver, 'euler');
    t.is(sph.result.critical, 0.25);
    t.is(sph.result.kind, 'step');
    t.is(sph.result.evidence.length, 6);
    const mn = r.critical.find((c) => c.dataset === 'mnist')!;
    t.is(mn.result.kind, 'tol');
    t.is(mn.result.critical, 1e-4);
    t.true(html.includes('critical step size = <b>0.25</b>'));
    t.true(html.includes('critical tolerance = <b>1.00e-4</b>'));
    // Tables: jobs (every job, incl. the failed one) and evaluations.
    t.true(html.includes('<table class="jobs">'));
    t.true(html.includes('<table class="evals">'));
    for (const j of study().jobs) t.true(html.includes(`<code>${escapeHtml(j.id)}</code>`), j.id);
    t.true(html.includes('<code>rk4:steps=20</code>'));
    // Grid vs adaptation (both exist for euler on spheres2).
    t.true(html.includes('Grid search vs adaptation'));
    t.true(html.includes('grid search (all fixed configurations)'));
    t.true(html.includes('<td class="num">30,000</td>'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('report: PNGs on request, threshold validated, empty study still renders', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-report-'));
  try {
    const small: StudyReportInput = { title: 'tiny', jobs: study().jobs.filter((j) => j.dataset === 'mnist') };
    const r = await renderStudyReport(small, dir, { png: true, fileName: 'index.html' });
    const pngs = r.figures.filter((f) => f.endsWith('.png'));
    t.true(pngs.length > 0);
    t.deepEqual((await readFile(pngs[0]!)).subarray(0, 4), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    t.is(r.htmlPath, join(dir, 'index.html'));
    await t.throwsAsync(renderStudyReport({ ...small, threshold: 1 }, dir), { instanceOf: SpecError });
    await t.throwsAsync(renderStudyReport(small, dir, { fileName: '../x.html' }), { instanceOf: SpecError });
    const empty = await renderStudyReport({ title: 'nothing yet', jobs: [] }, dir);
    t.true(empty.html.includes('0 jobs'));
    t.true(empty.html.includes('<table class="jobs">'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
