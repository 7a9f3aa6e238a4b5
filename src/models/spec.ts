/**
 * Field specs as used by the CLI and study files:
 *   mlp:width=<w>[,depth=<k>,act=<tanh|relu|softplus>,time]
 *   conv1d[:channels=32]   the paper's sphere field
 *   conv2d[:channels=128]  the paper's image field
 */
import { SpecError } from '../errors.js';
import type { Activation, FieldSpec } from './types.js';

const ACTIVATIONS: readonly Activation[] = ['tanh', 'relu', 'softplus'];
export const FIELD_KINDS = ['mlp', 'conv1d', 'conv2d'] as const;

function parseOptions(spec: string, rest: string, allowed: readonly string[], flags: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (rest.trim() === '') return out;
  for (const part of rest.split(',').map((p) => p.trim())) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 && !flags.includes(key)) {
      throw new SpecError(`field spec "${spec}": "${part}" is not key=value; expected options ${[...allowed, ...flags].join(', ')}`);
    }
    if (!allowed.includes(key) && !flags.includes(key)) {
      throw new SpecError(`field spec "${spec}": unknown option "${key}"; expected ${[...allowed, ...flags].join(', ')}`);
    }
    if (out.has(key)) throw new SpecError(`field spec "${spec}": ${key} given twice`);
    out.set(key, eq < 0 ? 'true' : part.slice(eq + 1).trim());
  }
  return out;
}

function positiveInt(spec: string, key: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new SpecError(`field spec "${spec}": ${key} must be a positive integer, got "${raw}"`);
  return v;
}

export function parseFieldSpec(spec: string): FieldSpec {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
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
