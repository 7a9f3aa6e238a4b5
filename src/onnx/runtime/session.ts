/**
 * The session factory: every onnxruntime session odeness creates comes from createSession, and this is
 * the one file that writes onnxruntime's session options (threads, execution providers, optimisation,
 * logging, profiling). A device other than the CPU becomes an execution provider; when the provider is
 * missing, finds no adapter or fails to create the session, the error is one line (DeviceError) naming
 * what to install.
 */
import './telemetry.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DeviceError } from '../../errors.js';
import { DEFAULT_DEVICE, DEVICE_REMEDY, executionProvider, type Device } from './device.js';

export interface SessionOptions {
  /** onnxruntime intra-op threads (default 1: parallelism comes from running many jobs). */
  readonly threads?: number;
  /** Where the session runs (default cpu; `auto` is resolved before, by resolveDevice). */
  readonly device?: Device;
  /** Profile file prefix: onnxruntime writes the profile of the runs up to session.endProfiling() there. */
  readonly profilePrefix?: string;
}

/** onnxruntime's session options for these settings: the only place they are written. */
function ortOptions(o: SessionOptions): ort.InferenceSession.SessionOptions {
  const device = o.device ?? DEFAULT_DEVICE;
  return {
    intraOpNumThreads: o.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(device !== 'cpu' ? { executionProviders: [executionProvider(device)] } : {}),
    ...(o.profilePrefix !== undefined ? { enableProfiling: true, profileFilePrefix: o.profilePrefix } : {}),
  };
}

export function firstLine(text: string, max = 300): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** The directory of onnxruntime-node's native libraries (where a downloaded CUDA provider lands). */
export function ortLibraryDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  return path.join(path.dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** The providers this onnxruntime-node lists, and whether each one's library is present here. */
export function providers(): { name: string; present: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({
    name: b.name,
    present: b.bundled || existsSync(path.join(ortLibraryDir(), `libonnxruntime_providers_${b.name}.so`)),
  }));
}

/** A device's missing provider as a one-line error, checked before onnxruntime tries (and logs) it. */
function checkProvider(device: Device): void {
  if (device === 'cpu') return;
  const p = providers().find((b) => b.name === device);
  if (p?.present) return;
  const cudaLib = `no libonnxruntime_providers_cuda.so in ${ortLibraryDir()}`;
  const what = device === 'cuda' ? `CUDA provider (${cudaLib})` : `${device} provider`;
  throw new DeviceError(`device ${device}: this onnxruntime-node has no ${what}; ${DEVICE_REMEDY[device]}`);
}

/** Errors of the model itself (the caller names the file), not of the device. */
const MODEL_ERROR =
  /protobuf|ModelProto|Load model|INVALID_GRAPH|INVALID_ARGUMENT|NOT_IMPLEMENTED|Type Error|ShapeInferenceError/i;

function deviceFailure(device: Exclude<Device, 'cpu'>, e: unknown): DeviceError {
  const full = e instanceof Error ? e.message : String(e);
  // onnxruntime's messages start with its source location; the reason is at the end.
  const adapter = /Failed to get a WebGPU adapter[^\n]*/.exec(full)?.[0];
  const reason = adapter ?? full.replace(/^\/onnxruntime_src\/\S+\s+/, '');
  const msg = firstLine(reason);
  const detail = /adapter/i.test(msg)
    ? `no WebGPU adapter found (${msg})`
    : /shared library|libcu|cudnn|CUDA/i.test(msg)
      ? `onnxruntime cannot load the CUDA provider or its libraries (${msg})`
      : `onnxruntime could not create a session on it (${msg})`;
  return new DeviceError(`device ${device}: ${detail}; ${DEVICE_REMEDY[device]}`, { cause: e });
}

/** One onnxruntime session from ONNX bytes on a device. */
export async function createSession(bytes: Uint8Array, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  const device = o.device ?? DEFAULT_DEVICE;
  checkProvider(device);
  try {
    return await ort.InferenceSession.create(bytes, ortOptions(o));
  } catch (e) {
    if (device === 'cpu' || MODEL_ERROR.test(e instanceof Error ? e.message : String(e))) throw e;
    throw deviceFailure(device, e);
  }
}
