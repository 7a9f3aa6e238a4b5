/** Commands over ONNX: export, solve, and `evaluate --bundle`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultText, deprecationNotice } from './args.js';
import { FileFormatError, SpecError } from '../errors.js';
import { checkLabelsFitModel } from '../data/limits.js';
import { loadDataset } from '../data/spec.js';
import { loadModel } from '../models/io.js';
import { writeBundle } from '../onnx/bundle.js';
import { evaluateBundle, solveField } from '../onnx/evaluate.js';
import { effectiveModelGraph, requireFixed } from '../onnx/model-graphs.js';
import { readBundle } from '../onnx/bundle.js';
import { formatSolverSpec, parseSolverSpec } from '../solvers/spec.js';
import { deviceOption, finite, threadCount } from './args.js';
import type { Device, DeviceChoice } from '../formats/common.js';
import { resolveDevice } from '../onnx/runtime/adapters.js';
import { printEvalRows, printJson } from './output.js';
import { resolveTestSolvers } from '../solvers/test-set.js';

export async function evaluateBundleCommand(opts: { bundle: string; dataset?: string; solvers?: string; threads?: number; device?: Device; memory?: number; json?: boolean; plot?: string }): Promise<void> {
  const bundle = await readBundle(opts.bundle, { threads: opts.threads ?? 1, device: opts.device ?? 'cpu' });
  const manifest = bundle.manifest;
  const width = bundle.inputShape.reduce((a, b) => a * b, 1);
  await bundle.release();
  const spec = opts.dataset ?? manifest.dataset;
  if (spec === undefined) throw new SpecError(`${opts.bundle} does not record its dataset (manifest.json "dataset"); pass --dataset <spec>, e.g. --dataset json:points.json:split=none`);
  const test = (await loadDataset(spec, manifest.seed ?? 0)).test;
  checkLabelsFitModel(spec, test.y, manifest.classes);
  const data = { ...test, width: test.n > 0 ? test.x.length / test.n : width };
  const specs = resolveTestSolvers(opts.solvers, manifest.trainSolver, manifest.t0, manifest.t1);
  const rows = await evaluateBundle(opts.bundle, data, specs, { threads: opts.threads ?? 1, device: opts.device ?? 'cpu', memoryBytes: opts.memory });
  printEvalRows(rows, Boolean(opts.json), { bundle: opts.bundle, ...(manifest.trainSolver ? { trainSolver: manifest.trainSolver } : {}) });
  if (opts.plot) {
    const { writeAccuracyFigure } = await import('./plot-output.js');
    const own = manifest.trainSolver ? await evaluateBundle(opts.bundle, data, [parseSolverSpec(manifest.trainSolver)], { threads: opts.threads ?? 1, device: opts.device ?? 'cpu', memoryBytes: opts.memory }) : [];
    await writeAccuracyFigure(opts.plot, manifest.trainSolver ? `trained with ${manifest.trainSolver}` : opts.bundle, [...rows, ...own], own[0]?.spec);
  }
}

/** The file `export --effective` writes into --out. */
export const EFFECTIVE_FILE = 'effective.onnx';

async function readZ0(file: string): Promise<number[][]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new FileFormatError(file, 'expected a non-empty array of states (number[][])');
  raw.forEach((row, i) => {
    if (!Array.isArray(row) || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new FileFormatError(file, `row ${i} is not an array of finite numbers`);
    }
  });
  return raw as number[][];
}

export function registerOnnxCommands(program: Command): void {
  program
    .command('export')
    .description('export a trained model as an ONNX bundle (field.onnx, head.onnx, [encoder.onnx], manifest.json), or with --effective as one ONNX graph x → logits that unrolls a fixed-step solver')
    .requiredOption('--model <dir>', 'model directory written by `odeness train`')
    .requiredOption('--out <dir>', `directory to write: the bundle, or ${EFFECTIVE_FILE} with --effective`)
    .addOption(defaultText(new Option('--effective <spec>', 'unroll this fixed-step solver (e.g. euler:0.5) into one graph: the deployed model is exactly the validated configuration'), 'none: write a bundle'))
    .option('--float64', 'with --effective: a float64 graph (reference precision; onnxruntime runs float64 graphs too)')
    .option('--json', 'print what was written as one JSON document')
    .action(async (opts: { model: string; out: string; effective?: string; float64?: boolean; json?: boolean }) => {
      if (opts.float64 && !opts.effective) throw new SpecError('--float64 applies to --effective graphs; a bundle is written in float32');
      const model = await loadModel(opts.model);
      if (opts.effective) {
        const spec = parseSolverSpec(opts.effective);
        requireFixed(spec, `--effective ${opts.effective}`);
        let file = path.join(opts.out, EFFECTIVE_FILE);
        if (opts.out.endsWith('.onnx')) {
          deprecationNotice(`export --effective --out FILE.onnx is now --out DIR (writes DIR/${EFFECTIVE_FILE})`);
          file = opts.out;
        }
        const float = opts.float64 ? 'float64' : 'float32';
        const graph = effectiveModelGraph(model, spec, { float });
        await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
        await graph.save(file);
        if (opts.json) return printJson({ kind: 'effective', file, solver: formatSolverSpec(spec), float, nodes: graph.nodes.length });
        process.stdout.write(`wrote ${file}: x → logits with ${formatSolverSpec(spec)} unrolled (${graph.nodes.length} nodes, ${float})\n`);
        return;
      }
      const manifest = await writeBundle(model, opts.out, {
        trainSolver: model.training.solver,
        dataset: model.training.dataset,
        seed: model.training.seed,
        provenance: { iterations: model.training.iterations, status: model.training.status, exportedFrom: path.resolve(opts.model) },
      });
      if (opts.json) return printJson({ kind: 'bundle', dir: opts.out, files: (await fs.readdir(opts.out)).sort(), manifest });
      process.stdout.write(`wrote bundle ${opts.out} (state [${manifest.stateShape.join(', ')}], ${manifest.classes} classes, trained with ${manifest.trainSolver})\n`);
    });

  program
    .command('solve')
    .description('solve an ONNX vector field (inputs z [batch, ...] and optionally t) from initial states')
    .requiredOption('--field <file.onnx>', 'the vector field')
    .requiredOption('--z0 <file.json>', 'initial states, number[][] (one row per state)')
    .requiredOption('--solver <spec>', 'e.g. rk4:0.01, dopri5:1e-6')
    .option('--t0 <x>', 'start time', finite, 0)
    .option('--t1 <x>', 'end time', finite, 1)
    .option('--threads <n>', 'onnxruntime intra-op threads', threadCount, 1)
    .addOption(deviceOption())
    .option('--json', 'print {"z1": number[][], "nfe", "accepted", "rejected"} as one JSON document')
    .action(async (opts: { field: string; z0: string; solver: string; t0: number; t1: number; threads: number; device: DeviceChoice; json?: boolean }) => {
      const spec = parseSolverSpec(opts.solver);
      const z0 = await readZ0(opts.z0);
      const r = await solveField(opts.field, z0, spec, { t0: opts.t0, t1: opts.t1, threads: opts.threads, device: await resolveDevice(opts.device) });
      if (opts.json) return printJson(r);
      for (const row of r.z1) process.stdout.write(row.map((v) => v.toPrecision(8)).join(' ') + '\n');
      process.stderr.write(`${formatSolverSpec(spec)} over [${opts.t0}, ${opts.t1}]: nfe ${r.nfe}, accepted ${r.accepted}, rejected ${r.rejected}\n`);
    });
}
