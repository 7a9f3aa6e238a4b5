import test from 'ava';
import { missingPrerequisite, onPath } from './helpers/prerequisites.mjs';
import { spawnProc, startNats } from './helpers/procs.js';

// npm test on a machine without nats-server: one line naming it and how to get it, never an uncaught exception.
test.serial(
  'without nats-server on PATH the cluster helper fails with one line naming it and how to install it',
  async (t) => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      t.false(onPath('nats-server'));
      const line = missingPrerequisite('nats-server')!;
      t.regex(
        line,
        /^missing prerequisite: nats-server is not on PATH \(needed by the cluster tests.*\); install: apt-get install nats-server/,
      );
      t.false(line.includes('\n'));
      const e = await t.throwsAsync(startNats());
      t.is(e?.message, line);
      t.regex(missingPrerequisite('openssl')!, /openssl is not on PATH .*apt-get install openssl/);
    } finally {
      process.env.PATH = path;
    }
  },
);

test.serial('a program that is not installed exits 127 instead of throwing an uncaught spawn error', async (t) => {
  const p = spawnProc('odeness-no-such-program', []);
  t.is(await p.exited, 127);
  t.regex(p.err(), /odeness-no-such-program: spawn odeness-no-such-program ENOENT/);
});
