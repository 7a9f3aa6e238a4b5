/** Commands over ONNX: export, solve, and `evaluate --bundle`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultText, deprecationNotice } from './args.js';
import { FileFormatError, SpecError } from '../errors.js';
import { describeIssue, parseWith, Z0FileSchema } from '../formats/index.js';
import { loadModel } from '../models/io.js';
import { EFFECTIVE_FILE, writeBundle, writeEffective } from '../onnx/bundle.js';
import { solveField } from '../onnx/evaluate.js';
import { effectiveModelGraph, requireFixed } from '../onnx/lower/model-graphs.js';
import { formatSolverSpec, parseSolverSpec } from '../solvers/spec.js';
import { deviceOption, finite, threadCount } from './args.js';
import type { DeviceChoice } from '../formats/common.js';
import { resolveDevice } from '../onnx/runtime/adapters.js';
import { abortOnSignals, isStop, stopExitCode } from './signals.js';
import { printJson, workProgress } from './output.js';

async function readZ0(file: string): Promise<number[][]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(
      file,
      (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `not valid JSON (${(e as Error).message})`,
    );
  }
  return parseWith(Z0FileSchema, raw, (i) => new FileFormatError(file, describeIssue(i)));
}

export function registerOnnxCommands(program: Command): void {
  registerExportCommand(program);
  registerSolveCommand(program);
}

interface ExportOpts {
  model: string;
  out: string;
  effective?: string;
  float64?: boolean;
  json?: boolean;
}

/** `export`: a bundle, or with --effective one graph that unrolls a fixed-step solver. */
function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'export a trained model as an ONNX bundle (field.onnx, head.onnx, [encoder.onnx], manifest.json), ' +
        'or with --effective as one ONNX graph x → logits that unrolls a fixed-step solver',
    )
    .requiredOption('--model <dir>', 'model directory written by `odeness train`')
    .requiredOption('--out <dir>', `directory to write: the bundle, or ${EFFECTIVE_FILE} with --effective`)
    .addOption(
      defaultText(
        new Option(
          '--effective <spec>',
          'unroll this fixed-step solver (e.g. euler:0.5) into one graph: ' +
            'the deployed model is exactly the validated configuration',
        ),
        'none: write a bundle',
      ),
    )
    .option('--float64', 'with --effective: a float64 graph (reference precision; onnxruntime runs float64 graphs too)')
    .option('--json', 'print what was written as one JSON document')
    .action(exportAction);
}

async function exportAction(opts: ExportOpts): Promise<void> {
  if (opts.float64 && !opts.effective)
    throw new SpecError('--float64 applies to --effective graphs; a bundle is written in float32');
  const model = await loadModel(opts.model);
  if (opts.effective) return exportEffective(model, opts.effective, opts);
  const manifest = await writeBundle(model, opts.out, {
    trainSolver: model.training.solver,
    dataset: model.training.dataset,
    seed: model.training.seed,
    provenance: {
      iterations: model.training.iterations,
      status: model.training.status,
      exportedFrom: path.resolve(opts.model),
    },
  });
  if (opts.json)
    return printJson({ kind: 'bundle', dir: opts.out, files: (await fs.readdir(opts.out)).sort(), manifest });
  process.stdout.write(
    `wrote bundle ${opts.out} (state [${manifest.stateShape.join(', ')}], ${manifest.classes} classes, ` +
      `trained with ${manifest.trainSolver})\n`,
  );
}

/** `export --effective SPEC`: x → logits with the solver unrolled, in a directory with its manifest. */
async function exportEffective(
  model: Awaited<ReturnType<typeof loadModel>>,
  effective: string,
  opts: ExportOpts,
): Promise<void> {
  const spec = parseSolverSpec(effective);
  requireFixed(spec, `--effective ${effective}`);
  const float = opts.float64 ? 'float64' : 'float32';
  const meta = {
    trainSolver: model.training.solver,
    dataset: model.training.dataset,
    seed: model.training.seed,
    float: float as typeof float,
    provenance: { exportedFrom: path.resolve(opts.model) },
  } as const;
  let file: string;
  let nodes: number;
  if (opts.out.endsWith('.onnx')) {
    // The old form: the file alone, without the manifest that records its role (evaluate needs --out DIR).
    deprecationNotice(
      `export --effective --out FILE.onnx is now --out DIR (writes DIR/${EFFECTIVE_FILE} and its manifest.json)`,
    );
    const graph = effectiveModelGraph(model, spec, { float });
    await fs.mkdir(path.dirname(path.resolve(opts.out)), { recursive: true });
    await graph.save(opts.out);
    [file, nodes] = [opts.out, graph.nodes.length];
  } else {
    ({ file, nodes } = await writeEffective(model, spec, opts.out, meta));
  }
  if (opts.json) return printJson({ kind: 'effective', file, solver: formatSolverSpec(spec), float, nodes });
  process.stdout.write(
    `wrote ${file}: x → logits with ${formatSolverSpec(spec)} unrolled (${nodes} nodes, ${float})\n`,
  );
}

interface SolveOpts {
  field: string;
  z0: string;
  solver: string;
  t0: number;
  t1: number;
  threads: number;
  device: DeviceChoice;
  json?: boolean;
}

/** `solve`: an ONNX vector field from initial states. */
function registerSolveCommand(program: Command): void {
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
    .action(solveAction);
}

async function solveAction(opts: SolveOpts): Promise<void> {
  const spec = parseSolverSpec(opts.solver);
  const z0 = await readZ0(opts.z0);
  const bar = workProgress('solve');
  const device = await resolveDevice(opts.device);
  const stop = abortOnSignals();
  let r;
  try {
    r = await solveField(opts.field, z0, spec, {
      t0: opts.t0,
      t1: opts.t1,
      threads: opts.threads,
      device,
      signal: stop.signal,
      onProgress: (calls, total) => bar.update('field calls', calls, total),
    });
  } catch (e) {
    if (!isStop(e, stop)) throw e;
    process.stderr.write(`odeness: interrupted (${stop.reason()}): the solve did not reach t1, nothing to print\n`);
    process.exitCode = stopExitCode(stop.reason()!);
    return;
  } finally {
    stop.dispose();
    bar.stop();
  }
  if (opts.json) return printJson(r);
  for (const row of r.z1) process.stdout.write(row.map((v) => v.toPrecision(8)).join(' ') + '\n');
  process.stderr.write(
    `${formatSolverSpec(spec)} over [${opts.t0}, ${opts.t1}]: ` +
      `nfe ${r.nfe}, accepted ${r.accepted}, rejected ${r.rejected}\n`,
  );
}
