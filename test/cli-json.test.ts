import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { runCli, type CliResult } from './helpers/cli.js';
import { cli, requirePrerequisite, startNats } from './helpers/procs.js';

// Every command with --json prints ONE parseable JSON document on stdout (study run --events: JSON Lines, one per event),
// on inputs cheap enough for the default test run; and the renamed flags keep working for one release.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-json-'));
const model = path.join(tmp, 'model');
const DATASET = 'spheres:dupont2019:dim=2,n=64,testN=32';

function oneDocument(t: import('ava').ExecutionContext, r: CliResult, what: string): Record<string, unknown> {
  t.is(r.code, 0, `${what}: ${r.stderr}`);
  const doc: unknown = JSON.parse(r.stdout); // throws on a second document or any other text
  t.true(typeof doc === 'object' && doc !== null && !Array.isArray(doc), `${what}: ${r.stdout.slice(0, 200)}`);
  return doc as Record<string, unknown>;
}

test.before(async () => {
  const r = await runCli([
    'train',
    '--dataset',
    DATASET,
    '--solver',
    'euler:0.5',
    '--iterations',
    '20',
    '--batch-size',
    '16',
    '--log-every',
    '10',
    '--out',
    model,
    '--json',
  ]);
  if (r.code !== 0) throw new Error(`train failed: ${r.stderr}`);
  fs.writeFileSync(
    path.join(tmp, 'z0.json'),
    JSON.stringify([
      [0.1, 0.2],
      [-0.3, 0.4],
    ]),
  );
  fs.writeFileSync(
    path.join(tmp, 'points.json'),
    JSON.stringify({
      x: [
        [0.1, 0.2],
        [1.2, -0.1],
        [-0.2, 0.1],
        [0.9, 0.9],
      ],
      y: [0, 1, 0, 1],
    }),
  );
});

test.serial('train, info, evaluate, export, solve, audit: one JSON document each', async (t) => {
  const train = oneDocument(
    t,
    await runCli([
      'train',
      '--dataset',
      DATASET,
      '--solver',
      'euler:0.5',
      '--iterations',
      '20',
      '--batch-size',
      '16',
      '--log-every',
      '10',
      '--out',
      path.join(tmp, 'm2'),
      '--json',
    ]),
    'train',
  );
  t.like(train, { iterations: 20, solver: 'euler:0.5', status: 'complete' });
  const log = train.log as { iteration: number }[];
  t.true(
    log.length >= 2 && log.at(-1)!.iteration === 20,
    `the log entries are inside the one document: ${JSON.stringify(log)}`,
  );
  t.like(oneDocument(t, await runCli(['info', '--json']), 'info'), { node: process.versions.node });
  const ev = oneDocument(
    t,
    await runCli(['evaluate', '--model', model, '--solvers', 'rk4:0.25', '--json']),
    'evaluate',
  );
  t.is((ev.results as unknown[]).length, 1);
  const bundle = path.join(tmp, 'bundle');
  const ex = oneDocument(t, await runCli(['export', '--model', model, '--out', bundle, '--json']), 'export');
  t.like(ex, { kind: 'bundle', dir: bundle });
  t.true((ex.files as string[]).includes('field.onnx'));
  const eb = oneDocument(
    t,
    await runCli(['evaluate', '--bundle', bundle, '--solvers', 'rk4:0.25', '--json']),
    'evaluate --bundle',
  );
  t.is((eb.results as { accuracy: number }[])[0]!.accuracy, (ev.results as { accuracy: number }[])[0]!.accuracy);
  const sv = oneDocument(
    t,
    await runCli([
      'solve',
      '--field',
      path.join(bundle, 'field.onnx'),
      '--z0',
      path.join(tmp, 'z0.json'),
      '--solver',
      'rk4:0.1',
      '--json',
    ]),
    'solve',
  );
  t.is((sv.z1 as number[][]).length, 2);
  const points = `json:${path.join(tmp, 'points.json')}:split=none`;
  const cr = oneDocument(
    t,
    await runCli(['audit', 'crossing', '--model', model, '--solver', 'euler:0.5', '--dataset', points, '--json']),
    'audit crossing',
  );
  t.is(cr.n, 4, '--dataset json:…:split=none audits every row of the file');
  const fan = oneDocument(
    t,
    await runCli(['audit', 'fan', '--bundle', bundle, '--solver', 'euler:0.5', '--max-points', '8', '--json']),
    'audit fan',
  );
  t.is(fan.solver, 'euler:0.5');
  const crit = oneDocument(
    t,
    await runCli(['audit', 'critical', '--model', model, '--solvers', 'rk4:0.25', '--json']),
    'audit critical',
  );
  t.true('criticalStep' in crit);
});

