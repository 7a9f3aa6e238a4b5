import test from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { acquireLock } from '../src/study/lock.js';
import { ResultStore } from '../src/study/store.js';
import { terminalSafe } from '../src/cli/terminal.js';
import { syntheticStudy } from './helpers/synthetic-study.js';
import { BIN } from './helpers/cli.js';
import { cliResult, requirePrerequisite, ROOT, spawnProc, tempDir, tinyStudy, writeStudy } from './helpers/procs.js';

// Issue 25, the local side: the report over an unreadable result, the lock under many racers,
// durable local bundles, and the terminal-escaping helper.

test('finding 6: a schema-valid result the report cannot read is listed as unreadable, and the rest of the study renders', async (t) => {
  const s = syntheticStudy();
  const dir = tempDir('odeness-report-');
  const store = await ResultStore.open(dir);
  await store.writePlan(s.plan);
  const odd = structuredClone(s.results[0]!);
  (odd.metrics as { evals: { spec: string }[] }).evals[0]!.spec = 'bogus!!:zz';
  for (const r of [odd, ...s.results.slice(1)]) await store.commit(r);
  await store.close();
  const r = await cliResult(['study', 'report', dir]);
  t.is(r.code, 0, r.err);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  t.regex(html, /unreadable result, not analysed: solver spec (&quot;|")bogus!!:zz/);
  const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as {
    counts: { done: number; failed: number };
  };
  t.is(json.counts.done + json.counts.failed, s.results.length - 1, 'every planned result is there');
});

/** Racers in-process (the file system's thread pool interleaves them): exactly one wins each time, with a stale lock present. */
async function raceInProcess(t: import('ava').ExecutionContext, racers: number, trials: number): Promise<void> {
  let bad = 0;
  for (let i = 0; i < trials; i++) {
    const dir = tempDir('odeness-lock-');
    writeFileSync(
      join(dir, '.lock'),
      JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), startedAt: '2026-01-01T00:00:00Z' }) + '\n',
    );
    const got = await Promise.allSettled(Array.from({ length: racers }, () => acquireLock(dir)));
    if (got.filter((g) => g.status === 'fulfilled').length !== 1) bad++;
    t.deepEqual(readdirSync(dir), ['.lock'], 'no temporary or breaker files left behind');
  }
  t.is(bad, 0, `${bad} of ${trials} trials with ${racers} racers had other than one winner`);
}

const LOCK_MODULE = pathToFileURL(join(ROOT, 'dist/src/study/lock.js')).href;

/** Racers as separate processes, all starting at one instant; resolves with how many won. */
async function raceProcesses(dir: string, racers: number): Promise<number> {
  const goAt = Date.now() + 2500;
  const script = `
    const { acquireLock } = await import(${JSON.stringify(LOCK_MODULE)});
    while (Date.now() < ${goAt}) {}
    try { await acquireLock(${JSON.stringify(dir)}); console.log('won'); } catch (e) { console.log('lost'); }
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  const children = Array.from({ length: racers }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outcomes = await Promise.all(
    children.map(
      (c) =>
        new Promise<string>((res) => {
          let out = '';
          c.stdout.on('data', (d) => {
            out += d;
            if (out.includes('\n')) res(out.trim());
          });
        }),
    ),
  );
  for (const c of children) c.stdin.end(); // all hold what they got until every one has tried
  return outcomes.filter((o) => o === 'won').length;
}

test.serial(
  'finding 7: the lock is exclusive for 4 and 8 racers with a stale lock present (in-process, 150 trials each; processes, 4 trials each)',
  async (t) => {
    t.timeout(180_000);
    await raceInProcess(t, 4, 150);
    await raceInProcess(t, 8, 150);
    for (const racers of [4, 8]) {
      for (let i = 0; i < 4; i++) {
        const dir = tempDir('odeness-lock-');
        writeFileSync(
          join(dir, '.lock'),
          JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), startedAt: '2026-01-01T00:00:00Z' }) + '\n',
        );
        t.is(await raceProcesses(dir, racers), 1, `${racers} processes: exactly one holds the lock`);
      }
    }
  },
);

test.serial(
  'finding 8: a local study run fsyncs every file of a bundle and its directories before renaming it into place (strace)',
  async (t) => {
    t.timeout(120_000);
    requirePrerequisite('strace');
    const dir = tempDir();
    const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 20 }));
    const trace = join(dir, 'strace.txt');
    const p = spawnProc('strace', [
      '-f',
      '-qq',
      '-y',
      '-e',
      'trace=fsync,fdatasync,rename,renameat,renameat2',
      '-o',
      trace,
      process.execPath,
      BIN,
      'study',
      'run',
      file,
      '--out',
      join(dir, 'out'),
      '--workers',
      '1',
    ]);
    t.is(await p.exited, 0, p.err());
    const lines = readFileSync(trace, 'utf8').split('\n');
    const renameAt = lines.findIndex((l) => /rename.*models\/\.tmp-[^"]*", .*models\/[0-9a-f]{16}"/.test(l));
    t.true(renameAt > 0, 'the bundle is renamed into place');
    const tmp = /models\/(\.tmp-[^"/]+)"/.exec(lines[renameAt]!)![1]!;
    const synced = lines.slice(0, renameAt).filter((l) => /^\d+ +f(data)?sync\(/.test(l) && l.includes(tmp));
    const bundleFiles = readdirSync(join(dir, 'out', 'models'), { recursive: true, withFileTypes: true }).filter((e) =>
      e.isFile(),
    );
    t.true(bundleFiles.length > 0);
    for (const f of bundleFiles)
      t.true(
        synced.some((l) => l.includes(`/${f.name}>`)),
        `${f.name} fsync'd before the rename`,
      );
    t.true(
      synced.some((l) => new RegExp(`${tmp}>\\)`).test(l)),
      "the bundle directory itself fsync'd",
    );
  },
);

test('finding 5: terminalSafe escapes every control character (ESC, BEL, CR, LF, C1, bidi) and nothing else', (t) => {
  t.is(
    terminalSafe('\x1b[2J\x1b]0;pwned\x07\r\nstudy: 99 done\x9b31m\u202e'),
    '\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0astudy: 99 done\\x9b31m\\u202e',
  );
  t.is(
    terminalSafe('plain text: ünïcode, "quotes" and \\ backslash'),
    'plain text: ünïcode, "quotes" and \\ backslash',
  );
});
