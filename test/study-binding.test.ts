/**
 * A study directory belongs to one study: an edited study run into it stops
 * with a one-line error naming what differs (results.jsonl and plan.json
 * untouched); --extend adds the new study's jobs, --replace makes the
 * directory the new study's; status and report always show results outside
 * the plan. Real tiny jobs through the real CLI.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';
import { readPlan } from '../src/study/store.js';

test.serial(
  'an edited study into the same --out: exit 1, one line, results.jsonl and plan.json byte for byte unchanged; --extend and --replace',
  async (t) => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const first = writeStudy(dir, 'a.yaml', tinyStudy({ grid: '[{solver: euler, steps: [0.5]}]', iterations: 20 }));
    const r1 = await cliResult(['study', 'run', first, '--out', out, '--workers', '1', '--no-report']);
    t.is(r1.code, 0, r1.err);
    const results = readFileSync(join(out, 'results.jsonl'));
    const plan = readFileSync(join(out, 'plan.json'));

    const edited = writeStudy(
      dir,
      'b.yaml',
      tinyStudy({ grid: '[{solver: euler, steps: [0.5, 0.25]}]', iterations: 30 }),
    );
    const r2 = await cliResult(['study', 'run', edited, '--out', out, '--workers', '1']);
    t.is(r2.code, 1);
    const lines = r2.err.trim().split('\n');
    t.is(lines.length, 1, r2.err);
    t.regex(
      lines[0]!,
      /^odeness: error: .*out belongs to another study \(grid, iterations differ\); use a new --out, or --extend .* or --replace /,
    );
    t.deepEqual(readFileSync(join(out, 'results.jsonl')), results, 'results.jsonl byte for byte unchanged');
    t.deepEqual(readFileSync(join(out, 'plan.json')), plan, 'plan.json unchanged');
    // The same study again (comments and key order do not matter) is a resume, not another study.
    const same = writeStudy(
      dir,
      'a2.json',
      JSON.stringify({
        testSolvers: ['rk4:0.1'],
        lr: 0.01,
        batchSize: 32,
        iterations: 20,
        grid: [{ steps: [0.5], solver: 'euler' }],
        field: 'mlp:width=8',
        datasets: ['spheres:dupont2019:dim=2,n=256,testN=100'],
      }),
    );
    const r3 = await cliResult(['study', 'run', same, '--out', out, '--workers', '1', '--no-report']);
    t.is(r3.code, 0, r3.err);
    t.regex(r3.out, /1 job, 0 to run \(1 already done/);

    const r4 = await cliResult(['study', 'run', edited, '--out', out, '--workers', '1', '--extend', '--no-report']);
    t.is(r4.code, 0, r4.err);
    const extended = readPlan(out)!;
    t.is(extended.jobs.length, 3, "both studies' jobs");
    t.is(extended.studies!.length, 2);
    const st = JSON.parse((await cliResult(['study', 'status', out, '--json'])).out) as {
      total: number;
      done: number;
      extraResults: number;
    };
    t.like(st, { total: 3, done: 3, extraResults: 0 });

    const r5 = await cliResult(['study', 'run', first, '--out', out, '--workers', '1', '--replace', '--no-report']);
    t.is(r5.code, 0, r5.err);
    t.is(readPlan(out)!.jobs.length, 1);
    const st2 = await cliResult(['study', 'status', out]);
    t.regex(st2.out, /1\/1 done/);
    t.regex(st2.out, /2 results not in the plan/, 'status always shows results outside the plan');
    const rep = await cliResult(['study', 'report', out]);
    t.is(rep.code, 0, rep.err);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    t.true(html.includes("Results not in this study's plan (2)"));
    t.is(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 3, 'no result was ever removed');
  },
);

test('a plan above the confirmation size is refused without --yes, in one line, before anything is written', async (t) => {
  const dir = tempDir();
  const big = writeStudy(
    dir,
    'big.yaml',
    tinyStudy({ grid: '[{solver: rk4, stepCounts: [500]}]', iterations: 1_000_000, seeds: 3 }),
  );
  const out = join(dir, 'out');
  const r = await cliResult(['study', 'run', big, '--out', out]);
  t.is(r.code, 1);
  t.is(r.err.trim().split('\n').length, 1, r.err);
  t.regex(
    r.err,
    /3 jobs and .* multiply-adds of training is above what runs without confirmation .* rerun with --yes \(or --iterations N for a smoke run\)/,
  );
  t.throws(() => readFileSync(join(out, 'plan.json')), undefined, 'nothing written');
  const p = await cliResult(['study', 'plan', big, '--no-calibrate']);
  t.is(p.code, 0, p.err);
  t.regex(p.out, /`study run` needs --yes/);
});
