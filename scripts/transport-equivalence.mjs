#!/usr/bin/env node
// Runs one study on the local pool and on a real NATS cluster (a throwaway nats-server with JetStream and
// N `odeness worker` processes) and compares what each recorded: the same job ids, the same statuses, and
// equal results once timings and worker names are removed (accuracies, NFE, losses, adapted steps, audits).
//
//   node scripts/transport-equivalence.mjs examples/paper-spheres.yaml --iterations 2 --batch-size 16 --test-points 20
//   options: --workers N (pool threads and NATS workers, default 2), --out DIR (kept; default a temp dir,
//   removed on success), --json (print the summary as one JSON line). Needs the compiled CLI (npm run build)
//   and nats-server on PATH. Exit 0 when both runs agree, 1 when they differ, 2 on a usage or set-up error.
// The test suite runs it on examples/quick-spheres.yaml (test/transport-equivalence.test.ts).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingPrerequisite } from './prerequisites.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/odeness.js');

/** Keys of a result that depend on where and when it ran, not on what it computed. */
const VOLATILE = /^(worker|timings|ms|startedAt|finishedAt)$|Ms$/;

/** A result without its timings and worker names, keys sorted: equal results give equal strings. */
export function comparable(v) {
  if (Array.isArray(v)) return v.map(comparable);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .filter((k) => !VOLATILE.test(k))
      .map((k) => [k, comparable(v[k])]),
  );
}

/** The first path at which two values differ, or undefined. */
export function firstDifference(a, b, path = '') {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null))
    return `${path || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  if (a === null || typeof a !== 'object')
    return Object.is(a, b) ? undefined : `${path || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    const d = firstDifference(a[k], b[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
}

/** The last line of each job id in DIR/results.jsonl (the result of record), by id. */
export function resultsById(dir) {
  const file = join(dir, 'results.jsonl');
  const byId = new Map();
  if (!existsSync(file)) return byId;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    byId.set(r.id, r);
  }
  return byId;
}

/** Compare two runs' results; `differences` is empty when they agree. */
export function compareRuns(local, nats) {
  const differences = [];
  for (const id of local.keys()) if (!nats.has(id)) differences.push(`${id}: only on the local pool`);
  for (const id of nats.keys()) if (!local.has(id)) differences.push(`${id}: only on NATS`);
  for (const [id, a] of local) {
    const b = nats.get(id);
    if (!b) continue;
    if (a.status !== b.status) differences.push(`${id}: ${a.status} on the local pool, ${b.status} on NATS`);
    else {
      const d = firstDifference(comparable(a), comparable(b));
      if (d) differences.push(`${id}: ${d}`);
    }
  }
  const count = (m, s) => [...m.values()].filter((r) => r.status === s).length;
  return {
    jobs: local.size,
    local: { done: count(local, 'done'), failed: count(local, 'failed') },
    nats: { done: count(nats, 'done'), failed: count(nats, 'failed') },
    differences,
  };
}

function run(args, opts = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  const waiters = [];
  const feed = (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  };
  child.stdout.on('data', feed);
  child.stderr.on('data', feed);
  const exited = new Promise((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 : 0))));
  const waitFor = (re, ms) =>
    new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re}:\n${out.slice(-2000)}`)), ms);
      const check = () => (re.test(out) ? (clearTimeout(timer), res()) : waiters.push(check));
      void exited.then(
        () => (clearTimeout(timer), re.test(out) ? res() : rej(new Error(`exited before ${re}:\n${out.slice(-2000)}`))),
      );
      check();
    });
  return { child, exited, waitFor, out: () => out };
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const portOpen = (port) =>
  new Promise((res) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => (s.destroy(), res(false)));
    s.connect(port, '127.0.0.1');
  });

async function startNats(dir) {
  const port = await freePort();
  const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'jetstream')], {
    stdio: 'ignore',
  });
  for (const until = Date.now() + 10_000; !(await portOpen(port)); ) {
    if (Date.now() > until) throw new Error(`nats-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => new Promise((r) => (server.once('exit', r), server.kill('SIGTERM'))),
  };
}

/** Run `file` on the pool and on NATS (under `dir`), then compare; returns the summary. */
export async function transportEquivalence(file, { workers = 2, overrides = [], dir, log = () => {} }) {
  const local = run([
    'study',
    'run',
    file,
    '--out',
    join(dir, 'local'),
    '--workers',
    String(workers),
    ...overrides,
    '--json',
  ]);
  const localCode = await local.exited;
  log(`local pool: exit ${localCode}`);
  const nats = await startNats(dir);
  const procs = [];
  let natsCode;
  try {
    for (let i = 0; i < workers; i++) procs.push(run(['worker', '--nats', nats.url, '--workers', '1']));
    await Promise.all(procs.map((p) => p.waitFor(/pulling from/, 60_000)));
    const coordinator = run([
      'study',
      'run',
      file,
      '--out',
      join(dir, 'nats'),
      '--nats',
      nats.url,
      ...overrides,
      '--json',
    ]);
    procs.push(coordinator);
    natsCode = await coordinator.exited;
    log(`nats (${workers} workers): exit ${natsCode}`);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await nats.stop();
  }
  return {
    file,
    overrides,
    workers,
    exit: { local: localCode, nats: natsCode },
    ...compareRuns(resultsById(join(dir, 'local')), resultsById(join(dir, 'nats'))),
  };
}

async function main(argv) {
  const args = [...argv];
  const take = (flag) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const [, v] = args.splice(i, 2);
    return v;
  };
  const json = args.includes('--json') ? (args.splice(args.indexOf('--json'), 1), true) : false;
  const workers = Number(take('--workers') ?? 2);
  const keep = take('--out');
  const [file, ...overrides] = args;
  if (!file || !Number.isInteger(workers) || workers < 1) {
    process.stderr.write(
      'usage: node scripts/transport-equivalence.mjs STUDY.yaml [--workers N] [--out DIR] [--json] [study run overrides…]\n',
    );
    return 2;
  }
  const missing = missingPrerequisite('nats-server');
  if (missing) {
    process.stderr.write(missing + '\n');
    return 2;
  }
  const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'odeness-equivalence-'));
  const t0 = Date.now();
  const s = await transportEquivalence(file, { workers, overrides, dir, log: (m) => process.stderr.write(m + '\n') });
  const agree = s.exit.local === s.exit.nats && s.differences.length === 0;
  if (json)
    process.stdout.write(JSON.stringify({ ...s, agree, ms: Date.now() - t0, out: keep ? dir : undefined }) + '\n');
  else {
    process.stdout.write(
      `${file} ${overrides.join(' ')}: ${s.jobs} job(s); local pool ${s.local.done} done, ${s.local.failed} failed; ` +
        `NATS (${workers} workers) ${s.nats.done} done, ${s.nats.failed} failed; ${s.differences.length} difference(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
    );
    for (const d of s.differences.slice(0, 20)) process.stdout.write(`  ${d}\n`);
  }
  if (!keep && agree) rmSync(dir, { recursive: true, force: true });
  return agree ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`transport-equivalence: ${e.message}\n`);
      process.exitCode = 2;
    },
  );
}
