/**
 * Results a researcher can quote (issue 24, findings 3–7), through the real
 * CLI: the step ceiling over the whole interval, Ctrl-C keeping finished
 * evaluation rows, a vanished --out stopping the study, closed pipes ending a
 * run cleanly, and bundle files checked against their manifest's hashes and roles.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT } from './helpers/cli.js';
import { cli, cliResult, startupMs, tempDir, timedCli, writeStudy } from './helpers/procs.js';

const tmp = tempDir('odeness-quotable-');
const TINY = ['--dataset', 'spheres:dupont2019:dim=2,n=256,testN=64', '--field', 'mlp:width=8', '--batch-size', '32'];
const model = (name: string) => path.join(tmp, name);

/** Two tiny models (different seeds and solvers), their bundles, and one effective model. */
test.before(async () => {
  for (const [name, solver, seed] of [
    ['m1', 'euler:0.5', '1'],
    ['m2', 'rk4:0.25', '2'],
  ] as const) {
    const r = await cliResult([
      'train',
      ...TINY,
      '--solver',
      solver,
      '--seed',
      seed,
      '--iterations',
      '3',
      '--out',
      model(name),
    ]);
    if (r.code !== 0) throw new Error(r.err);
    const e = await cliResult(['export', '--model', model(name), '--out', model(`${name}-bundle`)]);
    if (e.code !== 0) throw new Error(e.err);
  }
  const e = await cliResult([
    'export',
    '--model',
    model('m1'),
    '--out',
    model('m1-effective'),
    '--effective',
    'euler:0.5',
  ]);
  if (e.code !== 0) throw new Error(e.err);
  fs.writeFileSync(model('z0.json'), '[[0.1, 0.2], [0.3, 0.4]]');
});

const oneLineError = (t: import('ava').ExecutionContext, r: { code: number; err: string }, re: RegExp) => {
  t.is(r.code, 1, r.err);
  t.regex(r.err, re);
  t.is(r.err.trim().split('\n').length, 1, `one line expected:\n${r.err}`);
  t.notRegex(r.err, /internal error|\n\s+at |FATAL|Napi/);
};

test('finding 3: --t1 1e9 and 100000 on train and solve are one-line errors within start-up time', async (t) => {
  const startup = await startupMs();
  const runs = [
    ['train', ...TINY, '--solver', 'euler:0.5', '--iterations', '5', '--t1', '1e9', '--out', model('t1a')],
    ['train', ...TINY, '--solver', 'euler:0.5', '--iterations', '5', '--t1', '100000', '--out', model('t1b')],
    [
      'solve',
      '--field',
      path.join(model('m1-bundle'), 'field.onnx'),
      '--z0',
      model('z0.json'),
      '--solver',
      'rk4:0.1',
      '--t1',
      '1e7',
    ],
    [
      'solve',
      '--field',
      path.join(model('m1-bundle'), 'field.onnx'),
      '--z0',
      model('z0.json'),
      '--solver',
      'euler:0.5',
      '--t1',
      '1e9',
    ],
  ];
  for (const args of runs) {
    const r = await timedCli(args);
    oneLineError(t, r, /over \[0, 1\d+\] takes \d+ steps, above the limit of 100000/);
    // "Under a second" beyond what any command needs to start on this (shared, loaded) machine.
    t.true(r.ms < startup + 5_000, `${args[0]} took ${r.ms} ms, start-up ${startup} ms`);
  }
  // The adaptation's ceiling is the same one; a training interval within it still trains.
  oneLineError(
    t,
    await cliResult([
      'train',
      ...TINY,
      '--solver',
      'euler:0.5',
      '--adapt',
      '--adapt-max-steps',
      '1000000000',
      '--out',
      model('t1c'),
    ]),
    /adaptation maxSteps 1000000000 exceeds the step ceiling/,
  );
});

