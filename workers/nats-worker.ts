/**
 * Stand-alone entry for a NATS worker: `node dist/workers/nats-worker.js --nats URL [--concurrency N] …`
 * (the same options as `odeness worker`). Handy for process managers that
 * want one file per service; `odeness worker` is the usual way.
 */
import '../src/no-telemetry.js'; // first: before anything loads onnxruntime
import { Command } from 'commander';
import { isOdenessError } from '../src/errors.js';
import { registerWorkerCommand } from '../src/cli/study.js';

const program = new Command('odeness-worker');
registerWorkerCommand(program);
try {
  await program.parseAsync(['worker', ...process.argv.slice(2)], { from: 'user' });
} catch (e) {
  if (!isOdenessError(e)) throw e;
  process.stderr.write(`odeness: error: ${e.message}\n`);
  process.exitCode = 1;
}
