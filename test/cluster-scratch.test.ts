/**
 * Where a NATS worker's job temp dirs go (nats-job-run.ts jobScratch): TMPDIR when the operator sets it, else
 * Linux's memory file system when it has room (a job's bundle is written, read back and removed once per job),
 * else the system's temp dir.
 */
import test from 'ava';
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { JobDirs, jobScratch, jobTmpRoot } from '../src/cluster/nats-job-run.js';

test('job scratch: TMPDIR when set, else /dev/shm only when it is a memory file system with a GiB free', (t) => {
  t.deepEqual(jobScratch({ TMPDIR: tmpdir() }), { base: tmpdir(), why: 'TMPDIR' });
  const chosen = jobScratch({});
  if (chosen.base === '/dev/shm') {
    const fs = statfsSync('/dev/shm');
    t.is(fs.type, 0x01021994, 'tmpfs');
    t.true(fs.bavail * fs.bsize >= 2 ** 30);
    t.regex(chosen.why, /memory file system; set TMPDIR/);
  } else t.deepEqual(chosen, { base: tmpdir(), why: 'TMPDIR' });
  // A worker's job dirs and the dead workers' dirs it removes lie under the chosen base.
  t.is(new JobDirs(chosen).root, jobTmpRoot(chosen.base));
});