test('finding 4: SIGINT during evaluate prints the rows finished so far (and --json marks them interrupted), exit 130', async (t) => {
  for (const json of [false, true]) {
    // Row 1 is instant; rows 2 and 3 take seconds each (40 000 field calls).
    const p = cli([
      'evaluate',
      '--model',
      model('m1'),
      '--solvers',
      'euler:0.5,rk4:0.0001,rk4:0.0001',
      ...(json ? ['--json'] : []),
    ]);
    // Off a terminal progress comes as plain lines on stderr once the work has run 2 s: then row 1 is done.
    await p.waitFor(/evaluate: rk4:0\.0001 \(solver [23] of 3\) \d+\/40000/, 120_000);
    p.kill('SIGINT');
    const code = await p.exited;
    t.is(code, 130, p.err());
    const m = p.err().match(/interrupted \(SIGINT\): (\d) of 3 solver rows finished/);
    t.truthy(m, p.err());
    const finished = Number(m![1]);
    t.true(finished >= 1 && finished < 3);
    if (json) {
      const doc = JSON.parse(p.out());
      t.true(doc.interrupted);
      t.is(doc.results.length, finished);
      t.is(doc.results[0].spec, 'euler:0.5');
    } else {
      t.regex(p.out(), /^solver .*accuracy/);
      t.regex(p.out(), /euler:0\.5 .* 2\n/);
      t.is(p.out().trim().split('\n').length, 2 + finished);
    }
  }
});

const STUDY = `name: quotable
datasets: ["spheres:dupont2019:dim=2,n=256,testN=64"]
field: mlp:width=8
grid:
  - {solver: euler, steps: [0.5, 0.25, 0.1, 0.05]}
seeds: 4
iterations: 40
batchSize: 32
testSolvers: ["rk4:0.25"]
`;

/**
 * Remove a directory a run is still writing into: rm's walk can meet a file created behind it (ENOTEMPTY), and
 * under load that happens more than rmSync's own retries allow. Keep removing until it is gone.
 */
function removeWhileWritten(dir: string): void {
  for (let tries = 0; ; tries++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || tries >= 50) throw e;
    }
  }
}

test('finding 5: rm -rf of --out mid-run stops the study with an error naming the directory, exit 1', async (t) => {
  const file = writeStudy(tmp, 'vanish.yaml', STUDY);
  const out = model('vanish-out');
  const p = cli(['study', 'run', file, '--out', out, '--workers', '1', '--no-report']);
  await p.waitFor(/study: 16 jobs/, 60_000);
  // The run may be writing into it: retry while a file appears under rm's walk (ENOTEMPTY).
  removeWhileWritten(out);
  const code = await p.exited;
  t.is(code, 1, p.out() + p.err());
  t.regex(
    p.err(),
    new RegExp(
      `${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (the study output directory was removed or replaced during the run|cannot record results in the study output directory)`,
    ),
  );
  t.notRegex(p.out(), /study: 16\/16 done/);
  t.false(fs.existsSync(out), 'the run must not recreate the directory it lost');
});

test('finding 5: a vanished --out stops a long job within seconds, not when the job ends', async (t) => {
  // One job of ~10^5 iterations (minutes here): the run must notice the directory between results.
  const long = [
    'datasets: ["spheres:dupont2019:dim=2,n=256,testN=64"]',
    'field: mlp:width=8',
    'grid: [{solver: euler, steps: [0.5]}]',
    'seeds: 1',
    'iterations: 100000',
    'batchSize: 32',
    'testSolvers: ["rk4:0.5"]',
    'audits: {crossing: false, fan: false}',
  ].join('\n');
  const file = writeStudy(tmp, 'vanish-long.yaml', long);
  const out = model('vanish-long-out');
  const p = cli(['study', 'run', file, '--out', out, '--workers', '1', '--no-report']);
  await p.waitFor(/study: 1 job/, 60_000);
  const removed = Date.now();
  // The run may be writing into it: retry while a file appears under rm's walk (ENOTEMPTY).
  removeWhileWritten(out);
  const code = await p.exited;
  const ms = Date.now() - removed;
  t.is(code, 1, p.out() + p.err());
  // Whichever notices first, the periodic look or the job writing its bundle, names the directory and why.
  const named = new RegExp(
    `${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (the study output directory was removed or replaced during the run|cannot record results in the study output directory)`,
  );
  t.regex(p.err(), named);
  t.true(ms < 30_000, `stopped ${ms} ms after --out was removed`);
  t.false(fs.existsSync(out), 'the run must not recreate the directory it lost');
});

/** `odeness study run … | head -N`: stdout closed after N lines. */
function runIntoHead(args: string[], lines: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > lines) {
        out = out.split('\n').slice(0, lines).join('\n');
        child.stdout.destroy();
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGABRT' ? 6 : 0), out, err }));
  });
}