test.serial(
  'export --effective writes DIR/effective.onnx; --float64 graphs run in onnxruntime and agree with float32',
  async (t) => {
    const x = new ort.Tensor('float32', Float32Array.from([0.1, 0.2, 1.2, -0.1]), [2, 2]);
    const logits: number[][] = [];
    for (const float of ['float32', 'float64']) {
      const dir = path.join(tmp, `eff-${float}`);
      const r = oneDocument(
        t,
        await runCli([
          'export',
          '--model',
          model,
          '--effective',
          'euler:0.5',
          '--out',
          dir,
          ...(float === 'float64' ? ['--float64'] : []),
          '--json',
        ]),
        `export --effective ${float}`,
      );
      t.like(r, { kind: 'effective', file: path.join(dir, 'effective.onnx'), float });
      const session = await ort.InferenceSession.create(path.join(dir, 'effective.onnx'));
      const input = session.inputNames[0]!;
      const feed =
        float === 'float64' ? new ort.Tensor('float64', Float64Array.from(x.data as Float32Array), [2, 2]) : x;
      const out = await session.run({ [input]: feed });
      logits.push(Array.from(out[session.outputNames[0]!]!.data as Float32Array | Float64Array, Number));
      await session.release();
    }
    for (let i = 0; i < logits[0]!.length; i++)
      t.true(Math.abs(logits[0]![i]! - logits[1]![i]!) < 1e-4, `logit ${i}: ${logits[0]![i]} vs ${logits[1]![i]}`);
    const bad = await runCli(['export', '--model', model, '--out', path.join(tmp, 'b64'), '--float64']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /--float64 applies to --effective/);
  },
);

test.serial(
  'study plan, run, status, report: one JSON document each (run --events: one per line, the last the summary)',
  async (t) => {
    const file = path.join(tmp, 'study.yaml');
    fs.writeFileSync(
      file,
      [
        `datasets: ["${DATASET}"]`,
        'field: mlp:width=8',
        'grid: [euler:0.5]',
        'iterations: 20',
        'batchSize: 16',
        'lr: 0.01',
        'testSolvers: [rk4:0.25]',
        '',
      ].join('\n'),
    );
    const plan = oneDocument(t, await runCli(['study', 'plan', file, '--json']), 'study plan');
    t.is((plan.jobs as unknown[]).length, 1);
    const out = path.join(tmp, 'study');
    const run = oneDocument(
      t,
      await runCli(['study', 'run', file, '--out', out, '--workers', '1', '--json']),
      'study run',
    );
    t.like(run, {
      out,
      plan: { total: 1, toRun: 1 },
      counts: { done: 1, failed: 0 },
      interrupted: false,
      report: path.join(out, 'report.html'),
    });
    t.like((run.results as unknown[])[0], { status: 'done', trainSolver: 'euler:0.5', seed: 0 });
    // --events: the live stream, one JSON object per line, the last the summary.
    const again = await runCli(['study', 'run', file, '--out', out, '--workers', '1', '--events']);
    t.is(again.code, 0, again.stderr);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    t.like(events[0], { type: 'plan', total: 1, toRun: 0, alreadyDone: 1 });
    t.like(events.at(-1), { type: 'end', counts: { done: 1 } });
    const both = await runCli(['study', 'run', file, '--out', out, '--json', '--events']);
    t.is(both.code, 2, 'one output format at a time');
    t.like(oneDocument(t, await runCli(['study', 'status', out, '--json']), 'study status'), { done: 1, total: 1 });
    const plots = path.join(tmp, 'report-figures');
    const report = oneDocument(t, await runCli(['study', 'report', out, '--plot', plots, '--json']), 'study report');
    t.is(report.html, path.join(out, 'report.html'));
    const figures = report.figures as string[];
    t.true(figures.length > 0 && figures.every((f) => f.startsWith(plots) && fs.existsSync(f)), figures.join(', '));
    t.true(
      figures.some((f) => f.endsWith('.png')),
      '--plot writes PNGs as elsewhere',
    );
  },
);

