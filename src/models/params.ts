/**
 * Parameter shapes for a model configuration (the field kind's own, then the
 * head; layout documented in types.ts) and seeded Kaiming-normal
 * initialisation with zero biases.
 */
import { ShapeError, SpecError } from '../errors.js';
import { fieldKind, type ParamShape } from './fields/index.js';
import { stateSize, type ModelConfig, type Params } from './types.js';

export type { ParamShape };

/** More parameters than this (2 GiB of float32) is a configuration error, not an allocation to attempt. */
export const MAX_PARAMS = 2 ** 29;

export function paramShapes(config: ModelConfig): ParamShape[] {
  const kind = fieldKind(config.field);
  if (kind.checkState) kind.checkState(config.field, config.stateShape);
  else if (config.stateShape.length !== kind.stateRank) {
    const want = kind.stateRank === 1 ? 'a vector state' : 'an image state [C, H, W]';
    throw new ShapeError(`a ${kind.kind} field needs ${want}, got state shape [${config.stateShape.join(', ')}]`);
  }
  const S = stateSize(config);
  const out = [...kind.params(config.field, config.stateShape)];
  out.push(
    { name: 'head.weight', shape: [S, config.classes], fanIn: S },
    { name: 'head.bias', shape: [config.classes], fanIn: 0 },
  );
  const total = out.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  if (total > MAX_PARAMS) {
    throw new SpecError(
      `field "${kind.format(config.field)}" on state [${config.stateShape.join(', ')}] has ${total} parameters; at ` +
        `most ${MAX_PARAMS} are supported`,
    );
  }
  return out;
}

/**
 * Kaiming-normal weights (std = √(2 / fan_in)), zero biases, from the given normal stream; a kind's own initial
 * values first.
 */
export function initParams(config: ModelConfig, normal: () => number): Params {
  const params: Params = {};
  const given = fieldKind(config.field).initial?.(config.field) ?? {};
  for (const p of paramShapes(config)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (given[p.name]) data.set(given[p.name]!);
    else if (p.fanIn > 0) {
      const std = Math.sqrt(2 / p.fanIn);
      for (let i = 0; i < n; i++) data[i] = std * normal();
    }
    params[p.name] = { shape: [...p.shape], data };
  }
  return params;
}

/** Check that params match the configuration exactly (names and shapes). */
export function checkParams(config: ModelConfig, params: Params, where: string): void {
  const expected = paramShapes(config);
  for (const p of expected) {
    const got = params[p.name];
    if (!got) throw new ShapeError(`${where}: parameter ${p.name} is missing`);
    if (got.shape.length !== p.shape.length || got.shape.some((s, i) => s !== p.shape[i])) {
      throw new ShapeError(
        `${where}: parameter ${p.name} has shape [${got.shape.join(', ')}], expected [${p.shape.join(', ')}]`,
      );
    }
    if (got.data.length !== p.shape.reduce((a, b) => a * b, 1))
      throw new ShapeError(`${where}: parameter ${p.name} has ${got.data.length} values`);
  }
  const names = new Set(expected.map((p) => p.name));
  for (const name of Object.keys(params))
    if (!names.has(name)) throw new ShapeError(`${where}: unexpected parameter ${name}`);
}
