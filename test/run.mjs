#!/usr/bin/env node
// The test runner (`npm test`): names missing test prerequisites (helpers/prerequisites.mjs), checks the
// formatting (biome, biome.json), builds (tsc), runs ava, passes its output through, and ends with the plain
// summary line "N passed, M failed" that CI reads. Exit status: non-zero on any failure (a formatting drift counts as one).
import { spawn, spawnSync } from 'node:child_process';
import { missingPrerequisites } from './helpers/prerequisites.mjs';

// Programs besides Node that some tests need: named up front and again beside the summary.
const missing = missingPrerequisites();
for (const line of missing) process.stdout.write(line + '\n');

// The formatter's check: one failure naming the files to reformat (`npx biome format --write`), the tests still run.
const format = spawnSync(process.execPath, ['node_modules/@biomejs/biome/bin/biome', 'format'], { encoding: 'utf8' });
const formatFailed = format.status !== 0 ? 1 : 0;
if (formatFailed) {
  const files = [
    ...new Set([...(format.stdout + format.stderr).matchAll(/^(\S+\.(?:ts|mts|mjs|js)) format/gm)].map((m) => m[1])),
  ];
  process.stdout.write(
    `formatting: ${files.length || 'some'} file(s) differ from biome's format (run: npx biome format --write): ${files.join(', ')}\n`,
  );
}

// npm test builds first: the CLI tests run the compiled bin/odeness.js.
const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
  stdio: 'inherit',
});
if (build.status !== 0) {
  process.stdout.write('\nbuild failed (tsc)\n0 passed, 1 failed\n');
  process.exit(1);
}
const args = process.argv.slice(2);
const child = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', ...args], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, FORCE_COLOR: '0' },
});
let out = '';
const forward = (stream, sink) =>
  stream.on('data', (d) => {
    out += d;
    sink.write(d);
  });
forward(child.stdout, process.stdout);
forward(child.stderr, process.stderr);
child.on('close', (code, signal) => {
  const num = (re) => {
    const m = out.match(re);
    return m ? Number(m[1]) : 0;
  };
  const lines = (re) => (out.match(re) ?? []).length;
  // ava prints "N tests passed" only when nothing failed; otherwise count its ✔ lines.
  const passed = Math.max(num(/(\d+) tests? passed/), lines(/^\s*✔ /gm));
  const failed =
    Math.max(num(/(\d+) tests? failed/), lines(/^\s*✘ \[fail\]/gm)) +
    num(/(\d+) uncaught exceptions?/) +
    num(/(\d+) unhandled rejections?/) +
    num(/(\d+) tests? remained pending/);
  const timedOut = /Timed out while running tests/.test(out) ? 1 : 0;
  const status = code ?? (signal ? 1 : 0);
  const failedTotal = failed + timedOut + (status !== 0 && failed + timedOut === 0 ? 1 : 0) + formatFailed;
  process.stdout.write(`\n${missing.map((l) => l + '\n').join('')}${passed} passed, ${failedTotal} failed\n`);
  process.exit(status === 0 && failedTotal === 0 ? 0 : 1);
});
