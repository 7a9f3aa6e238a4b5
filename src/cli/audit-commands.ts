/** `odeness audit crossing | fan | critical`. */
import { Option, type Command } from 'commander';
import { auditData, openModelSource, type AuditData, type ModelSource } from '../audit/source.js';
import { crossingAudit, fanAudit, DEFAULT_FAN_REFERENCE, type AuditRunOptions } from '../audit/audits.js';
import { criticalFromModels } from '../audit/critical-models.js';
import { displaySpec, parseSolverList, parseSolverSpec } from '../solvers/spec.js';
import type { DeviceChoice } from '../formats/common.js';
import { resolveDevice } from '../onnx/runtime/adapters.js';
import {
  datasetOption,
  defaultText,
  deviceOption,
  finite,
  memoryOption,
  positiveInt,
  renamedOption,
  threadCount,
} from './args.js';
import { checkPlotDir } from './plot-dir.js';
import { formatNumber, printJson, table, workProgress } from './output.js';
import { unverifiedNote } from './evaluate-command.js';
import { abortOnSignals, isStop, stopExitCode } from './signals.js';

interface SourceOpts {
  model?: string;
  bundle?: string;
  dataset?: string;
  solver: string;
  maxPoints?: number;
  threads?: number;
  device: DeviceChoice;
  memory?: number;
  json?: boolean;
  plot?: string;
}

