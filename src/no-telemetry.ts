/**
 * Imported first by every odeness entry point (bin/odeness.js, workers/*.ts,
 * the library's index): switches off onnxruntime's telemetry before
 * onnxruntime loads. Its Linux library carries Microsoft's telemetry client
 * (mobile.events.data.microsoft.com), which looks that host up, keeps a device
 * id and writes files under ~/.cache; ORT_DISABLE_TELEMETRY=1 keeps it off.
 *
 * Set on process.env of the main thread, which is the process's environment:
 * worker threads read the same C environment, and job processes inherit it.
 */
process.env.ORT_DISABLE_TELEMETRY = '1';

export const TELEMETRY_ENV = { ORT_DISABLE_TELEMETRY: '1' } as const;
