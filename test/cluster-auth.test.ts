import test from 'ava';
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { maskUrl } from '../src/cluster/nats-connect.js';
import {
  cli,
  cliResult,
  freePort,
  requirePrerequisite,
  startNats,
  startupMs,
  tempDir,
  timedCli,
  tinyStudy,
  writeStudy,
} from './helpers/procs.js';

const SECRET = 's3cret-Pa55';

test('maskUrl hides users, passwords and tokens', (t) => {
  t.is(maskUrl('nats://alice:pw@host:4222'), 'nats://***@host:4222');
  t.is(maskUrl('tls://tok3n@host'), 'tls://***@host');
  t.is(maskUrl('host:4222'), 'host:4222');
  t.is(maskUrl('nats://host:4222'), 'nats://host:4222');
  t.is(maskUrl('nats://a:b@h1:4222,nats://a:b@h2:4222'), 'nats://***@h1:4222,nats://***@h2:4222');
  // Everything up to the last @: tokens and passwords holding '/', ':' or '@' are masked whole.
  t.is(maskUrl('nats://ab/cd+ef==@host:4222'), 'nats://***@host:4222');
  t.is(maskUrl('nats://alice:p@ss/w:rd@host'), 'nats://***@host');
  t.is(maskUrl('ab/cd@host:4222'), '***@host:4222');
});

const SLASH_TOKEN = 'ab/cd+ef==';

test.serial(
  'a token holding "/" works in the URL, and is never printed: not when connected, not when the server is gone',
  async (t) => {
    t.timeout(60_000);
    const nats = await startNats({ config: `authorization { token: "${SLASH_TOKEN}" }\n` });
    const url = `nats://${SLASH_TOKEN}@127.0.0.1:${nats.port}`;
    const w = cli(['worker', '--nats', url, '--workers', '1']);
    try {
      await w.waitFor(/pulling from nats:\/\/\*\*\*@127\.0\.0\.1:\d+ \(credentials in URL\)/);
    } finally {
      w.kill('SIGTERM');
      await w.exited;
      await nats.stop();
    }
    const gone = await cliResult(['worker', '--nats', url]);
    t.is(gone.code, 1);
    t.regex(
      gone.err,
      new RegExp(
        `cannot connect to NATS at nats://\\*\\*\\*@127\\.0\\.0\\.1:${nats.port} \\(credentials in URL\\): connection refused`,
      ),
    );
    for (const text of [w.out(), w.err(), gone.out, gone.err]) {
      t.false(text.includes(SLASH_TOKEN), 'the token appears nowhere');
      t.false(text.includes('cd+ef'), 'no part of the token appears');
    }
  },
);

test.serial(
  '--password-file and --token-file keep secrets out of ps; credentials over plain nats:// draw a warning; --help says so',
  async (t) => {
    t.timeout(60_000);
    const dir = tempDir();
    writeFileSync(join(dir, 'pw'), `${SECRET}\n`);
    writeFileSync(join(dir, 'tok'), `${SLASH_TOKEN}\n`);
    const users = await startNats({ config: `authorization { users = [ { user: alice, password: "${SECRET}" } ] }\n` });
    const tokens = await startNats({ config: `authorization { token: "${SLASH_TOKEN}" }\n` });
    const procs = [
      cli(['worker', '--nats', users.url, '--user', 'alice', '--password-file', join(dir, 'pw'), '--workers', '1']),
      cli(['worker', '--nats', tokens.url, '--token-file', join(dir, 'tok'), '--workers', '1']),
    ];
    try {
      await procs[0]!.waitFor(/pulling from nats:\/\/127\.0\.0\.1:\d+ \(user alice\)/);
      await procs[1]!.waitFor(/pulling from nats:\/\/127\.0\.0\.1:\d+ \(token auth\)/);
      for (const p of procs) {
        t.regex(
          p.err(),
          /warning: credentials for nats:\/\/127\.0\.0\.1:\d+ go over plain nats:\/\/ \(not encrypted\)/,
        );
        t.false(p.err().includes(SECRET) || p.err().includes(SLASH_TOKEN));
      }
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      await users.stop();
      await tokens.stop();
    }
    const help = await cliResult(['worker', '--help']);
    t.regex(
      help.out.replace(/\s+/g, ' '),
      /ps shows arguments to every user, not environment variables: prefer NATS_PASSWORD or --password-file/,
    );
    const missing = await cliResult(['worker', '--nats', 'nats://127.0.0.1:1', '--token-file', join(dir, 'nope')]);
    t.is(missing.code, 1);
    t.regex(missing.err, /--token-file .*nope: cannot read the file \(ENOENT\)/);
    writeFileSync(join(dir, 'bad.creds'), 'not a creds file\n');
    const badCreds = await cliResult(['worker', '--nats', 'nats://127.0.0.1:1', '--creds', join(dir, 'bad.creds')]);
    t.is(badCreds.code, 1);
    t.regex(
      badCreds.err,
      /--creds .*bad\.creds: not a NATS credentials file \(expected a user JWT and an nkey seed, as nsc writes them\)/,
    );
  },
);

