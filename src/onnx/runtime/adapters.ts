/**
 * What this machine can run sessions on: the execution providers onnxruntime-node has, the GPU adapters
 * Vulkan reports (`vulkaninfo --summary`, when installed: onnxruntime-node does not expose Dawn's adapter
 * list), a probe that creates and runs a tiny session on a device, and `auto` resolved from those.
 */
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../graph/ir/graph.js';
import { DEFAULT_DEVICE, type Device, type DeviceChoice } from './device.js';
import { createSession, firstLine, providers } from './session.js';

export interface Adapter {
  readonly name: string;
  /** The graphics API the adapter is reached through (WebGPU's Dawn uses Vulkan on Linux). */
  readonly backend: string;
  readonly kind: 'hardware' | 'software';
  readonly driver?: string;
}

export interface AdapterList {
  readonly adapters: Adapter[];
  /** Why the list could not be read (vulkaninfo missing or failing), else undefined. */
  readonly error?: string;
}

/** Parse the Devices part of `vulkaninfo --summary`. */
export function parseVulkanSummary(text: string): Adapter[] {
  const blocks = text.split(/\n(?=GPU\d+:)/).filter((b) => /^GPU\d+:/.test(b));
  return blocks.map((b) => {
    const field = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*(.+)$`, 'm').exec(b)?.[1]?.trim();
    const type = field('deviceType') ?? '';
    const driver = field('driverInfo') ?? field('driverName');
    return {
      name: field('deviceName') ?? 'unknown',
      backend: 'vulkan',
      kind: /TYPE_CPU/.test(type) ? 'software' : 'hardware',
      ...(driver ? { driver } : {}),
    };
  });
}

export async function vulkanAdapters(): Promise<AdapterList> {
  try {
    const { stdout } = await promisify(execFile)('vulkaninfo', ['--summary'], { timeout: 20_000, maxBuffer: 1 << 22 });
    return { adapters: parseVulkanSummary(stdout) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const failed = `vulkaninfo failed: ${firstLine(String((e as Error).message))}`;
    const error = code === 'ENOENT' ? 'vulkaninfo not found (package vulkan-tools)' : failed;
    return { adapters: [], error };
  }
}

/** Creates and runs a one-node session on the device: undefined when it works, else the one-line reason. */
export async function probeDevice(device: Device): Promise<string | undefined> {
  const b = new GraphBuilder({ name: 'device_probe' });
  b.input('x', 'float32', [1, 4]);
  b.op('Relu', ['x'], {}, 'y');
  b.output('y', 'float32', [1, 4]);
  try {
    const session = await createSession(b.toBytes(), { device });
    try {
      const y = (await session.run({ x: new ort.Tensor('float32', Float32Array.of(-1, 2, -3, 4), [1, 4]) })).y!.data;
      return y[1] === 2 && y[0] === 0 ? undefined : `device ${device}: a probe session returned wrong values`;
    } finally {
      await session.release();
    }
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * `auto`: cuda where its provider works, else webgpu where Vulkan reports a hardware adapter and a probe
 * session runs, else the CPU (a software adapter such as lavapipe is slower than the CPU provider).
 */
export async function resolveDevice(choice: DeviceChoice | undefined): Promise<Device> {
  if (choice === undefined) return DEFAULT_DEVICE;
  if (choice !== 'auto') return choice;
  const present = new Set(
    providers()
      .filter((p) => p.present)
      .map((p) => p.name),
  );
  if (present.has('cuda') && (await probeDevice('cuda')) === undefined) return 'cuda';
  if (present.has('webgpu')) {
    const { adapters } = await vulkanAdapters();
    if (adapters.some((a) => a.kind === 'hardware') && (await probeDevice('webgpu')) === undefined) return 'webgpu';
  }
  return 'cpu';
}

/** What a device is on this machine, for results: the CPU's model, the Vulkan adapter, or the CUDA GPU. */
export async function deviceAdapter(device: Device): Promise<string | undefined> {
  if (device === 'cpu') return cpus()[0]?.model.trim() || undefined;
  if (device === 'webgpu') {
    const { adapters } = await vulkanAdapters();
    const best = adapters.find((a) => a.kind === 'hardware') ?? adapters[0];
    return best ? `${best.name} (${best.backend}, ${best.kind})` : undefined;
  }
  try {
    const query = ['--query-gpu=name', '--format=csv,noheader'];
    const { stdout } = await promisify(execFile)('nvidia-smi', query, { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface RuntimeReport {
  /** Execution providers this onnxruntime-node knows, and whether each one's library is here. */
  readonly providers: { name: string; present: boolean }[];
  /** GPU adapters Vulkan reports (what WebGPU runs on, on Linux). */
  readonly adapters: Adapter[];
  readonly adapterError?: string;
  /** Each device: `ok` when a probe session ran on it, else why not (one line, naming what to install). */
  readonly devices: Record<Device, string>;
  /** What `--device auto` picks here. */
  readonly auto: Device;
}

/** What `odeness info` shows about onnxruntime: providers, adapters, and which devices work. */
export async function runtimeReport(): Promise<RuntimeReport> {
  const { adapters, error } = await vulkanAdapters();
  const devices = {} as Record<Device, string>;
  for (const d of ['cpu', 'webgpu', 'cuda'] as const) devices[d] = (await probeDevice(d)) ?? 'ok';
  const hardware = adapters.some((a) => a.kind === 'hardware');
  const auto: Device = devices.cuda === 'ok' ? 'cuda' : devices.webgpu === 'ok' && hardware ? 'webgpu' : 'cpu';
  return { providers: providers(), adapters, ...(error ? { adapterError: error } : {}), devices, auto };
}
