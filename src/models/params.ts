/**
 * Parameter shapes for a model configuration (the layout documented in
 * types.ts) and seeded Kaiming-normal initialisation with zero biases.
 */
import { ShapeError } from '../errors.js';
import { stateSize, type ModelConfig, type Params } from './types.js';

export interface ParamShape {
  readonly name: string;
  readonly shape: readonly number[];
  /** Fan-in for Kaiming init; 0 marks a bias (initialised to zero). */
  readonly fanIn: number;
}

export function paramShapes(config: ModelConfig): ParamShape[] {
  const f = config.field;
  const S = stateSize(config);
  const out: ParamShape[] = [];
  const dense = (name: string, i: number, o: number) => {
    out.push({ name: `${name}.weight`, shape: [i, o], fanIn: i }, { name: `${name}.bias`, shape: [o], fanIn: 0 });
  };
  const conv = (name: string, o: number, i: number, kernel: number[]) => {
    const k = kernel.reduce((a, b) => a * b, 1);
    out.push({ name: `${name}.weight`, shape: [o, i, ...kernel], fanIn: i * k }, { name: `${name}.bias`, shape: [o], fanIn: 0 });
  };
  switch (f.kind) {
    case 'mlp': {
      if (config.stateShape.length !== 1) throw new ShapeError(`an mlp field needs a vector state, got state shape [${config.stateShape.join(', ')}]`);
      let width = S + (f.time ? 1 : 0);
      for (let l = 0; l < f.depth; l++) {
        dense(`field.${l}`, width, f.width);
        width = f.width;
      }
      dense(`field.${f.depth}`, width, S);
      break;
    }
    case 'conv1d':
      if (config.stateShape.length !== 1) throw new ShapeError(`a conv1d field needs a vector state, got state shape [${config.stateShape.join(', ')}]`);
      conv('field.0', f.channels, 1, [1]);
      conv('field.1', f.channels, f.channels, [3]);
      conv('field.2', 1, f.channels, [1]);
      break;
    case 'conv2d': {
      if (config.stateShape.length !== 3) throw new ShapeError(`a conv2d field needs an image state [C, H, W], got [${config.stateShape.join(', ')}]`);
      const C = config.stateShape[0]!;
      conv('field.0', f.channels, C, [1, 1]);
      conv('field.1', f.channels, f.channels, [3, 3]);
      conv('field.2', C, f.channels, [1, 1]);
      break;
    }
  }
  dense('head', S, config.classes);
  return out;
}

/** Kaiming-normal weights (std = √(2 / fan_in)), zero biases, from the given normal stream. */
export function initParams(config: ModelConfig, normal: () => number): Params {
  const params: Params = {};
  for (const p of paramShapes(config)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.fanIn > 0) {
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
      throw new ShapeError(`${where}: parameter ${p.name} has shape [${got.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    }
    if (got.data.length !== p.shape.reduce((a, b) => a * b, 1)) throw new ShapeError(`${where}: parameter ${p.name} has ${got.data.length} values`);
  }
  const names = new Set(expected.map((p) => p.name));
  for (const name of Object.keys(params)) if (!names.has(name)) throw new ShapeError(`${where}: unexpected parameter ${name}`);
}
