/**
 * Live pages of a big study are written by a child process (src/report/render-process.ts), so that the
 * run's own memory does not keep what a render of every result held: the child's page is the page the
 * run would have written itself, its errors come back naming the file, and LiveReport switches to it
 * past its threshold.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bindStudy } from '../src/study/store.js';
import { writeStudyReport } from '../src/report/study.js';
import { writeStudyReportInChild } from '../src/report/render-process.js';
import { LiveReport } from '../src/report/live.js';
import { syntheticStudy } from './helpers/synthetic-study.js';

function studyDir(t: { teardown(f: () => void): void }, results = 7): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-child-report-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const s = syntheticStudy();
  fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(bindStudy(dir, undefined, s.plan)));
  const finished = s.results.filter((r) => s.plan.jobs.some((j) => j.id === r.id)).slice(0, results);
  fs.writeFileSync(path.join(dir, 'results.jsonl'), finished.map((r) => JSON.stringify(r) + '\n').join(''));
  return dir;
}

/** The page without what differs between two writes of it (the time it was written). */
const stable = (html: string) => html.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, 'T');

test('a child process writes the page the run would have written itself', async (t) => {
  const dir = studyDir(t);
  const live = { running: 2, pid: 4242, host: os.hostname(), startedAt: '2026-12-07T09:00:00.000Z' };
  await writeStudyReport(dir, { live, allowEmpty: true });
  const here = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  fs.rmSync(path.join(dir, 'report.html'));
  const htmlPath = await writeStudyReportInChild(dir, { live, allowEmpty: true });
  t.is(htmlPath, path.join(dir, 'report.html'));
  const there = fs.readFileSync(htmlPath, 'utf8');
  t.regex(there, /<b>Running<\/b>: 7 of 14 jobs finished, 2 running \(process 4242 on /);
  t.is(stable(there), stable(here));
});

test("a child's failure comes back naming the file", async (t) => {
  const empty = studyDir(t, 0);
  await t.throwsAsync(writeStudyReportInChild(empty), { message: /results\.jsonl: no results yet/ });
  const broken = studyDir(t);
  fs.writeFileSync(path.join(broken, 'plan.json'), '{"jobs": [');
  await t.throwsAsync(writeStudyReportInChild(broken, { allowEmpty: true }), { message: /plan\.json: not valid JSON/ });
});

test('the live report renders in a child from its threshold on, and here below it, its final page too', async (t) => {
  for (const [childFromResults, inChild] of [
    [7, 1],
    [8, 0],
  ] as const) {
    const dir = studyDir(t);
    const live = new LiveReport(dir, { childFromResults, minIntervalMs: 1 });
    live.onEvent({ type: 'plan', total: 14, toRun: 7, alreadyDone: 7, alreadyFailed: 0, transport: 'test' });
    const end = Date.now() + 60_000;
    while (live.renders === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    t.is(live.renders, 1);
    t.is(live.childRenders, inChild, `threshold ${childFromResults}`);
    t.regex(fs.readFileSync(path.join(dir, 'report.html'), 'utf8'), /<b>Running<\/b>: 7 of 14 jobs finished/);
    await live.finish();
    t.is(live.childRenders, 2 * inChild, 'the final page is written where the live ones were');
    t.notRegex(fs.readFileSync(path.join(dir, 'report.html'), 'utf8'), /http-equiv="refresh"/);
  }
});

test('one rewrite at a time: results arriving during a slow child render do not queue renders behind it', async (t) => {
  const dir = studyDir(t);
  // Quick renders here first (a short interval), then slow ones in a child while results keep coming.
  const live = new LiveReport(dir, { childFromResults: 8, minIntervalMs: 1 });
  live.onEvent({ type: 'plan', total: 14, toRun: 7, alreadyDone: 7, alreadyFailed: 0, transport: 'test' });
  const s = syntheticStudy();
  const end = Date.now() + 4000;
  for (let i = 0; Date.now() < end; i++) {
    live.onEvent({ type: 'result', result: s.results[i % s.results.length]! });
    await new Promise((r) => setTimeout(r, 20));
  }
  const before = live.childRenders;
  const t0 = Date.now();
  await live.finish();
  // At most the rewrite in flight and the final page.
  t.true(
    live.childRenders - before <= 2,
    `${live.childRenders - before - 1} child renders were still queued at the end`,
  );
  t.true(live.childRenders >= 1);
  t.log(`finish took ${Date.now() - t0} ms, ${live.renders} renders (${live.childRenders} in a child)`);
});

test("the run's end stops a child's live page in flight instead of waiting for it", async (t) => {
  const dir = studyDir(t);
  const errors: unknown[] = [];
  const live = new LiveReport(dir, { childFromResults: 0, minIntervalMs: 1, onError: (e) => errors.push(e) });
  live.onEvent({ type: 'plan', total: 14, toRun: 7, alreadyDone: 7, alreadyFailed: 0, transport: 'test' });
  // The live page's child has started (its start-up alone takes longer than this).
  await new Promise((r) => setTimeout(r, 300));
  await live.finish();
  t.deepEqual(errors, [], 'a stopped live page is no failure');
  t.is(live.renders, 1, 'only the final page was written');
  t.is(live.childRenders, 1);
  t.notRegex(fs.readFileSync(path.join(dir, 'report.html'), 'utf8'), /http-equiv="refresh"/);
});

/** Packages a module reaches through its static imports (src/*.ts, following './x.js' to './x.ts'). */
function packagesReached(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[entry, [entry]]]);
  const packages = new Map<string, string[]>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const source = fs.readFileSync(file, 'utf8');
    for (const m of source.matchAll(/^(import|export)\s+(type\s)?[^;]*?from\s+'([^']+)'/gms)) {
      if (m[2]) continue; // type-only: gone after compilation
      const spec = m[3]!;
      const chain = seen.get(file)!;
      if (!spec.startsWith('.')) {
        if (!packages.has(spec)) packages.set(spec, chain);
        continue;
      }
      const next = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!seen.has(next)) {
        seen.set(next, [...chain, next]);
        queue.push(next);
      }
    }
  }
  return packages;
}

test("a report render loads no compute engine: tfjs and onnxruntime cost the child a second's start", (t) => {
  const reached = packagesReached(path.resolve('workers/report-render.ts'));
  t.true(reached.has('vega-lite'), 'the walk follows imports (it reaches the figures)');
  for (const engine of ['@tensorflow/tfjs', 'onnxruntime-node', 'onnx-proto']) {
    const chain = reached.get(engine)?.map((f) => path.relative(process.cwd(), f));
    t.is(chain, undefined, `${engine} is reached through ${chain?.join(' -> ')}`);
  }
});
