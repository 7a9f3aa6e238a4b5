/**
 * Field spec options with bounds: each field kind declares its options once
 * (name, type, range, default) and gets parsing, defaults and one-line errors
 * from here — `mlp:width=1000000` is a SpecError, not a failed allocation.
 */
import { SpecError } from '../../errors.js';
import { isPositiveInt } from '../../formats/index.js';

export type OptionDef =
  | { readonly name: string; readonly type: 'int'; readonly min: number; readonly max: number; readonly default: number }
  | { readonly name: string; readonly type: 'enum'; readonly values: readonly string[]; readonly default: string }
  | { readonly name: string; readonly type: 'flag' };

export type OptionValues = Readonly<Record<string, number | string | boolean>>;

/** Typed option values from the tokenized `key=value` / `flag` pairs of a spec string. */
export function readOptions(spec: string, defs: readonly OptionDef[], raw: ReadonlyMap<string, string>): OptionValues {
  const out: Record<string, number | string | boolean> = {};
  for (const d of defs) {
    const v = raw.get(d.name);
    switch (d.type) {
      case 'flag':
        out[d.name] = v !== undefined;
        break;
      case 'enum':
        if (v !== undefined && !d.values.includes(v)) throw new SpecError(`field spec "${spec}": ${d.name} must be one of ${d.values.join(', ')}, got "${v}"`);
        out[d.name] = v ?? d.default;
        break;
      case 'int': {
        if (v === undefined) {
          out[d.name] = d.default;
          break;
        }
        const n = v.trim() === '' ? NaN : Number(v);
        if (!isPositiveInt(n)) throw new SpecError(`field spec "${spec}": ${d.name} must be a positive integer, got "${v}"`);
        if (n < d.min || n > d.max) throw new SpecError(`field spec "${spec}": ${d.name} must be between ${d.min} and ${d.max}, got ${v}`);
        out[d.name] = n;
        break;
      }
    }
  }
  return out;
}

export const optionNames = (defs: readonly OptionDef[]) => defs.filter((d) => d.type !== 'flag').map((d) => d.name);
export const flagNames = (defs: readonly OptionDef[]) => defs.filter((d) => d.type === 'flag').map((d) => d.name);
