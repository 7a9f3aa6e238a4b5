import test from 'ava';
import { studyEtaMs } from '../src/study/progress.js';

// The study bar's ETA against the true time left, on a simulated run: 3 slots, 12 jobs of 0.9–1.1 s,
// 2 s of pool start-up before the first job starts (loading tfjs and onnxruntime in each thread).
test('ETA of a study run: within a third of the true time left (or half a job near the end), from the first result on', (t) => {
  const slots = 3;
  const durations = Array.from({ length: 12 }, (_, i) => 900 + ((i * 37) % 200));
  const startUp = 2000;
  const free = Array<number>(slots).fill(startUp);
  const jobs = durations.map((ms) => {
    const s = free.indexOf(Math.min(...free));
    const start = free[s]!;
    free[s] = start + ms;
    return { start, end: start + ms, ms };
  });
  const byEnd = [...jobs].sort((a, b) => a.end - b.end);
  const lastEnd = byEnd.at(-1)!.end;
  const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
  let jobMsSum = 0;
  const report: string[] = [];
  byEnd.forEach((r, k) => {
    jobMsSum += r.ms;
    const now = r.end;
    const running = jobs.filter((j) => j.start <= now && j.end > now).length;
    const pending = jobs.filter((j) => j.start > now).length;
    if (pending + running === 0) return;
    const eta = studyEtaMs({ pending, running, finished: k + 1, jobMsSum, slots })!;
    const truth = lastEnd - now;
    report.push(`${(eta / 1000).toFixed(2)}/${(truth / 1000).toFixed(2)}s`);
    t.true(
      Math.abs(eta - truth) <= Math.max(truth / 3, mean / 2),
      `after ${k + 1} results: ETA ${eta} ms, true ${truth} ms`,
    );
  });
  t.log(report.join(' '));
  // What the bar used to print at the first result: elapsed / finished × jobs left.
  const first = byEnd[0]!;
  const naive = ((first.end / 1) * (jobs.length - 1)) / (lastEnd - first.end);
  t.true(naive > 2.5, `the old estimate was ${naive.toFixed(1)}× the truth`);
  t.is(
    studyEtaMs({ pending: 5, running: 0, finished: 0, jobMsSum: 0, slots }),
    undefined,
    'no ETA before the first result',
  );
  t.is(studyEtaMs({ pending: 0, running: 0, finished: 4, jobMsSum: 4000, slots }), 0);
});
