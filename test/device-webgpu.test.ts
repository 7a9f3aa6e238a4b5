/**
 * Sessions on the WebGPU execution provider give the CPU provider's results: for every field kind under
 * a fixed-step and an adaptive solver, from the same weights, batch and seed, the loss and every gradient
 * agree to float32 tolerance, the solves take the same NFE and accepted/rejected steps, training logs the
 * same NFE and (to float32) the same losses, and evaluation rows are equal. A missing provider is a
 * one-line DeviceError naming what to install.
 *
 * Needs a Vulkan driver: CI installs Mesa's lavapipe (a software device, .ci/run). Without one this file
 * fails, loudly, in its first test: it never skips. The first runs compile shaders (seconds each on
 * lavapipe; programs are cached per process), so the graphs are tiny and few.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { Rng } from '../src/random.js';
import { initBackend } from '../src/engines/backend.js';
import { DeviceError } from '../src/errors.js';
import { evaluate } from '../src/onnx/evaluate.js';
import { memorySource } from '../src/onnx/source.js';
import type { Model } from '../src/models/types.js';
import { probeDevice } from '../src/onnx/runtime/adapters.js';
import type { Device } from '../src/onnx/runtime/device.js';
import { createSession, providers } from '../src/onnx/runtime/session.js';
import { GraphBuilder } from '../src/graph/ir/graph.js';
import { parseSolverSpec, type SolverSpec } from '../src/solvers/spec.js';
import { getTableau } from '../src/solvers/tableau.js';
import { AdaptiveSessions } from '../src/train/ort-adaptive.js';
import { train } from '../src/train/train.js';
import { compareGrads, configFor, ortLossAndGrads, randomBatch, randomModel } from './helpers/ort-compare.js';

// Dawn (WebGPU on Vulkan) wants a runtime directory; a CI shell may have none.
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(path.join(os.tmpdir(), 'odeness-xdg-'));

test.before(async () => {
  await initBackend('wasm');
  const why = await probeDevice('webgpu');
  const install = 'on Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers; see .ci/run';
  if (why) throw new Error(`these tests need a WebGPU adapter: ${why} (${install})`);
});

const FIELDS: [field: string, shape: number[], augment: number, classes: number][] = [
  ['mlp:width=4', [2], 0, 2],
  ['conv1d:channels=2', [3], 1, 2],
  ['conv2d:channels=2', [1, 3, 3], 0, 2],
];
const SOLVERS = ['euler:steps=2', 'adaptive_heun:1e-3'];
const BATCH = 4;

/** float32 agreement: the providers sum in different orders. */
const close = (a: number, b: number) => Math.abs(a - b) <= 2e-5 * Math.max(1, Math.abs(b));

function encode(model: Model, x: Float32Array, batch: number): Float32Array {
  const S = model.config.stateShape.reduce((a, b) => a * b, 1);
  const inW = x.length / batch;
  const z = new Float32Array(batch * S);
  for (let b = 0; b < batch; b++) z.set(x.subarray(b * inW, (b + 1) * inW), b * S);
  return z;
}

async function lossAndGrads(model: Model, spec: SolverSpec, x: Float32Array, y: Int32Array, device: Device) {
  if (spec.kind === 'fixed') return ortLossAndGrads(model, spec, x, y, 'float32', 0, device);
  const s = await AdaptiveSessions.create(model.config, getTableau(spec.method), y.length, { session: { device } });
  try {
    const params: Record<string, ort.Tensor> = {};
    for (const [name, p] of Object.entries(model.params)) {
      params[name] = new ort.Tensor('float32', Float32Array.from(p.data), [...p.shape]);
    }
    return await s.lossAndGrads(
      encode(model, x, y.length),
      BigInt64Array.from(y, (v) => BigInt(v)),
      spec,
      params,
    );
  } finally {
    await s.release();
  }
}

