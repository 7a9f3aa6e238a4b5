/**
 * Memory of a training step on both engines: peak RSS during each step (the
 * kernel's high-water mark, reset before the step through
 * /proc/self/clear_refs) and RSS after it, over many iterations, so growth
 * shows as a trend. Workloads: the d=900 MLP of bench:train (900→256→256→900,
 * rk4 × 10, batch 256) and the paper's MNIST image field (conv2d:channels=128
 * on [1, 28, 28] inputs, euler, small batch so tfjs-wasm finishes).
 *
 *   npx tsx scripts/bench-memory.ts [--json] [--iters 12] [--only d900,mnist] [--engines ort,tfjs]
 *       [--mnist-batch 16] [--mnist-steps 2]
 * Linux only (reads /proc/self/status).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Rng } from '../src/random.js';
import { initBackend } from '../src/engines/backend.js';
import { initParams } from '../src/models/params.js';
import { parseFieldSpec } from '../src/models/spec.js';
import type { ModelConfig } from '../src/models/types.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { createEngine } from '../src/train/train.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const MB = 1024 * 1024;

function status(key: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}:`));
  return Number(line!.split(/\s+/)[1]) * 1024;
}

function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

interface Workload {
  readonly name: string;
  readonly config: ModelConfig;
  readonly solver: string;
  readonly batch: number;
}

async function main(): Promise<void> {
  const iters = Number(opt('iters', '12'));
  const only = opt('only', 'd900,mnist').split(',');
  const engines = opt('engines', 'ort,tfjs').split(',') as ('ort' | 'tfjs')[];
  const mnistBatch = Number(opt('mnist-batch', '16'));
  await initBackend();
  const workloads: Workload[] = [
    {
      name: 'd900',
      config: {
        inputShape: [900],
        augment: 0,
        stateShape: [900],
        classes: 2,
        field: parseFieldSpec('mlp:width=256'),
        t0: 0,
        t1: 1,
      },
      solver: 'rk4:steps=10',
      batch: 256,
    },
    {
      name: 'mnist',
      config: {
        inputShape: [1, 28, 28],
        augment: 0,
        stateShape: [1, 28, 28],
        classes: 10,
        field: parseFieldSpec('conv2d:channels=128'),
        t0: 0,
        t1: 1,
      },
      solver: `euler:steps=${opt('mnist-steps', '2')}`,
      batch: mnistBatch,
    },
  ].filter((w) => only.includes(w.name));
  const rows: Record<string, unknown>[] = [];
  for (const w of workloads) {
    const rng = new Rng(1);
    const width = w.config.inputShape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: w.batch * width }, () => rng.uniform());
    const y = Int32Array.from({ length: w.batch }, (_, i) => i % w.config.classes);
    const spec = parseSolverSpec(w.solver);
    for (const name of engines) {
      const n = name === 'tfjs' ? Math.max(4, Math.ceil(iters / 2)) : iters;
      const model = { config: w.config, params: initParams(w.config, () => rng.normal()) };
      const engine = await createEngine(name, model, { batchSize: w.batch, lr: 1e-4 });
      const peaks: number[] = [];
      const after: number[] = [];
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        resetPeak();
        const t = performance.now();
        await engine.step(x, y, spec);
        ms.push(performance.now() - t);
        peaks.push(status('VmHWM'));
        after.push(status('VmRSS'));
        process.stderr.write(
          `${w.name} ${name} step ${i + 1}/${n}: peak ${(peaks[i]! / MB).toFixed(0)} MB, after ${(after[i]! / MB).toFixed(0)} MB, ${ms[i]!.toFixed(0)} ms\n`,
        );
      }
      await engine.dispose();
      // Growth: the last half's mean peak against the steps after the first (which builds graphs / allocates the pools).
      const tail = peaks.slice(Math.floor(n / 2));
      const early = peaks.slice(1, Math.max(2, Math.floor(n / 2)));
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      rows.push({
        workload: w.name,
        field: w.config.field.kind,
        solver: w.solver,
        batch: w.batch,
        engine: name,
        iterations: n,
        peak_rss_mb: peaks.map((p) => +(p / MB).toFixed(1)),
        rss_after_mb: after.map((p) => +(p / MB).toFixed(1)),
        peak_rss_mb_median: +(tail.sort((a, b) => a - b)[tail.length >> 1]! / MB).toFixed(1),
        growth_mb_second_half_vs_first: +((mean(tail) - mean(early)) / MB).toFixed(1),
        ms_per_step_median: +[...ms].sort((a, b) => a - b)[ms.length >> 1]!.toFixed(0),
      });
    }
  }
  if (args.includes('--json')) process.stdout.write(JSON.stringify({ rows }) + '\n');
  else
    for (const r of rows)
      process.stdout.write(
        `${r.workload} ${r.engine} (${r.solver}, batch ${r.batch}): peak RSS per step ${r.peak_rss_mb_median} MB (median of the second half), growth ${r.growth_mb_second_half_vs_first} MB, ${r.ms_per_step_median} ms/step\n`,
      );
}

await main();
