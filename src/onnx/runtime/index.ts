/**
 * onnxruntime as odeness uses it: the one session factory (session.ts), devices (device.ts), the keyed
 * session cache its callers own (cache.ts), adapters and `auto` (adapters.ts), node placement (placement.ts).
 */
export { createSession, providers, type SessionOptions } from './session.js';
export { DEFAULT_DEVICE, DEVICE_CHOICES, parseDevice, isDeviceChoice } from './device.js';
export type { Device, DeviceChoice } from './device.js';
export { SessionCache, type Lease, type Releasable } from './cache.js';
export { probeDevice, resolveDevice, vulkanAdapters, type Adapter, type AdapterList } from './adapters.js';
export { addPlacements, placedSession, type Placement } from './placement.js';
