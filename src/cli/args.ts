/** Option value parsers: a bad value is a commander error naming the flag. */
import { availableParallelism } from 'node:os';
import { Help, InvalidArgumentError, Option, type Command } from 'commander';
import { jsonFileSpec } from '../data/spec.js';
import { isPositiveInt } from '../formats/index.js';
import { DEVICE_CHOICES } from '../formats/common.js';
import { DEFAULT_MEMORY_BYTES, formatBytes, parseMemory } from '../engines/memory.js';

export function int(value: string): number {
  const v = Number(value);
  if (!Number.isInteger(v)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return v;
}

export function positiveInt(value: string): number {
  const v = int(value);
  if (!isPositiveInt(v)) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return v;
}

/**
 * --threads: a positive integer, capped at this machine's cores with a note —
 * more intra-op threads than cores only contend (1000 threads made 5
 * iterations take 36 s instead of 0.1 s).
 */
export function threadCount(value: string): number {
  const v = positiveInt(value);
  const cores = availableParallelism();
  if (v <= cores) return v;
  process.stderr.write(`odeness: note: --threads ${v} is more than this machine's ${cores} cores; using ${cores}\n`);
  return cores;
}

export function nonNegativeInt(value: string): number {
  const v = int(value);
  if (v < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return v;
}

export function finite(value: string): number {
  const v = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(v)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return v;
}

export function positive(value: string): number {
  const v = finite(value);
  if (!(v > 0)) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return v;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** "b1,b2" with both in [0, 1): Adam's betas. */
export function betaPair(value: string): [number, number] {
  const parts = value.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 2 || !parts.every((b) => Number.isFinite(b) && b >= 0 && b < 1)) {
    throw new InvalidArgumentError(
      `expected two numbers in [0, 1) separated by a comma, e.g. 0.9,0.999; got "${value}"`,
    );
  }
  return [parts[0]!, parts[1]!];
}

/** The help text's "(default: …)" for an option whose default is not a plain value ("one per core", "all points"). */
export function defaultText(option: Option, text: string): Option {
  return option.default(undefined, text);
}

/**
 * Help that marks required options "(required)" and shows every default,
 * including those given as text only (see defaultText).
 */
export function configureHelp(program: Command): void {
  program.configureHelp({
    sortSubcommands: false,
    showGlobalOptions: true,
    optionDescription(option: Option): string {
      let text = Help.prototype.optionDescription.call(this, option);
      if (option.defaultValue === undefined && option.defaultValueDescription)
        text += ` (default: ${option.defaultValueDescription})`;
      if (isRequired(option)) text += ' (required)';
      return text;
    },
  });
}

/** Required options whose check runs after a renamed flag handed over its value (see renamedOption). */
const requiredAfterRename = new WeakSet<Option>();

/** Whether an option must be given (the help marks it "(required)"). */
export function isRequired(option: Option): boolean {
  return option.mandatory || requiredAfterRename.has(option);
}

/** Where deprecation notices go (one line each, on stderr). */
export function deprecationNotice(line: string): void {
  process.stderr.write(`odeness: warning: ${line}; the old form goes away in the next release\n`);
}

/**
 * A flag renamed in this release: `oldFlags` (e.g. '--concurrency <n>') still
 * works for one release with a one-line notice on stderr, and hands its value
 * (mapped by `map`) to the new option, so actions only see the new name;
 * `newForm` is how the notice spells the replacement.
 * Register after the new option.
 */
export function renamedOption(
  cmd: Command,
  oldFlags: string,
  newName: string,
  map: (value: never) => unknown = (v) => v,
  newForm = newName,
): Command {
  const target = cmd.options.find((o) => o.long === newName);
  if (!target) throw new Error(`renamedOption: ${cmd.name()} has no ${newName}`);
  const old = new Option(oldFlags).hideHelp();
  if (target.parseArg) old.argParser(target.parseArg);
  cmd.addOption(old);
  // Commander checks mandatory options before any hook runs, so a required option is checked here instead.
  const required = target.mandatory;
  if (required) {
    target.makeOptionMandatory(false);
    requiredAfterRename.add(target);
  }
  const oldKey = old.attributeName();
  const newKey = target.attributeName();
  cmd.hook('preAction', (_self, action) => {
    if (action !== cmd) return;
    if (action.getOptionValueSource(oldKey) === 'cli') {
      if (action.getOptionValueSource(newKey) === 'cli')
        action.error(`error: give ${newName} or ${old.long}, not both (${old.long} is its old name)`, {
          code: 'commander.conflictingOption',
        });
      deprecationNotice(`${old.long} is now ${newForm}`);
      action.setOptionValueWithSource(newKey, map(action.getOptionValue(oldKey) as never), 'cli');
      action.setOptionValueWithSource(oldKey, undefined, 'default');
    }
    if (required && action.getOptionValue(newKey) === undefined)
      action.error(`error: required option '${target.flags}' not specified`, {
        code: 'commander.missingMandatoryOptionValue',
      });
  });
  return cmd;
}

/** --dataset <spec> for evaluation data, and its old name --data <file.json> (every row of the file). */
export function datasetOption(cmd: Command, defaultIs: string): Command {
  cmd.addOption(
    defaultText(
      new Option(
        '--dataset <spec>',
        'evaluation data: the test split of a dataset spec (as train --dataset), e.g. json:points.json:split=none ' +
          'for every row of a file',
      ),
      defaultIs,
    ),
  );
  return renamedOption(
    cmd,
    '--data <file.json>',
    '--dataset',
    (file: string) => jsonFileSpec(file),
    '--dataset json:<file>:split=none',
  );
}

/** A memory size such as 512m, 2g or 1.5GiB (binary units), in bytes. */
export function memorySize(value: string): number {
  try {
    return parseMemory(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** --memory <size>: the working memory of one field evaluation (see engines/memory.ts). */
/** --device, the same flag wherever odeness creates onnxruntime sessions; `auto` is resolved by resolveDevice. */
export function deviceOption(what = 'onnxruntime sessions'): Option {
  return new Option(
    '--device <device>',
    `where ${what} run: cpu | webgpu (any GPU through Vulkan) | cuda (NVIDIA) | auto (the best one present)`,
  )
    .choices(DEVICE_CHOICES)
    .default('cpu');
}

export function memoryOption(): Option {
  return new Option(
    '--memory <size>',
    'working memory of one field evaluation, e.g. 256m, 2g: evaluation runs the field on chunks of samples that ' +
      'fit it; results do not depend on it',
  )
    .argParser(memorySize)
    .default(DEFAULT_MEMORY_BYTES, formatBytes(DEFAULT_MEMORY_BYTES).replace(' MiB', 'm').replace(' GiB', 'g'));
}
