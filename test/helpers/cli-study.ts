/**
 * A tiny CLI entry for the study/worker end-to-end tests:
 *   node --import=tsx test/helpers/cli-study.ts study run FILE --out DIR …
 * Builds a commander program with only the study and worker commands and
 * prints user errors on one line, as the real bin/odeness.js does.
 * (The lead will switch the tests to bin/odeness.js.)
 */
import { Command } from 'commander';
import { isOdenessError } from '../../src/errors.js';
import { registerStudyCommands, registerWorkerCommand } from '../../src/cli/study.js';

const program = new Command('odeness').exitOverride().showSuggestionAfterError();
registerStudyCommands(program);
registerWorkerCommand(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  const code = (e as { code?: string; exitCode?: number }).code;
  if (typeof code === 'string' && code.startsWith('commander.')) {
    process.exitCode = (e as { exitCode?: number }).exitCode ?? 1;
  } else if (isOdenessError(e)) {
    process.stderr.write(`odeness: error: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
