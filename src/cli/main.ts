/**
 * The `odeness` command line: argument parsing and printing only; every
 * command calls the library. Every error line starts with `odeness: error:`;
 * user errors print one line (no stack trace unless --verbose) and exit 1,
 * usage errors (unknown flags, missing arguments) exit 2; a closed stdout
 * (EPIPE) stops long work like Ctrl-C (see cli/signals.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { asUserError, isOdenessError } from '../errors.js';
import { registerCoreCommands } from './commands.js';
import { registerOnnxCommands } from './onnx-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerStudyCommands, registerWorkerCommand } from './study.js';
import path from 'node:path';
import { configureHelp, defaultText, finite, renamedOption } from './args.js';
import { plural, printJson } from './output.js';
import { terminalSafe } from './terminal.js';

export function buildProgram(): Command {
  const program = new Command('odeness')
    .description(
      'Is my trained Neural ODE still an ODE, or did it learn the quirks of its solver? ' +
        'Train Neural ODE classifiers, evaluate them under other solvers, export them to ONNX, ' +
        'audit crossings and global error, and run step-size studies (Ott et al., ICLR 2021).',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .option(
      '--verbose',
      'print stack traces for errors, and (train) which onnxruntime provider runs how many nodes of each graph',
    )
    .addOption(
      defaultText(
        new Option('--backend <name>', 'tfjs backend: auto | tensorflow | wasm | cpu').env('ODENESS_BACKEND'),
        'auto: native if installed, else wasm',
      ),
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  configureHelp(program);
  registerCoreCommands(program);
  registerOnnxCommands(program);
  registerAuditCommands(program);
  const study = registerStudyCommands(program);
  const report = study
    .command('report')
    .description(
      'write DIR/report.html (self-contained, opens offline) ' +
        "and its SVG figures (in DIR/figures/) from a study's results",
    )
    .argument('<dir>', 'study output directory')
    .option('--threshold <x>', 'accuracy difference for the critical step size, in (0, 1)', finite, 0.1)
    .addOption(
      defaultText(
        new Option(
          '--plot <dir>',
          'also write every figure as SVG + PNG into this directory, as train/evaluate/audit --plot do',
        ),
        'SVG only, in DIR/figures/',
      ),
    )
    .option('--json', 'print {"html", "figures", "critical"} as one JSON document')
    .action(async (dir: string, opts: { threshold: number; plot?: string | true; json?: boolean }) => {
      const { writeStudyReport } = await import('../report/study.js');
      const { copyFigures } = await import('./plot-dir.js');
      const plotDir = opts.plot === true ? path.join(dir, 'figures') : opts.plot;
      const r = await writeStudyReport(dir, { threshold: opts.threshold, png: plotDir !== undefined });
      const figures = plotDir !== undefined ? await copyFigures(r.figures, plotDir) : r.figures;
      if (opts.json) return printJson({ html: r.htmlPath, figures, critical: r.critical });
      process.stdout.write(`wrote ${r.htmlPath} (${plural(r.figures.length, 'figure')})\n`);
      if (plotDir !== undefined) process.stdout.write(`figures (SVG + PNG) in ${plotDir}\n`);
    });
  // --png wrote the PNGs beside the report's SVGs: --plot DIR/figures.
  renamedOption(report, '--png', '--plot', () => true, '--plot DIR/figures');
  registerWorkerCommand(program);
  return program;
}

/** Every line the CLI writes about an error starts with this. */
export const ERROR_PREFIX = 'odeness: error:';

/** Exit codes: 1 for a user error or a bug, 2 for a usage error (unknown flag, missing argument). */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** Commander's errors that mean "the command line is malformed" (exit 2); its other errors keep their own code. */
const USAGE_CODES = new Set([
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.invalidArgument',
  'commander.excessArguments',
  'commander.conflictingOption',
]);

/**
 * A closed stdout or stderr (`odeness … | head -1`) is not an error in
 * itself: later writes are dropped, and a command doing long work stops
 * through abortOnSignals (cli/signals.ts) and reports how far it got. Never
 * process.exit here: exiting while onnxruntime or worker threads run aborted
 * in native code (`terminate called after throwing an instance of 'Napi::Error'`).
 */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') return;
      throw e;
    });
  }
}

export async function main(argv: string[]): Promise<void> {
  ignoreClosedPipes();
  const program = buildProgram();
  // Commander writes its own usage errors ("error: unknown option …"): give them the one prefix.
  const usageOutput = { outputError: (text: string, write: (s: string) => void) => write(`odeness: ${text}`) };
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput(usageOutput);
    cmd.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
  } catch (caught) {
    if (caught instanceof CommanderError) {
      // Commander already printed its message (unknown option, missing argument, --help, --version).
      process.exitCode = USAGE_CODES.has(caught.code) ? EXIT_USAGE : caught.exitCode;
      return;
    }
    const e = asUserError(caught);
    const verbose = argv.includes('--verbose');
    if (isOdenessError(e) && !verbose) {
      process.stderr.write(`${ERROR_PREFIX} ${oneLine(e.message)}\n`);
    } else if (verbose) {
      process.stderr.write(`${ERROR_PREFIX} ${(caught as Error)?.stack ?? String(caught)}\n`);
    } else {
      process.stderr.write(
        `${ERROR_PREFIX} internal error (a bug): ${oneLine((e as Error)?.message ?? String(e))}\n(run with ` +
          `--verbose for the stack trace)\n`,
      );
    }
    process.exitCode = EXIT_ERROR;
  }
}

/** A user error is one line: newlines inside a message (e.g. a YAML excerpt) become ' | '. */
function oneLine(message: string): string {
  return terminalSafe(
    message
      .trim()
      .split(/\r?\n\s*/)
      .join(' | '),
  );
}
