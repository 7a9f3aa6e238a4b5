// Which isolation survives a V8 fatal error in a job? (issue 14, finding 2)
// Runs the same poison — an array grown past V8's FixedArray limit, which ends in
// "Fatal JavaScript invalid size error" (an abort, not an exception) — once in a
// worker thread with resourceLimits and once in a child process, and reports
// whether this (parent) process lives on.  Peak memory ~1.5 GB per case.
//   node scripts/poison-isolation.mjs thread|process
import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';

const POISON = 'const a = []; for (;;) a.push(0);';
const mode = process.argv[2];
if (mode === 'child') {
  eval(POISON);
} else if (mode === 'thread') {
  const w = new Worker(POISON, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 4096 } });
  w.on('error', (e) => console.log(`thread: error event ${e.message}`));
  w.on('exit', (code) => {
    console.log(`thread: worker exit ${code}; parent survived`);
  });
} else if (mode === 'process') {
  const c = fork(new URL(import.meta.url).pathname, ['child'], {
    execArgv: ['--max-old-space-size=4096'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  c.stderr.on('data', (d) => (err += d));
  c.on('exit', (code, signal) =>
    console.log(
      `process: child exit ${code} signal ${signal} (${err.split('\n').find((l) => /Fatal|FATAL|invalid/.test(l)) ?? err.slice(0, 120)}); parent survived`,
    ),
  );
}
