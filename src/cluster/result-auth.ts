/**
 * Authenticated results and events, when a cluster signs its jobs (the
 * shared --job-key-file): a worker seals each result it stores with an
 * HMAC-SHA256 over the whole message — job id and job, attempt, status,
 * metrics, error, and its bundle's object-store id (or the bundle inline), size and SHA-256 digest —
 * and each start/progress event and alive notice (refusals.ts) with one over
 * it and its send time.
 * The coordinator takes only sealed results (an unauthenticated `done` from
 * someone holding only the NATS credentials is refused), checks the bundle it
 * downloads against the sealed digest, and ignores unsealed or replayed
 * events and alive notices (each worker's send times must increase).
 *
 * Keys are derived from the job key per purpose, so a job signature is never
 * a valid result seal and the other way round. The MAC is computed over a
 * canonical text of the message as the coordinator decodes it (the worker
 * round-trips its message through the codec first), so both sides see the
 * same bytes whatever the encoder's key order or number types.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeEventMessage, decodeResultMessage, encode } from './codec.js';
import type { EventMessage, ResultMessage } from './protocol.js';
import type { AliveNotice } from './refusals.js';

const subKey = (key: Buffer, purpose: string) =>
  createHmac('sha256', key).update(`odeness ${purpose} seal v1`).digest();

/** A canonical text of any decoded message: sorted keys, typed arrays as arrays, non-finite numbers by name. */
export function sealText(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : `"${String(v)}"`;
  if (typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (ArrayBuffer.isView(v)) return sealText(Array.from(v as unknown as ArrayLike<number>));
  if (Array.isArray(v)) return '[' + v.map(sealText).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return (
      '{' +
      Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${sealText(o[k])}`)
        .join(',') +
      '}'
    );
  }
  return JSON.stringify(String(v));
}

function mac(key: Buffer, purpose: string, msg: { mac?: string; bundleData?: Uint8Array }): string {
  // An inline bundle is sealed through its digest and size (checked against its bytes when it is taken).
  const { mac: _ignored, bundleData: _sealedByDigest, ...rest } = msg;
  return createHmac('sha256', subKey(key, purpose)).update(sealText(rest)).digest('hex');
}

function macMatches(key: Buffer, purpose: string, msg: { mac?: string }): boolean {
  if (msg.mac === undefined) return false;
  const want = Buffer.from(mac(key, purpose, msg), 'hex');
  const got = Buffer.from(msg.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** `msg` as the coordinator will decode it, sealed. */
export function sealResult(key: Buffer, msg: ResultMessage): ResultMessage {
  const decoded = decodeResultMessage(encode(msg));
  return { ...decoded, mac: mac(key, 'result', decoded) };
}

/** Whether a decoded result carries a valid seal (and, for a done result, its bundle's id, size and digest). */
export function resultAuthentic(key: Buffer, msg: ResultMessage): boolean {
  if (
    msg.result.status === 'done' &&
    (msg.bundleDigest === undefined ||
      msg.bundleBytes === undefined ||
      (msg.bundleNuid === undefined && msg.bundleData === undefined))
  )
    return false;
  return macMatches(key, 'result', msg);
}

export function sealEvent(key: Buffer, ev: EventMessage): EventMessage {
  const decoded = decodeEventMessage(encode(ev));
  return { ...decoded, mac: mac(key, 'event', decoded) };
}

export function eventAuthentic(key: Buffer, ev: EventMessage): boolean {
  return ev.at !== undefined && macMatches(key, 'event', ev);
}

export const sealAlive = (key: Buffer, n: AliveNotice): AliveNotice => ({ ...n, mac: mac(key, 'alive', n) });

export const aliveAuthentic = (key: Buffer, n: AliveNotice): boolean => macMatches(key, 'alive', n);
