/**
 * Field specs as used by the CLI and study files:
 *   mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time]
 *   conv1d[:channels=32]   the paper's sphere field
 *   conv2d[:channels=128]  the paper's image field
 */
import { SpecError } from '../errors.js';
import { isPositiveInt, tokenizeSpec, type SpecToken } from '../formats/index.js';
import type { Activation, FieldSpec } from './types.js';

const ACTIVATIONS: readonly Activation[] = ['tanh', 'relu', 'softplus'];
export const FIELD_KINDS = ['mlp', 'conv1d', 'conv2d'] as const;

function parseOptions(spec: string, items: readonly SpecToken[], allowed: readonly string[], flags: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of items) {
    const key = item.key ?? item.value;
    if (item.key === undefined && !flags.includes(key)) {
      throw new SpecError(`field spec "${spec}": "${item.text.trim()}" is not key=value; expected options ${[...allowed, ...flags].join(', ')}`);
    }
    if (!allowed.includes(key) && !flags.includes(key)) {
      throw new SpecError(`field spec "${spec}": unknown option "${key}"; expected ${[...allowed, ...flags].join(', ')}`);
    }
    if (out.has(key)) throw new SpecError(`field spec "${spec}": ${key} given twice`);
    out.set(key, item.key === undefined ? 'true' : item.value);
  }
  return out;
}

function positiveInt(spec: string, key: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = raw.trim() === '' ? NaN : Number(raw);
  if (!isPositiveInt(v)) throw new SpecError(`field spec "${spec}": ${key} must be a positive integer, got "${raw}"`);
  return v;
}

export function parseFieldSpec(spec: string): FieldSpec {
  const { head: kind, items: rest } = tokenizeSpec(spec);
  switch (kind) {
    case 'mlp': {
      const o = parseOptions(spec, rest, ['width', 'depth', 'act'], ['time']);
      const act = (o.get('act') ?? 'tanh') as Activation;
      if (!ACTIVATIONS.includes(act)) throw new SpecError(`field spec "${spec}": act must be one of ${ACTIVATIONS.join(', ')}, got "${act}"`);
      return { kind: 'mlp', width: positiveInt(spec, 'width', o.get('width'), 32), depth: positiveInt(spec, 'depth', o.get('depth'), 2), activation: act, time: o.has('time') };
    }
    case 'conv1d':
    case 'conv2d': {
      const o = parseOptions(spec, rest, ['channels'], []);
      return { kind, channels: positiveInt(spec, 'channels', o.get('channels'), kind === 'conv1d' ? 32 : 128) };
    }
    default:
      throw new SpecError(`field spec "${spec}": unknown field "${kind}"; expected one of ${FIELD_KINDS.join(', ')}`);
  }
}

export function formatFieldSpec(f: FieldSpec): string {
  if (f.kind === 'mlp') return `mlp:width=${f.width},depth=${f.depth},act=${f.activation}${f.time ? ',time' : ''}`;
  return `${f.kind}:channels=${f.channels}`;
}