for (const [field, shape, augment, classes] of FIELDS) {
  for (const solver of SOLVERS) {
    const title = `webgpu = cpu for ${field} under ${solver}: loss, gradients, NFE, steps, training log, evaluation`;
    test.serial(title, async (t) => {
      const config = configFor(field, shape, augment, classes);
      const model = randomModel(config, 5);
      const spec = parseSolverSpec(solver);
      const { x, y } = randomBatch(config, BATCH, 2);

      const cpu = await lossAndGrads(model, spec, x, y, 'cpu');
      const gpu = await lossAndGrads(model, spec, x, y, 'webgpu');
      t.true(close(gpu.loss, cpu.loss), `loss ${gpu.loss} on webgpu vs ${cpu.loss} on cpu`);
      t.is(gpu.accuracy, cpu.accuracy);
      if ('stats' in cpu && 'stats' in gpu) t.deepEqual(gpu.stats, cpu.stats, 'NFE, accepted and rejected steps');
      const tolerance = (scale: number) => 1e-4 * Math.max(scale, 1e-3);
      compareGrads(gpu.grads, cpu.grads, tolerance, (m) => t.fail(m), `${field} ${solver}`);

      const split = { ...randomBatch(config, 2 * BATCH, 3), n: 2 * BATCH };
      const o = { solver: spec, iterations: 2, batchSize: BATCH, lr: 1e-2, engine: 'ort', logEvery: 1 } as const;
      const run = (device: Device) => train(model, split, { ...o, placement: true, rng: new Rng(1), device });
      const [a, b] = [await run('cpu'), await run('webgpu')];
      t.deepEqual(Object.keys(a.graphBuilds[0]!.placement!.nodes), ['CPUExecutionProvider']);
      const placed = b.graphBuilds[0]!.placement!;
      t.true(placed.nodes.WebGpuExecutionProvider! > 0, JSON.stringify(placed));
      t.deepEqual(
        b.log.map((e) => e.nfeForward),
        a.log.map((e) => e.nfeForward),
        'NFE per iteration',
      );
      b.log.forEach((e, i) => {
        t.true(close(e.loss, a.log[i]!.loss), `iteration ${e.iteration}: loss ${e.loss} vs ${a.log[i]!.loss}`);
      });

      const specs = [spec, parseSolverSpec(spec.kind === 'fixed' ? 'euler:steps=3' : 'adaptive_heun:1e-4')];
      const rows = async (device: Device) => {
        const source = await memorySource(a.model, {}, { device });
        const got = await evaluate(source, split, specs).finally(() => source.release());
        return got.map((r) => ({ spec: r.spec, accuracy: r.accuracy, nfe: r.nfe }));
      };
      t.deepEqual(await rows('webgpu'), await rows('cpu'), 'evaluation rows');
    });
  }
}

test.serial('a missing provider is a one-line DeviceError naming what to install', async (t) => {
  const b = new GraphBuilder({ name: 'p' });
  b.input('x', 'float32', [1, 2]);
  b.op('Relu', ['x'], {}, 'y');
  b.output('y', 'float32', [1, 2]);
  // onnxruntime-node's npm package ships without the CUDA provider (its install script downloads it).
  const cuda = providers().find((p) => p.name === 'cuda')!;
  t.false(cuda.present, 'this test expects onnxruntime-node without its CUDA provider');
  const e = await t.throwsAsync(createSession(b.toBytes(), { device: 'cuda' }), { instanceOf: DeviceError });
  t.regex(e!.message, /^device cuda: .*CUDA 12 and cuDNN 9.*npm rebuild onnxruntime-node --ignore-scripts=false/);
  t.false(e!.message.includes('\n'));
});

test.serial('no adapter: the CLI says so in one line naming the Vulkan driver, without a stack trace', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'odeness-noadapter-'));
  // A Vulkan loader pointed at no driver finds no adapter, as on a machine without one.
  const none = path.join(out, 'none.json');
  const env = { ...process.env, VK_ICD_FILENAMES: none, VK_DRIVER_FILES: none };
  const args = ['train', '--dataset', 'spheres:dupont2019:dim=2,n=16', '--solver', 'euler:steps=1'];
  args.push('--iterations', '1');
  args.push('--batch-size', '4', '--out', path.join(out, 'm'), '--device', 'webgpu');
  const r = spawnSync(process.execPath, ['bin/odeness.js', ...args], { env, encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 1, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('odeness: error:'));
  t.is(errors.length, 1, r.stderr);
  t.regex(errors[0]!, /^odeness: error: device webgpu: no WebGPU adapter found .*Vulkan driver.*lavapipe/);
  // (Dawn logs its own native Vulkan failure, "at CheckVkSuccessImpl (…cpp:106)", above ours.)
  t.notRegex(r.stderr, /^\s+at .*(\.js|\.ts|node:)/m, 'no JavaScript stack trace');
});
