/**
 * The initial states `odeness solve --z0 FILE` reads: a JSON array of states,
 * each an array of finite numbers storable as float32 (the field runs in
 * float32). Bounded so a file cannot ask for more than a solve can hold.
 */
import * as z from 'zod';

export const Z0_LIMITS = { states: 1_000_000, values: 1_000_000 } as const;

const FLOAT32_MAX = 3.4028234663852886e38;

const value = z
  .number({ error: 'expected a finite number' })
  .refine((v) => Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX, {
    error: 'expected a finite number within float32 range (|v| ≤ 3.4e38)',
  });

const state = z
  .array(value, { error: 'expected a state: an array of numbers' })
  .min(1, { error: 'expected a non-empty state' })
  .max(Z0_LIMITS.values, { error: `expected at most ${Z0_LIMITS.values} values per state` });

export const Z0FileSchema = z
  .array(state, { error: 'expected a non-empty array of states (number[][])' })
  .min(1, { error: 'expected a non-empty array of states (number[][])' })
  .max(Z0_LIMITS.states, { error: `expected at most ${Z0_LIMITS.states} states` })
  .refine((rows) => rows.every((r) => r.length === rows[0]!.length), { error: 'expected states of one length' });

export type Z0File = z.output<typeof Z0FileSchema>;
