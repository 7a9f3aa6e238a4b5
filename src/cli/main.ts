/**
 * The `odeness` command line: argument parsing and printing only; every
 * command calls the library. User errors print one line (no stack trace
 * unless --verbose) and exit 1; unknown flags are errors.
 */
import { Command, CommanderError, Option } from 'commander';
import { isOdenessError } from '../errors.js';
import { registerCoreCommands } from './commands.js';
import { registerOnnxCommands } from './onnx-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerStudyCommands, registerWorkerCommand } from './study.js';
import { finite } from './args.js';

export function buildProgram(): Command {
  const program = new Command('odeness')
    .description(
      'Is my trained Neural ODE still an ODE, or did it learn the quirks of its solver? ' +
        'Train Neural ODE classifiers, evaluate them under other solvers, export them to ONNX, ' +
        'audit crossings and global error, and run step-size studies (Ott et al., ICLR 2021).',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .option('--verbose', 'print stack traces for errors')
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tensorflow | wasm | cpu').env('ODENESS_BACKEND'))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  registerCoreCommands(program);
  registerOnnxCommands(program);
  registerAuditCommands(program);
  const study = registerStudyCommands(program);
  study
    .command('report')
    .description('write DIR/report.html (self-contained, opens offline) and its SVG figures from a study\'s results')
    .argument('<dir>', 'study output directory')
    .option('--threshold <x>', 'accuracy difference for the critical step size, in (0, 1)', finite, 0.1)
    .option('--png', 'also write PNG figures')
    .action(async (dir: string, opts: { threshold: number; png?: boolean }) => {
      const { writeStudyReport } = await import('../study/report.js');
      const r = await writeStudyReport(dir, opts);
      process.stdout.write(`wrote ${r.htmlPath} (${r.figures.length} figures)\n`);
    });
  registerWorkerCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its message (unknown option, missing argument, --help).
      process.exitCode = e.exitCode;
      return;
    }
    const verbose = argv.includes('--verbose');
    if (isOdenessError(e) && !verbose) {
      process.stderr.write(`odeness: error: ${e.message}\n`);
    } else if (verbose) {
      process.stderr.write(`odeness: error: ${(e as Error)?.stack ?? String(e)}\n`);
    } else {
      process.stderr.write(`odeness: internal error: ${(e as Error)?.message ?? String(e)}\n(run with --verbose for the stack trace)\n`);
    }
    process.exitCode = 1;
  }
}
