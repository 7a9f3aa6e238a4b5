/**
 * Field specs as used by the CLI and study files, `<kind>[:key=value,…,flag]`:
 *   mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time]
 *   conv1d[:channels=32]   the paper's sphere field
 *   conv2d[:channels=128]  the paper's image field
 * The one spec tokenizer (formats/) splits the string; each kind's options
 * and bounds live in its module (fields/), which reads the pairs.
 */
import { SpecError } from '../errors.js';
import { tokenizeSpec, type SpecToken } from '../formats/index.js';
import { FIELD_KINDS, fieldKind, type FieldSpec } from './fields/index.js';
import { flagNames, optionNames, pathOption, readOptions } from './fields/options.js';

export { FIELD_KINDS };

function parseOptions(
  spec: string,
  items: readonly SpecToken[],
  allowed: readonly string[],
  flags: readonly string[],
  bare?: string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, item] of items.entries()) {
    if (i === 0 && item.key === undefined && bare !== undefined) {
      out.set(bare, item.value);
      continue;
    }
    const key = item.key ?? item.value;
    if (item.key === undefined && !flags.includes(key)) {
      throw new SpecError(
        `field spec "${spec}": "${item.text.trim()}" is not key=value; expected options ` +
          `${[...allowed, ...flags].join(', ')}`,
      );
    }
    if (!allowed.includes(key) && !flags.includes(key)) {
      throw new SpecError(
        `field spec "${spec}": unknown option "${key}"; expected ${[...allowed, ...flags].join(', ')}`,
      );
    }
    if (out.has(key)) throw new SpecError(`field spec "${spec}": ${key} given twice`);
    out.set(key, item.key === undefined ? 'true' : item.value);
  }
  return out;
}

export function parseFieldSpec(spec: string): FieldSpec {
  const kind = fieldKind(tokenizeSpec(spec).head, spec);
  // Kinds that read a file take the path as the first item, so it may hold ',' and ':'.
  const bare = pathOption(kind.options);
  const { items } = tokenizeSpec(spec, { pathSafe: bare !== undefined });
  const raw = parseOptions(spec, items, optionNames(kind.options), flagNames(kind.options), bare);
  return kind.fromOptions(readOptions(spec, kind.options, raw));
}

export function formatFieldSpec(f: FieldSpec): string {
  return fieldKind(f).format(f);
}