test('finding 6: | head -1 and | head -2 end the run cleanly: finished results kept, exit 1 with how many jobs ran', async (t) => {
  const file = writeStudy(tmp, 'pipe.yaml', STUDY);
  for (const lines of [1, 2]) {
    const out = model(`pipe-out-${lines}`);
    const r = await runIntoHead(['study', 'run', file, '--out', out, '--workers', '1', '--no-report'], lines);
    t.notRegex(r.err, /terminate called|Napi::Error|Aborted/);
    t.is(r.code, 1, r.err);
    const m = r.err.match(/stdout was closed: stopped with (\d+) jobs of 16 not run \((\d+) done, 0 failed\)/);
    t.truthy(m, r.err);
    const recorded = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').length;
    t.is(Number(m![2]), recorded);
    t.is(Number(m![1]) + recorded, 16);
    t.true(recorded >= 1 && recorded < 16);
  }
});

test('finding 7: swapped, copied and misused ONNX files are refused in one line naming the file', async (t) => {
  const swapped = model('swapped');
  fs.cpSync(model('m1-bundle'), swapped, { recursive: true });
  fs.copyFileSync(path.join(model('m2-bundle'), 'field.onnx'), path.join(swapped, 'field.onnx'));
  const field = path.join(swapped, 'field.onnx');
  for (const args of [
    ['evaluate', '--bundle', swapped],
    ['audit', 'crossing', '--bundle', swapped, '--solver', 'euler:0.5'],
    ['solve', '--field', field, '--z0', model('z0.json'), '--solver', 'rk4:0.1'],
  ]) {
    oneLineError(
      t,
      await cliResult(args),
      new RegExp(`${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: SHA-256 \\w+… does not match`),
    );
  }
  const copied = model('head-over-field');
  fs.cpSync(model('m1-bundle'), copied, { recursive: true });
  fs.copyFileSync(path.join(copied, 'head.onnx'), path.join(copied, 'field.onnx'));
  oneLineError(
    t,
    await cliResult(['evaluate', '--bundle', copied]),
    /head-over-field\/field\.onnx: holds the bytes of head\.onnx \(a head z → logits\), not a vector field/,
  );
  // Without a manifest beside it, the file's contract tells: a head is not a field.
  fs.copyFileSync(path.join(copied, 'head.onnx'), model('lonely-head.onnx'));
  oneLineError(
    t,
    await cliResult(['solve', '--field', model('lonely-head.onnx'), '--z0', model('z0.json'), '--solver', 'rk4:0.1']),
    /lonely-head\.onnx: output logits .* not a vector field/,
  );
  // An effective model: solve and the audits refuse it, evaluate evaluates it under its own solver.
  const effective = path.join(model('m1-effective'), 'effective.onnx');
  oneLineError(
    t,
    await cliResult(['solve', '--field', effective, '--z0', model('z0.json'), '--solver', 'euler:0.5']),
    /effective\.onnx: .*records it as the effective of a model, not a vector field/,
  );
  oneLineError(
    t,
    await cliResult(['audit', 'fan', '--bundle', model('m1-effective'), '--solver', 'euler:0.5']),
    /an effective model \(x → logits, euler:0\.5 unrolled\) has none/,
  );
  const viaEffective = await cliResult(['evaluate', '--bundle', model('m1-effective'), '--json']);
  const viaBundle = await cliResult(['evaluate', '--bundle', model('m1-bundle'), '--solvers', 'euler:0.5', '--json']);
  t.is(viaEffective.code, 0, viaEffective.err);
  t.deepEqual(
    JSON.parse(viaEffective.out).results.map((r: { spec: string; accuracy: number }) => [r.spec, r.accuracy]),
    JSON.parse(viaBundle.out).results.map((r: { spec: string; accuracy: number }) => [r.spec, r.accuracy]),
  );
  oneLineError(
    t,
    await cliResult(['evaluate', '--bundle', model('m1-effective'), '--solvers', 'rk4:0.1']),
    /evaluates under that solver only, not rk4:0\.1/,
  );
  // An older bundle (no hashes in its manifest) is accepted, with a note that its files are not verified.
  const older = model('older');
  fs.cpSync(model('m1-bundle'), older, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(older, 'manifest.json'), 'utf8'));
  delete manifest.files;
  fs.writeFileSync(path.join(older, 'manifest.json'), JSON.stringify(manifest));
  const r = await cliResult(['evaluate', '--bundle', older, '--solvers', 'euler:0.5']);
  t.is(r.code, 0, r.err);
  t.regex(r.err, /older records no file hashes \(an older export\): its files are not verified/);
});
