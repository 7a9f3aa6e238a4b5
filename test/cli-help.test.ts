import test from 'ava';
import type { Command, Option } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { isRequired } from '../src/cli/args.js';
import { runCli } from './helpers/cli.js';

// Every command's --help marks its required options and shows every default, and every command takes --json.

/** Options that take a value but have no default by nature: credentials and certificates. */
const NO_DEFAULT = new Set([
  '--user',
  '--password',
  '--token',
  '--password-file',
  '--token-file',
  '--creds',
  '--job-key-file',
  '--tls-ca',
  '--tls-cert',
  '--tls-key',
]);

function commands(cmd: Command, path: string[] = []): [string, Command][] {
  return cmd.commands.flatMap((c) => {
    const p = [...path, c.name()];
    return [[p.join(' '), c] as [string, Command], ...commands(c, p)];
  });
}

/** The help line(s) of one option: from its flags up to the next option. */
function helpEntry(help: string, o: Option): string {
  const lines = help.split('\n');
  const i = lines.findIndex((l) => l.trimStart().startsWith(o.flags));
  if (i < 0) return '';
  const rest = lines.slice(i + 1);
  const end = rest.findIndex((l) => !/^\s{8,}\S/.test(l)); // continuation lines are indented to the description column
  return [lines[i]!, ...rest.slice(0, end < 0 ? rest.length : end)].join(' ').replace(/\s+/g, ' ');
}

const hidden = (o: Option) => (o as Option & { hidden?: boolean }).hidden === true;

test('every command: required options say "(required)", every value option shows its default, and --json is there', (t) => {
  const all = commands(buildProgram());
  t.true(all.length >= 14, `found ${all.map(([p]) => p).join(', ')}`);
  let checked = 0;
  const problems: string[] = [];
  for (const [path, cmd] of all) {
    const help = cmd.helpInformation();
    if (cmd.commands.length === 0 && !cmd.options.some((o) => o.long === '--json')) problems.push(`${path}: no --json`);
    for (const o of cmd.options.filter((x) => !hidden(x) && x.long !== '--help')) {
      const entry = helpEntry(help, o);
      if (entry === '') problems.push(`${path}: ${o.flags} missing from --help`);
      else if (isRequired(o)) {
        if (!/\(required\)/.test(entry)) problems.push(`${path}: not marked required: ${entry}`);
      } else if (
        (o.required || o.optional) &&
        !NO_DEFAULT.has(o.long!) &&
        !/default: \S|this or --\S+ is required/.test(entry)
      ) {
        problems.push(`${path}: no default shown: ${entry}`);
      }
      checked++;
    }
  }
  t.deepEqual(problems, []);
  t.log(`${checked} options of ${all.length} commands`);
});

test('the help people see: train marks --dataset/--solver/--out required and says where study files differ; worker shows one per core', async (t) => {
  const [train, worker] = await Promise.all([runCli(['train', '--help']), runCli(['worker', '--help'])]);
  t.is(train.code, 0, train.stderr);
  const flat = train.stdout.replace(/\s+/g, ' ');
  for (const flag of ['--dataset <spec>', '--solver <spec>', '--out <dir>'])
    t.regex(flat, new RegExp(`${flag} .*?\\(required\\)`));
  t.regex(flat, /--lr <x> Adam learning rate \(default: 0\.001; study files default to 0\.0001/);
  t.regex(flat, /--iterations <n> training iterations \(default: 2000; study files default to 10000/);
  t.regex(worker.stdout.replace(/\s+/g, ' '), /--workers <n> .*\(default: one per core, \d+ here\)/);
  t.regex(worker.stdout.replace(/\s+/g, ' '), /--nats <url> .*\(required\)/);
  t.false(/--concurrency/.test(worker.stdout), 'the old name is hidden');
});