test('wrong credentials are refused and said so; right ones work; secrets are never printed', async (t) => {
  const nats = await startNats({ config: `authorization { users = [ { user: alice, password: "${SECRET}" } ] }\n` });
  const dir = tempDir();
  try {
    const [bad, startup] = await Promise.all([
      timedCli(['worker', '--nats', nats.url, '--user', 'alice', '--password', 'wrong-Pa55']),
      startupMs(),
    ]);
    t.is(bad.code, 1);
    // Refused at once: well under the 5 s connect timeout on top of the CLI's own start-up.
    t.true(bad.ms < startup + 4000, `refused after ${bad.ms} ms; a bare CLI start-up took ${startup} ms`);
    t.regex(
      bad.err,
      new RegExp(
        `error: NATS server at nats://127\\.0\\.0\\.1:${nats.port} \\(user alice\\) refused the credentials \\(authorization violation\\)`,
      ),
    );
    t.false((bad.out + bad.err).includes('wrong-Pa55'));

    const none = await cliResult(['worker', '--nats', nats.url]);
    t.is(none.code, 1);
    t.regex(none.err, /refused the credentials/);

    // Password from the environment for the worker, credentials in the URL for the coordinator.
    const w = cli(['worker', '--nats', nats.url, '--user', 'alice', '--workers', '1'], { NATS_PASSWORD: SECRET });
    await w.waitFor(/pulling from/);
    const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 300 }));
    const url = `nats://alice:${SECRET}@127.0.0.1:${nats.port}`;
    const r = await cliResult(['study', 'run', file, '--out', join(dir, 'out'), '--nats', url]);
    w.kill('SIGTERM');
    await w.exited;
    t.is(r.code, 0, r.err);
    t.regex(r.out, new RegExp(`on nats nats://\\*\\*\\*@127\\.0\\.0\\.1:${nats.port} \\(credentials in URL\\)`));
    t.regex(r.out, /study: 2\/2 done/);
    for (const text of [
      r.out,
      r.err,
      w.out(),
      w.err(),
      readFileSync(join(dir, 'out', 'results.jsonl'), 'utf8'),
      readFileSync(join(dir, 'out', 'plan.json'), 'utf8'),
    ]) {
      t.false(text.includes(SECRET), 'the password appears nowhere');
    }
  } finally {
    await nats.stop();
  }
});

