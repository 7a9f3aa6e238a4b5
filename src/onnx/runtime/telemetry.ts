/**
 * Turns onnxruntime's telemetry off before its native library creates its environment (the first session).
 * Imported first by the session factory (session.ts), the one module sessions come from; a value the user
 * set is kept. onnxruntime 1.30's Linux library reads ORT_DISABLE_TELEMETRY (the name is in its binary).
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';
export {};
