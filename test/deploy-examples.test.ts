// examples/deploy/ and examples/nats/start-server.sh are checked by the checkers that exist for them: bash -n and
// a dry run of the Slurm script, systemd-analyze verify of the unit, and the odeness options they use.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, requirePrerequisite, ROOT, tempDir } from './helpers/procs.js';

const SBATCH = join(ROOT, 'examples/deploy/odeness-worker.sbatch');
const UNIT = join(ROOT, 'examples/deploy/odeness-worker.service');
const SERVE = join(ROOT, 'examples/nats/start-server.sh');

async function workerOptions(): Promise<Set<string>> {
  const help = await cliResult(['worker', '--help']);
  return new Set([...help.out.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!));
}

test('the Slurm script parses (bash -n), and a dry run starts `odeness worker` with options the worker knows', async (t) => {
  const syntax = spawnSync('bash', ['-n', SBATCH], { encoding: 'utf8' });
  t.is(syntax.status, 0, syntax.stderr);
  const secrets = tempDir('odeness-secrets-');
  writeFileSync(join(secrets, 'nats-password'), 'pw');
  writeFileSync(join(secrets, 'job-key'), 'a shared secret of the cluster');
  const env = {
    PATH: process.env.PATH!,
    HOME: secrets,
    ODENESS: 'echo',
    ODENESS_NATS_URL: 'nats://host:4222',
    ODENESS_SECRETS: secrets,
    SLURM_CPUS_PER_TASK: '16',
  };
  const dry = spawnSync('bash', [SBATCH], { encoding: 'utf8', env });
  t.is(dry.status, 0, dry.stderr);
  const argv = dry.stdout.trim().split('\n').at(-1)!.split(' ');
  t.deepEqual(argv.slice(0, 5), ['worker', '--nats', 'nats://host:4222', '--workers', '16']);
  t.true(argv.includes('--job-key-file') && argv.includes('--password-file'));
  const known = await workerOptions();
  t.deepEqual(
    argv.filter((a) => a.startsWith('--') && !known.has(a)),
    [],
  );
  const noUrl = spawnSync('bash', [SBATCH], { encoding: 'utf8', env: { ...env, ODENESS_NATS_URL: '' } });
  t.not(noUrl.status, 0);
  t.regex(noUrl.stderr, /ODENESS_NATS_URL/);
});

test('the systemd unit passes systemd-analyze verify, and its ExecStart uses options the worker knows', async (t) => {
  requirePrerequisite('systemd-analyze');
  const text = readFileSync(UNIT, 'utf8');
  const exec = /^ExecStart=(\S+) worker (.*)$/m.exec(text);
  t.truthy(exec, 'ExecStart runs `odeness worker`');
  const known = await workerOptions();
  t.deepEqual(
    exec![2]!.split(/\s+/).filter((a) => a.startsWith('--') && !known.has(a)),
    [],
  );
  // verify needs the binary to exist: this checkout's bin/odeness.js stands in for the installed one.
  const dir = tempDir('odeness-unit-');
  const unit = join(dir, 'odeness-worker.service');
  writeFileSync(unit, text.replace(exec![1]!, join(ROOT, 'bin/odeness.js')));
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stderr, /odeness-worker\.service/, r.stderr);
});

test('examples/nats/start-server.sh refuses an empty or short password before nats-server starts', (t) => {
  const base = { PATH: process.env.PATH!, ODENESS_WORKER_PASSWORD: 'worker-Pa55-word' };
  for (const pw of ['', 'short']) {
    const r = spawnSync('bash', [SERVE, '-p', '1'], {
      encoding: 'utf8',
      env: { ...base, ODENESS_COORDINATOR_PASSWORD: pw },
    });
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, /ODENESS_COORDINATOR_PASSWORD is empty or shorter than 12 characters/);
  }
  const unset = spawnSync('bash', [SERVE], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH!, ODENESS_COORDINATOR_PASSWORD: 'coordinator-Pa55-word' },
  });
  t.is(unset.status, 2);
  t.regex(unset.stderr, /ODENESS_WORKER_PASSWORD is empty or shorter than 12 characters/);
});
