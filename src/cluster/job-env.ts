/**
 * What a job process may see of its worker's environment: a job is untrusted
 * code's input, so the worker's NATS credentials (NATS_USER, NATS_PASSWORD,
 * NATS_TOKEN, the *_FILE variants, anything named like a secret) never reach
 * it — not in its environment and not in its arguments (job processes get
 * none). onnxruntime's telemetry stays off there (see src/no-telemetry.ts).
 */
import { TELEMETRY_ENV } from '../no-telemetry.js';

/** Names of variables that carry secrets: NATS_*, and *PASSWORD*, *TOKEN*, *SECRET*, *CREDS*, *_KEY. */
const SECRET_NAME = /^NATS_|PASSWORD|TOKEN|SECRET|CREDS|CREDENTIAL|_KEY$|^KEY$/i;

export function jobProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!SECRET_NAME.test(k)) out[k] = v;
  return { ...out, ...TELEMETRY_ENV };
}