test('an unreachable NATS URL fails fast with a clear, masked message, before touching --out', async (t) => {
  const port = await freePort();
  const dir = tempDir();
  const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 300 }));
  const [run, work, startup] = await Promise.all([
    timedCli(['study', 'run', file, '--out', join(dir, 'out'), '--nats', `nats://bob:hunter2@127.0.0.1:${port}`]),
    timedCli(['worker', '--nats', `127.0.0.1:${port}`, '--token', 'tok-hunter3']),
    startupMs(),
  ]);
  // Refused at once: well under the 5 s connect timeout on top of the CLI's own start-up.
  for (const r of [run, work])
    t.true(r.ms < startup + 4000, `failed after ${r.ms} ms; a bare CLI start-up took ${startup} ms`);
  t.is(run.code, 1);
  t.is(
    run.err,
    [
      `warning: credentials for nats://***@127.0.0.1:${port} go over plain nats:// (not encrypted): use tls:// with --tls-ca, or --creds (nkey signatures, no password on the wire)`,
      `odeness: error: cannot connect to NATS at nats://***@127.0.0.1:${port} (credentials in URL): connection refused (is nats-server running there, started with -js?)`,
      '',
    ].join('\n'),
  );
  t.false(existsSync(join(dir, 'out')));
  t.is(work.code, 1);
  t.regex(
    work.err,
    new RegExp(`cannot connect to NATS at 127\\.0\\.0\\.1:${port} \\(token auth\\): connection refused`),
  );
  t.false((run.out + run.err + work.out + work.err).includes('hunter'));
});

test('a host that accepts the connection but never speaks NATS fails within the connect timeout', async (t) => {
  const silent = createServer((sock) => sock.on('error', () => undefined)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  try {
    const [r, startup] = await Promise.all([timedCli(['worker', '--nats', `nats://127.0.0.1:${port}`]), startupMs()]);
    t.is(r.code, 1);
    // The 5 s handshake timeout on top of the CLI's start-up (slow on a loaded 2-core machine), and not much more.
    t.true(r.ms >= 5000, `gave up after ${r.ms} ms`);
    t.true(r.ms < startup + 5000 + 4000, `gave up after ${r.ms} ms; a bare CLI start-up took ${startup} ms`);
    t.is(r.err, `odeness: error: cannot connect to NATS at nats://127.0.0.1:${port} (no auth): no answer within 5 s\n`);
  } finally {
    silent.close();
  }
});

test('TLS: a worker and a coordinator connect with --tls-ca; without it the error says how to fix it', async (t) => {
  t.timeout(60_000);
  requirePrerequisite('openssl');
  const dir = tempDir();
  const run = (cmd: string) => execSync(cmd, { cwd: dir, stdio: 'pipe' });
  run('openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem -subj /CN=odeness-test-ca');
  run('openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf',
  );
  const nats = await startNats({
    config: `tls { cert_file: "${join(dir, 'server.pem')}", key_file: "${join(dir, 'server.key')}" }\n`,
  });
  try {
    const bad = await cliResult(['worker', '--nats', nats.url]);
    t.is(bad.code, 1);
    t.regex(bad.err, /cannot connect to NATS at .*: .*certificate.*give the server's CA with --tls-ca/);
    const w = cli(['worker', '--nats', nats.url, '--tls-ca', join(dir, 'ca.pem'), '--workers', '1']);
    await w.waitFor(/pulling from nats:\/\/127\.0\.0\.1:\d+ \(no auth, TLS\)/);
    const file = writeStudy(dir, 's.yaml', tinyStudy({ grid: '[euler:0.5]', iterations: 200 }));
    const r = await cliResult([
      'study',
      'run',
      file,
      '--out',
      join(dir, 'out'),
      '--nats',
      nats.url,
      '--tls-ca',
      join(dir, 'ca.pem'),
    ]);
    w.kill('SIGTERM');
    await w.exited;
    t.is(r.code, 0, r.err);
    t.regex(r.out, /study: 1\/1 done/);
    const missing = await cliResult(['worker', '--nats', nats.url, '--tls-ca', join(dir, 'nope.pem')]);
    t.is(missing.code, 1);
    t.regex(missing.err, /--tls-ca .*nope\.pem: cannot read the file \(ENOENT\)/);
  } finally {
    await nats.stop();
  }
});
