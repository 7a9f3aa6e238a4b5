/**
 * Building blocks shared by every format: the one `positiveInt`, finite
 * numbers, strict records that name the allowed keys, and the enums that more
 * than one format (and the CLI) use.
 *
 * Conventions for a format module (one file per format in src/formats/):
 *  - export the schema as `<Name>Schema` and its type as `type <Name> = z.output<typeof <Name>Schema>`;
 *  - records are `record({...})` (unknown keys are errors, naming the allowed keys);
 *  - every leaf carries its own wording of what is allowed (`{ error: 'expected …' }`),
 *    which `describeIssue` turns into `path: expected …, got <value>`;
 *  - sizes a reader allocates from are bounded (`.max(LIMIT)`), with the limit exported;
 *  - the module imports only zod and other format modules (formats are the bottom layer:
 *    any layer may import them; semantics from upper layers are passed in, see study-file.ts).
 */
import * as z from 'zod';

/** The training engines a job or `train --engine` may ask for ('auto' picks per configuration). */
export const ENGINE_CHOICES = ['auto', 'tfjs', 'ort'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];
export type EngineName = Exclude<EngineChoice, 'auto'>;
export const EngineChoiceSchema = z.enum(ENGINE_CHOICES, { error: `expected one of ${ENGINE_CHOICES.join(', ')}` });

/** Where onnxruntime sessions run (--device): `auto` is resolved on the machine that runs them. */
export const DEVICE_CHOICES = ['cpu', 'webgpu', 'cuda', 'auto'] as const;
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];
export type Device = Exclude<DeviceChoice, 'auto'>;
export const DEVICES = ['cpu', 'webgpu', 'cuda'] as const satisfies readonly Device[];
export const DeviceSchema = z.enum(DEVICES, { error: `expected one of ${DEVICES.join(', ')}` });
/** Devices a job may require (a job without one runs on the CPU). */
export const GPU_DEVICES = ['webgpu', 'cuda'] as const satisfies readonly Device[];
export const GpuDeviceSchema = z.enum(GPU_DEVICES, {
  error: `expected one of ${GPU_DEVICES.join(', ')} (absent: cpu)`,
});

/** The audits a study may request per job. */
export const AUDIT_KINDS = ['crossing', 'fan'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** How a job ended. */
export const JOB_STATUSES = ['done', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Is `v` an integer ≥ 1 (and a safe one)? The one definition; spec parsers and CLI flags use it too. */
export function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** A positive integer, optionally at most `max`. */
export function positiveInt(what = 'a positive integer', max?: number) {
  const expected = max === undefined ? `expected ${what}` : `expected ${what} (at most ${max})`;
  const s = z.number({ error: expected }).refine(isPositiveInt, { error: expected });
  return max === undefined ? s : s.refine((v) => v <= max, { error: expected });
}

/** A finite number (JSON has no NaN/Infinity; msgpack does, and they are rejected). */
export function finite(what = 'a finite number') {
  return z.number({ error: `expected ${what}` }).refine(Number.isFinite, { error: `expected ${what}` });
}

/** A finite number > 0, optionally at most `max`. */
export function positive(what = 'a positive number', max?: number) {
  const expected = `expected ${what}`;
  const s = finite(what).refine((v) => v > 0, { error: expected });
  return max === undefined ? s : s.refine((v) => v <= max, { error: expected });
}

/** A non-negative safe integer, optionally at most `max`. */
export function count(what = 'a non-negative integer', max?: number) {
  const expected = `expected ${what}`;
  return z
    .number({ error: expected })
    .refine((v) => Number.isSafeInteger(v) && v >= 0 && (max === undefined || v <= max), { error: expected });
}

export function str(what = 'a string', maxLength = 10_000) {
  return z
    .string({ error: `expected ${what}` })
    .max(maxLength, { error: `expected ${what} (at most ${maxLength} characters)` });
}

/**
 * A record whose keys are exactly `shape`'s (optional ones may be absent):
 * an unknown key is reported at its own path, with the allowed keys named.
 */
export function record<S extends z.core.$ZodLooseShape>(shape: S, what = 'a mapping (key: value)') {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown key "${iss.keys[0]}"; allowed keys: ${allowed}` : `expected ${what}`,
  });
}
