/**
 * Field spec options with bounds: each field kind declares its options once
 * (name, type, range, default) and gets parsing, defaults and one-line errors
 * from here — `mlp:width=1000000` is a SpecError, not a failed allocation.
 */
import { SpecError } from '../../errors.js';
import { isPositiveInt } from '../../formats/index.js';

export type OptionDef =
  | {
      readonly name: string;
      readonly type: 'int';
      readonly min: number;
      readonly max: number;
      readonly default: number;
    }
  | { readonly name: string; readonly type: 'enum'; readonly values: readonly string[]; readonly default: string }
  | { readonly name: string; readonly type: 'flag' }
  /** A file path: the spec's first bare item (`onnx:my_field.onnx`) or `name=<path>`; required. */
  | { readonly name: string; readonly type: 'path' }
  /** Names joined by '|' (`freeze=a|b`); empty by default. */
  | { readonly name: string; readonly type: 'list' }
  /** A free string (a content hash); '' by default. */
  | { readonly name: string; readonly type: 'text' };

export type OptionValues = Readonly<Record<string, number | string | boolean | readonly string[]>>;

/** Typed option values from the tokenized `key=value` / `flag` pairs of a spec string. */
export function readOptions(spec: string, defs: readonly OptionDef[], raw: ReadonlyMap<string, string>): OptionValues {
  const out: Record<string, number | string | boolean | readonly string[]> = {};
  for (const d of defs) {
    const v = raw.get(d.name);
    switch (d.type) {
      case 'flag':
        out[d.name] = v !== undefined;
        break;
      case 'path':
        if (v === undefined || v.trim() === '') throw new SpecError(`field spec "${spec}": the ${d.name} is missing`);
        out[d.name] = v.trim();
        break;
      case 'list':
        out[d.name] =
          v === undefined
            ? []
            : v
                .split('|')
                .map((x) => x.trim())
                .filter((x) => x !== '');
        break;
      case 'text':
        out[d.name] = v?.trim() ?? '';
        break;
      case 'enum':
        if (v !== undefined && !d.values.includes(v))
          throw new SpecError(`field spec "${spec}": ${d.name} must be one of ${d.values.join(', ')}, got "${v}"`);
        out[d.name] = v ?? d.default;
        break;
      case 'int': {
        if (v === undefined) {
          out[d.name] = d.default;
          break;
        }
        const n = v.trim() === '' ? NaN : Number(v);
        if (!isPositiveInt(n))
          throw new SpecError(`field spec "${spec}": ${d.name} must be a positive integer, got "${v}"`);
        if (n < d.min || n > d.max)
          throw new SpecError(`field spec "${spec}": ${d.name} must be between ${d.min} and ${d.max}, got ${v}`);
        out[d.name] = n;
        break;
      }
    }
  }
  return out;
}

export const optionNames = (defs: readonly OptionDef[]) => defs.filter((d) => d.type !== 'flag').map((d) => d.name);
/** The option a bare first item names (a path), if the kind has one. */
export const pathOption = (defs: readonly OptionDef[]) => defs.find((d) => d.type === 'path')?.name;
export const flagNames = (defs: readonly OptionDef[]) => defs.filter((d) => d.type === 'flag').map((d) => d.name);