function sourceOptions(cmd: Command): Command {
  cmd
    .option('--model <dir>', 'model directory written by `odeness train` (this or --bundle is required)')
    .option('--bundle <dir>', 'ONNX bundle directory (this or --model is required)');
  datasetOption(cmd, "the model's own test split")
    .requiredOption('--solver <spec>', 'solver whose discrete trajectories are audited, e.g. euler:0.5')
    .addOption(
      defaultText(
        new Option('--max-points <n>', 'audit at most the first N points').argParser(positiveInt),
        'all points',
      ),
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (bundles)', threadCount, 1)
    .addOption(deviceOption())
    .addOption(memoryOption())
    .addOption(defaultText(new Option('--plot <dir>', 'write SVG + PNG figures into this directory'), 'no figures'))
    .option('--json', 'print one JSON document');
  cmd.hook('preAction', (_self, action) => checkPlotDir(action.opts().plot));
  return cmd;
}

/**
 * Open the source and data, run one audit with progress (a bar on a terminal,
 * plain lines off it) and a stop on Ctrl-C; undefined when stopped (an audit
 * has no finished part to print: it says so and exits 130).
 */
async function withAudit<T>(
  name: string,
  opts: SourceOpts,
  run: (source: ModelSource, data: AuditData, o: AuditRunOptions) => Promise<T>,
): Promise<{ result: T; data: AuditData } | undefined> {
  const source = await openModelSource({ ...opts, memoryBytes: opts.memory, device: await resolveDevice(opts.device) });
  const bar = workProgress(`audit ${name}`);
  const stop = abortOnSignals((why) => bar.log(`${why}: stopping (Ctrl-C again to quit at once)`));
  try {
    unverifiedNote(source);
    const data = await auditData(source, opts.dataset, opts.maxPoints);
    return {
      result: await run(source, data, {
        signal: stop.signal,
        onProgress: (phase, calls, total) => bar.update(phase, calls, total),
      }),
      data,
    };
  } catch (e) {
    if (!isStop(e, stop)) throw e;
    process.stderr.write(
      `odeness: interrupted (${stop.reason()}): the ${name} audit did not finish; nothing to report\n`,
    );
    process.exitCode = stopExitCode(stop.reason()!);
    return undefined;
  } finally {
    stop.dispose();
    bar.stop();
    await source.release();
  }
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('is the model still an ODE? crossing trajectories, global-error fan, critical step size');
  registerCrossingCommand(audit);
  registerFanCommand(audit);
  registerCriticalCommand(audit);
}

type CrossingOpts = SourceOpts & { fold?: boolean; differentSteps?: boolean; refine: boolean };
type CrossingReport = Omit<Awaited<ReturnType<typeof crossingAudit>>, 'trajectories'>;

/** `audit crossing`: trajectory pairs that cross, and the fold check. */
function registerCrossingCommand(audit: Command): void {
  sourceOptions(
    audit
      .command('crossing')
      .description(
        'count trajectory pairs whose segments over the same step intersect (impossible for an ODE flow), ' +
          'plus the fold check',
      ),
  )
    .option('--fold', 'run the Jacobian-determinant fold check (default: on for states of up to 64 dimensions)')
    .option('--no-fold', 'skip the fold check')
    .option('--different-steps', 'also count intersections of segments at different steps (a weaker signal)')
    .option('--no-refine', 'skip re-solving 2-D crossing pairs finely (then no crossing counts as proof)')
    .action(crossingAction);
}

async function crossingAction(opts: CrossingOpts): Promise<void> {
  const done = await withAudit('crossing', opts, (source, data, run) =>
    crossingAudit(source, data, parseSolverSpec(opts.solver), {
      fold: opts.fold,
      differentSteps: opts.differentSteps,
      refine: opts.refine,
      keepTrajectories: Boolean(opts.plot),
      ...run,
    }),
  );
  if (!done) return;
  const { result: r, data } = done;
  const { trajectories, ...report } = r;
  if (opts.plot && trajectories) {
    const { writeTrajectoryPlot } = await import('./plot-output.js');
    await writeTrajectoryPlot(opts.plot, trajectories, data.y, r);
  }
  if (opts.json) return printJson(report);
  printCrossing(report);
}

function printCrossing(r: CrossingReport): void {
  process.stdout.write(
    `${r.solver}: ${r.crossings} crossing pairs of ${r.pairsChecked} pairs checked (${r.n} points, ${r.steps} steps)\n`,
  );
  process.stdout.write(`  ${r.note}\n`);
  if (r.firstStep !== null) {
    const examples = r.examples.map((e) => `(${e.i}, ${e.j}) at step ${e.step}`).join(', ');
    process.stdout.write(`  first crossing over step ${r.firstStep}; examples: ${examples}\n`);
  }
  if (r.refinement) {
    const f = r.refinement;
    process.stdout.write(
      `  refined (both trajectories re-solved with rk4 at ${f.levels.join(' / ')} sub-steps per step): ` +
        `${f.persistentPairs} persist, ${f.artefactPairs} vanish (artefacts), ` +
        `${f.unresolvedPairs} too close to resolve${f.notRefinedPairs ? `, ${f.notRefinedPairs} not refined` : ''}\n`,
    );
  }
  if (r.fold) {
    const first = r.fold.firstStep !== null ? `, first at step ${r.fold.firstStep}` : '';
    process.stdout.write(
      `  fold check: ${r.fold.folded} of ${r.fold.states} visited states have det ≤ 0 ` +
        `(min det ${formatNumber(r.fold.minDet)})${first}\n`,
    );
  }
  if (r.differentStepIntersections)
    process.stdout.write(`  weaker signal: ${r.differentStepIntersections.pairs} pairs intersect at different steps\n`);
  process.stdout.write(`verdict: ${r.verdict.text}\n`);
  process.stdout.write(`  rests on: ${r.verdict.proofs.length > 0 ? r.verdict.proofs.join(', ') : 'no proof'}\n`);
}

/** `audit fan`: global error against a tight reference, per class. */
function registerFanCommand(audit: Command): void {
  sourceOptions(
    audit
      .command('fan')
      .description(
        "Lady Windermere's fan: global error of the solver's trajectory against a tight float64 reference, per class",
      ),
  )
    .option('--reference <spec>', 'reference solver', DEFAULT_FAN_REFERENCE)
    .action(async (opts: SourceOpts & { reference: string }) => {
      const done = await withAudit('fan', opts, (source, data, run) =>
        fanAudit(source, data, parseSolverSpec(opts.solver), parseSolverSpec(opts.reference), run),
      );
      if (!done) return;
      const r = done.result;
      if (opts.plot) {
        const { writeFanPlot } = await import('./plot-output.js');
        await writeFanPlot(opts.plot, r);
      }
      if (opts.json) return printJson(r);
      process.stdout.write(
        `${r.solver} vs ${r.reference}: global error at t1 mean ${formatNumber(r.final.mean)}, ` +
          `max ${formatNumber(r.final.max)}\n`,
      );
      process.stdout.write(
        table(
          ['class', 'points', 'mean', 'std', 'median', 'max'],
          r.final.perClass.map((c) => [String(c.label), c.count, c.mean, c.std, c.median, c.max]),
        ) + '\n',
      );
    });
}

interface CriticalOpts {
  model: string[];
  threshold: number;
  solvers?: string;
  dataset?: string;
  device: DeviceChoice;
  json?: boolean;
  proofs: boolean;
}
type CriticalGroup = Awaited<ReturnType<typeof criticalFromModels>>['groups'][number];

/** `audit critical`: the largest training step whose test accuracies stay within the threshold. */
function registerCriticalCommand(audit: Command): void {
  const critical = audit
    .command('critical')
    .description(
      'critical step size (or tolerance): the largest training step whose test-solver accuracies ' +
        'stay within the threshold of its train-solver accuracy',
    )
    .requiredOption(
      '--model <dirs...>',
      'model directories or ONNX bundles trained at different step sizes (or tolerances)',
    )
    .option('--threshold <x>', 'allowed accuracy difference, in (0, 1)', finite, 0.1)
    .addOption(
      defaultText(new Option('--solvers <list>', 'test solvers'), "the paper's set around each training solver"),
    );
  datasetOption(critical, "each model's own test split")
    .addOption(deviceOption())
    .option('--json', 'print one JSON document')
    .option(
      '--no-proofs',
      "skip the crossing / fold audit of each model under its training solver (the paper's accuracy criterion only)",
    )
    .action(criticalAction);
  // --model <dirs...> is the name evaluate and the other audits use.
  renamedOption(critical, '--models <dirs...>', '--model');
}

const criticalKey = (g: { kind: string }) => (g.kind === 'step' ? 'criticalStep' : 'criticalTol');

async function criticalAction(opts: CriticalOpts): Promise<void> {
  const r = await criticalFromModels(opts.model, {
    threshold: opts.threshold,
    testSolvers: opts.solvers ? parseSolverList(opts.solvers) : undefined,
    dataset: opts.dataset,
    proofs: opts.proofs,
    device: await resolveDevice(opts.device),
  });
  const groups = r.groups.map((g) => ({ [criticalKey(g)]: g.critical, ...g }));
  // One group: its result at the top level as before; several: each its own, never pooled.
  if (opts.json) return printJson(groups.length === 1 ? { ...groups[0], groups } : { groups, note: r.note });
  if (r.note) process.stdout.write(`note: ${r.note}\n`);
  for (const g of r.groups) {
    if (r.groups.length > 1) process.stdout.write(`\n${g.dataset} · ${g.field} · ${g.method}\n`);
    printCriticalGroup(g);
  }
}

/** One group's evidence table, its non-flow proofs and its critical value. */
function printCriticalGroup(g: CriticalGroup): void {
  const why = (e: (typeof g.evidence)[number]) =>
    e.pass
      ? 'yes'
      : e.failure === 'non-flow'
        ? 'no (proven no ODE flow)'
        : e.failure === 'chance'
          ? 'no (at chance)'
          : 'no';
  process.stdout.write(
    table(
      ['train solver', 'param', 'train acc', 'max dev', 'worst test', 'pass'],
      g.evidence.map((e) => [
        displaySpec(e.trainSpec),
        e.trainParam,
        e.trainAccuracy,
        e.maxDeviation,
        displaySpec(e.worstTest),
        why(e),
      ]),
    ) + '\n',
  );
  for (const e of g.evidence.filter((x) => x.nonFlow))
    process.stdout.write(`${displaySpec(e.trainSpec)}: ${e.nonFlow}\n`);
  const monotone = g.monotone ? '' : `; not monotone: largest passing ${g.largestPassing}`;
  process.stdout.write(
    `${criticalKey(g)}: ${g.critical ?? 'none (the smallest value already fails)'} ` +
      `(threshold ${g.threshold}${monotone})\n`,
  );
}
