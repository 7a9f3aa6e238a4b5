/**
 * Picks the tfjs backend at start-up: a native binding when one loads
 * (tfjs-node-gpu, tfjs-node), else WebAssembly from node_modules (no network),
 * else the pure-JS cpu backend. `--backend` / ODENESS_BACKEND override it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../errors.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** tfjs backend name in use: tensorflow | wasm | cpu. */
  readonly name: string;
  /** Where it came from, e.g. "@tensorflow/tfjs-node". */
  readonly source: string;
  readonly threads: number;
}

const require = createRequire(import.meta.url);

async function tryNative(): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') && (await tf.setBackend('tensorflow'))) return pkg;
    } catch {
      // Not installed or libtensorflow missing: fall through to the next option.
    }
  }
  return undefined;
}

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dir + path.sep);
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function useCpu(): Promise<boolean> {
  const ok = await tf.setBackend('cpu');
  // The cpu backend greets its first tensor with a multi-line "Hi, looks like you are running
  // TensorFlow.js in Node.js…" banner on stderr; choosing cpu here is deliberate, so skip it.
  if (ok) (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return ok;
}

/**
 * The default tfjs matMul gradient multiplies with transpose flags, which the
 * wasm backend runs 15–20× slower than a plain product (shared/README fact 2);
 * materialising the transposes first made training steps 2–10× faster.
 */
function registerExplicitTransposeMatMulGrad(): void {
  const original = tf.getGradient(tf.BatchMatMul);
  tf.registerGradient({
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor2D, tf.Tensor2D];
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (a.rank !== 2 || b.rank !== 2) return original!.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor2D;
      const T = (x: tf.Tensor2D) => tf.transpose(x) as tf.Tensor2D;
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, T(b)), b: () => tf.matMul(T(a), g) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b), b: () => tf.matMul(T(g), a) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, T(g)), b: () => tf.matMul(a, g) };
      return { a: () => tf.matMul(T(b), T(g)), b: () => tf.matMul(T(g), T(a)) };
    },
  });
}

/**
 * tfjs-wasm has no Conv2DBackpropFilter kernel, so conv1d / conv2d fields
 * could not be trained on it. For stride-1, undilated NHWC convolutions the
 * filter gradient is a sum over kernel offsets of patchᵀ·dy products — plain
 * slices and matMuls that wasm runs well; the input gradient keeps tfjs's rule.
 */
function registerConvFilterGrad(): void {
  const original = tf.getGradient(tf.Conv2D)!;
  tf.registerGradient({
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const grads = original.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as {
        strides: number | number[];
        pad: 'same' | 'valid' | number;
        dilations: number | number[];
        dataFormat: string;
      };
      const ones = (v: number | number[]) => (Array.isArray(v) ? v.every((u) => u === 1) : v === 1);
      if (
        !ones(a.strides) ||
        !ones(a.dilations ?? 1) ||
        (a.dataFormat ?? 'NHWC') !== 'NHWC' ||
        typeof a.pad !== 'string'
      )
        return grads;
      return {
        x: grads.x!,
        filter: () => {
          const [fh, fw, ci, co] = filter.shape;
          const B = x.shape[0];
          const g = dy as tf.Tensor4D;
          const [, Ho, Wo] = g.shape;
          const top = a.pad === 'same' ? Math.floor((fh - 1) / 2) : 0;
          const left = a.pad === 'same' ? Math.floor((fw - 1) / 2) : 0;
          const xp =
            a.pad === 'same'
              ? tf.pad(x, [
                  [0, 0],
                  [top, fh - 1 - top],
                  [left, fw - 1 - left],
                  [0, 0],
                ])
              : x;
          const dyT = tf.transpose(tf.reshape(g, [B * Ho * Wo, co]));
          const taps: tf.Tensor[] = [];
          for (let i = 0; i < fh; i++) {
            for (let j = 0; j < fw; j++) {
              const patch = tf.reshape(tf.slice(xp, [0, i, j, 0], [B, Ho, Wo, ci]), [B * Ho * Wo, ci]);
              // (dyᵀ·patch)ᵀ = patchᵀ·dy without a transposed matMul (slow on wasm).
              taps.push(tf.transpose(tf.matMul(dyT as tf.Tensor2D, patch as tf.Tensor2D)));
            }
          }
          return tf.reshape(tf.stack(taps), [fh, fw, ci, co]);
        },
      };
    },
  });
}

let ready: Promise<BackendInfo> | undefined;

export function parseBackendChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if (!(BACKEND_CHOICES as readonly string[]).includes(v)) {
    throw new SpecError(`backend "${v}" is not one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return v as BackendChoice;
}

/** Initialise tfjs once per process / worker thread. */
export function initBackend(choice?: string): Promise<BackendInfo> {
  ready ??= (async () => {
    const want = parseBackendChoice(choice ?? process.env.ODENESS_BACKEND);
    let source: string | undefined;
    if (want === 'auto' || want === 'tensorflow') source = await tryNative();
    if (!source && want === 'tensorflow')
      throw new SpecError('backend "tensorflow" requested but neither @tensorflow/tfjs-node nor -gpu could be loaded');
    if (!source && (want === 'auto' || want === 'wasm'))
      source = (await tryWasm()) ? '@tensorflow/tfjs-backend-wasm' : undefined;
    if (!source && want === 'wasm')
      throw new SpecError('backend "wasm" requested but @tensorflow/tfjs-backend-wasm could not be initialised');
    if (!source) {
      await useCpu();
      source = '@tensorflow/tfjs-backend-cpu';
    }
    await tf.ready();
    const name = tf.getBackend();
    if (name === 'wasm') {
      registerExplicitTransposeMatMulGrad();
      registerConvFilterGrad();
    }
    let threads = 1;
    if (name === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      threads = wasm.getThreadsCount?.() ?? 1;
    }
    return { name, source, threads };
  })();
  return ready;
}
