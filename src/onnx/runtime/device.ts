/**
 * Devices sessions run on (--device, a study's `device` key, a job's `device`): the values, their parsing,
 * and the onnxruntime execution provider behind each. `cpu` is the default everywhere; `auto` resolves
 * once per call site to the best device present (see resolveDevice in session.ts).
 */
import { SpecError } from '../../errors.js';
import { DEVICE_CHOICES, type Device, type DeviceChoice } from '../../formats/common.js';

export { DEVICE_CHOICES, type Device, type DeviceChoice } from '../../formats/common.js';
export const DEFAULT_DEVICE: Device = 'cpu';

export function isDeviceChoice(v: unknown): v is DeviceChoice {
  return typeof v === 'string' && (DEVICE_CHOICES as readonly string[]).includes(v);
}

/** A device name from a flag or a file; `where` names it in the error ("--device", "study.yaml: device"). */
export function parseDevice(value: string | undefined, where = '--device'): DeviceChoice {
  const v = (value ?? DEFAULT_DEVICE).trim() || DEFAULT_DEVICE;
  if (!isDeviceChoice(v)) throw new SpecError(`${where}: device "${v}" is not one of ${DEVICE_CHOICES.join(', ')}`);
  return v;
}

/** onnxruntime's execution provider name for a device (the CPU provider is always appended by onnxruntime). */
export function executionProvider(device: Device): string {
  return device;
}

/** What to install for a device, for the one-line errors. */
export const DEVICE_REMEDY: Record<Exclude<Device, 'cpu'>, string> = {
  webgpu: "install a Vulkan driver for the GPU (Mesa's lavapipe, package mesa-vulkan-drivers, gives a software device)",
  cuda:
    'install CUDA 12 and cuDNN 9, then fetch the provider with `npm rebuild onnxruntime-node ' +
    '--ignore-scripts=false`',
};