test.serial(
  'old flag names work for one release with one deprecation line; old and new together are an error',
  async (t) => {
    const points = path.join(tmp, 'points.json');
    const a = await runCli([
      'audit',
      'critical',
      '--models',
      model,
      '--solvers',
      'rk4:0.25',
      '--data',
      points,
      '--json',
    ]);
    t.is(a.code, 0, a.stderr);
    JSON.parse(a.stdout);
    const lines = a.stderr.trim().split('\n');
    t.is(lines.length, 2, a.stderr);
    t.true(
      lines.includes('odeness: warning: --models is now --model; the old form goes away in the next release'),
      a.stderr,
    );
    t.true(
      lines.includes(
        'odeness: warning: --data is now --dataset json:<file>:split=none; the old form goes away in the next release',
      ),
      a.stderr,
    );
    const e = await runCli(['evaluate', '--model', model, '--data', points, '--solvers', 'rk4:0.25', '--json']);
    t.is(e.code, 0, e.stderr);
    t.is(JSON.parse(e.stdout).results.length, 1);
    const both = await runCli(['evaluate', '--model', model, '--data', points, '--dataset', DATASET]);
    t.is(both.code, 2, 'a usage error, like any other malformed command line');
    t.regex(both.stderr, /give --dataset or --data, not both/);
    const missing = await runCli(['audit', 'critical', '--solvers', 'rk4:0.25']);
    t.is(missing.code, 2);
    t.regex(missing.stderr, /required option '--model <dirs\.\.\.>' not specified/);
  },
);

test.serial('worker --json: the summary as one JSON document when it stops; --concurrency still works', async (t) => {
  requirePrerequisite('nats-server');
  const nats = await startNats();
  try {
    const w = cli(['worker', '--nats', nats.url, '--concurrency', '1', '--json']);
    await w.waitFor(/pulling from/);
    w.kill('SIGTERM');
    t.is(await w.exited, 0, w.err());
    t.like(JSON.parse(w.out()), { ran: 0 });
    t.regex(w.err(), /odeness: warning: --concurrency is now --workers/);
  } finally {
    await nats.stop();
  }
});

test.serial(
  "--backend cpu trains without tfjs's 'Hi, looks like you are running TensorFlow.js in Node.js' banner",
  async (t) => {
    const r = await runCli([
      '--backend',
      'cpu',
      'train',
      '--dataset',
      DATASET,
      '--solver',
      'euler:0.5',
      '--iterations',
      '3',
      '--batch-size',
      '16',
      '--engine',
      'tfjs',
      '--out',
      path.join(tmp, 'cpu'),
      '--json',
    ]);
    t.like(oneDocument(t, r, 'train --backend cpu'), { backend: 'cpu', engine: 'tfjs' });
    t.false(/looks like you are running TensorFlow\.js/.test(r.stderr), r.stderr);
  },
);

test.serial(
  '--plot problems fail before any work: a file in place of the directory, train --plot without --adapt',
  async (t) => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const e = await runCli(['evaluate', '--model', model, '--solvers', 'rk4:0.25', '--plot', file]);
    t.is(e.code, 1);
    t.is(e.stdout, '', 'no results printed before the failure');
    t.is(
      e.stderr,
      `odeness: error: ${file}: exists and is not a directory (--plot takes the directory the figures go into)\n`,
    );
    const a = await runCli(['audit', 'fan', '--model', model, '--solver', 'euler:0.5', '--plot', file]);
    t.is(a.code, 1);
    t.regex(a.stderr, /exists and is not a directory/);
    const tr = await runCli([
      'train',
      '--dataset',
      DATASET,
      '--solver',
      'euler:0.5',
      '--out',
      path.join(tmp, 'np'),
      '--plot',
      path.join(tmp, 'np-plots'),
    ]);
    t.is(tr.code, 1);
    t.regex(tr.stderr, /--plot draws the adaptation trace of --adapt/);
    t.false(fs.existsSync(path.join(tmp, 'np')), 'nothing trained');
  },
);
