// The README's training tables come from one benchmark run: `bench-train.ts --from RESULT --write-readme FILE`
// renders a saved --json result between the markers (no benchmark runs here; a tiny fake result).
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnProc, tempDir } from './helpers/procs.js';

const BEGIN = '<!-- BEGIN bench:train (written by `npm run bench:train -- --write-readme`) -->';
const END = '<!-- END bench:train -->';

const RESULT = {
  date: '2026-12-07',
  command: 'npm run bench:train -- --rounds 3',
  rounds: 3,
  load: { start: 0.52, end: 1.875 },
  onnxruntime: '1.30.0',
  backend: 'wasm',
  machine: { cpus: 2, model: 'Test CPU @ 1 GHz', node: '20.19.0' },
  threads: 1,
  rows: [
    { dim: 2, hidden: 64, batch: 256, engine: 'ort', ms_per_step: 6.123, baseline_ms: 190.4 },
    { dim: 2, hidden: 64, batch: 256, engine: 'tfjs', ms_per_step: 104.2, baseline_ms: 190.4 },
    {
      dim: 900,
      hidden: 256,
      batch: 256,
      engine: 'ort',
      ms_per_step: 437.2,
      baseline_ms: 15_250,
      torchdiffeq_ms: 1288.4,
      ratio: 3.07,
      ratio_rounds: [3.14, 2.6, 3.07],
      gflops: 74.4,
      peak_fraction: 0.8,
      peak_fraction_rounds: [0.7, 0.8, 0.94],
      matmul_peak_gflops: 115,
    },
  ],
  adaptive: [
    {
      workload: 'mlp 2→64→64→2 spheres',
      solver: 'dopri5:1e-3',
      batch: 128,
      engine: 'ort',
      ms_per_nfe: 0.3031,
      torchdiffeq_ms: 0.9481,
      ratio_rounds: [1.6, 3.13, 4.07],
    },
  ],
  conv1d: [],
};

async function render(readme: string, result: unknown): Promise<{ code: number; err: string; text: string }> {
  const dir = tempDir();
  const file = join(dir, 'README.md');
  const json = join(dir, 'result.json');
  writeFileSync(file, readme);
  writeFileSync(json, JSON.stringify(result));
  const p = spawnProc(process.execPath, [
    '--import=tsx',
    'scripts/bench-train.ts',
    '--from',
    json,
    '--write-readme',
    file,
  ]);
  const code = await p.exited;
  return { code, err: p.err(), text: readFileSync(file, 'utf8') };
}

test('--write-readme replaces only the marked tables, every ratio from its own row', async (t) => {
  t.timeout(60_000);
  const before = '# odeness\n\n## Performance\n\nIntro stays.\n\n';
  const after = '\n\nThe text after the tables stays.\n';
  const r = await render(`${before}${BEGIN}\nold table | 23–31×\n${END}${after}`, RESULT);
  t.is(r.code, 0, r.err);
  t.true(r.text.startsWith(before + BEGIN));
  t.true(r.text.endsWith(END + after));
  t.false(r.text.includes('23–31×'), 'the old tables are gone');
  // Date, machine, load and the command of the one run.
  t.regex(r.text, /One run of `npm run bench:train -- --rounds 3` on 2026-12-07: Test CPU @ 1 GHz \(2 CPUs\)/);
  t.regex(r.text, /load average 0\.52 at the start, 1\.88 at the end/);
  // Training step: speedup = printed baseline / printed ort (190 / 6.12 = 31.0), a row without tfjs shows a dash.
  t.regex(r.text, /\| d=2, h=64 \| 6\.12 ms \| 104 ms \| 190 ms \| 31\.0× \|/);
  t.regex(r.text, /\| d=900, h=256 \| 437 ms \| — \| 15 250 ms \| 34\.9× \|/);
  // Beside torchdiffeq: ratio = printed torchdiffeq / printed odeness, the paired rounds' range beside it.
  t.regex(
    r.text,
    /\| MLP 900→256→256→900, rk4 × 10, batch 256 \(ms\/step\) \| 437 \| 1 288 \| 2\.95× \[2\.60–3\.14\] \|/,
  );
  t.regex(r.text, /dopri5:1e-3, batch 128 \(ms per forward NFE\) \| 0\.303 \| 0\.948 \| 3\.13× \[1\.60–4\.07\] \|/);
  // A workload torchdiffeq did not run has no row there; the d=900 peak line is the row's own.
  t.false(r.text.includes('| MLP 2→64→64→2, rk4 × 10'));
  t.regex(r.text, /The d=900 step runs at 74\.4 GFLOP\/s: 80 % \[70–94 %\]/);
  // Every printed ratio equals its row's columns divided.
  for (const m of r.text.matchAll(/\| ([\d. ]+) \| ([\d. ]+) \| ([\d.]+)× /g)) {
    const [ode, torch, ratio] = [m[1], m[2], m[3]].map((v) => Number(v!.replace(/ /g, '')));
    t.is(ratio, +(torch! / ode!).toFixed(2));
  }
});

test('without torchdiffeq the section says why instead of a table of dashes', async (t) => {
  t.timeout(60_000);
  const noTorch = {
    ...RESULT,
    torch_note: 'torchdiffeq not timed (--no-torch)',
    rows: RESULT.rows.slice(0, 2),
    adaptive: [],
  };
  const r = await render(`${BEGIN}\n${END}\n`, noTorch);
  t.is(r.code, 0, r.err);
  t.regex(r.text, /\(torchdiffeq was not timed in this run: torchdiffeq not timed \(--no-torch\)\.\)/);
  t.false(r.text.includes('| workload | odeness | torchdiffeq | ratio |'));
});

test('--write-readme refuses a README without the markers, and leaves it as it was', async (t) => {
  t.timeout(60_000);
  const r = await render('# odeness\n\nno markers here\n', RESULT);
  t.not(r.code, 0);
  t.regex(r.err, /README\.md: no "<!-- BEGIN bench:train .*" … "<!-- END bench:train -->" markers/);
  t.is(r.text, '# odeness\n\nno markers here\n');
});
