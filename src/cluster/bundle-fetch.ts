/**
 * Downloading a bundle from the object store as untrusted input (a
 * worker-level attacker can write object metadata and chunks). Before
 * anything is fetched:
 *   - with an authenticated result (result-auth.ts) the object's chunks
 *     subject, size and digest are the sealed ones and the object store's
 *     metadata is not read at all;
 *   - otherwise the metadata is read without following anything: a link
 *     (to this or another bucket) is refused, never followed (following one
 *     would make the client create the linked bucket), a deleted object is
 *     missing, and its size, chunk count and digest must be well-formed;
 *   - the size must fit the coordinator's per-bundle cap (--max-bundle-mb).
 * Then the chunks are read from their subject (none stored: refused at
 * once), at most the announced bytes, and the SHA-256 of what arrived must
 * match. A small bundle carried inside its result (inlineBundle) gets the
 * same size, cap and digest checks. Every refusal
 * is a BundleRefused, recorded as the job's failure at once — never retried.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, JsMsg, OrderedPushConsumerOptions } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { BUNDLES_BUCKET, retrying } from './nats-resources.js';

/** Default per-bundle cap of a coordinator (MiB): far above a real bundle, far below what would strain its memory. */
export const DEFAULT_MAX_BUNDLE_MB = 256;
/** A read that receives no chunk for this long ends (chunks announced but not stored). */
const IDLE_MS = 8_000;
/** The object store's chunk size (@nats-io/obj's default, which workers upload with): smaller objects are one chunk. */
const ONE_CHUNK_BYTES = 128 * 1024;

/** A bundle that will not be taken: the reason becomes the job's failure. */
export class BundleRefused extends Error {}

export interface BundleWanted {
  name: string;
  /** How messages name it (default `bundle <name>`; field-store.ts names a field file). */
  label?: string;
  /**
   * The SHA-256 (hex) its bytes must have, from a signed job: metadata announcing another is refused before reading.
   */
  digest?: string;
  /** From an authenticated result: the chunks subject's id, size and SHA-256 (hex) of the archive. */
  sealed?: { nuid: string; bytes: number; digest: string };
}

interface Located {
  nuid: string;
  bytes: number;
  chunks?: number;
  digest: Buffer;
}

/** Where the object's bytes are and what they must hash to, from its metadata (no link followed). */
async function locate(os: ObjectStore, name: string, what: string, signal?: AbortSignal): Promise<Located> {
  const info = await retrying(`read the metadata of ${what}`, () => os.info(name), {
    forMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  if (!info || info.deleted) {
    throw new BundleRefused(`${what} is missing from the object store ${BUNDLES_BUCKET}`);
  }
  const link = info.options?.link;
  if (link) {
    throw new BundleRefused(
      `${what} is a link to ${link.bucket}/${link.name ?? ''} (links are refused, never followed)`,
    );
  }
  const { size, chunks, nuid, digest } = info;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new BundleRefused(`${what}: bad size ${String(size)} in its metadata`);
  }
  if (!Number.isSafeInteger(chunks) || chunks < (size > 0 ? 1 : 0) || chunks > size) {
    throw new BundleRefused(`${what}: ${String(chunks)} chunks cannot hold ${size} bytes`);
  }
  if (typeof nuid !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(nuid)) {
    throw new BundleRefused(`${what}: bad object id in its metadata`);
  }
  const m = /^SHA-256=([A-Za-z0-9+/_-]{43}=?)$/.exec(String(digest));
  if (!m) throw new BundleRefused(`${what}: its metadata has no SHA-256 digest`);
  return { nuid, bytes: size, chunks, digest: Buffer.from(m[1]!, 'base64') };
}

/**
 * Read the chunks of object `nuid`: exactly `bytes` bytes, or a refusal. No
 * chunk stored at all is a refusal at once; a read that stalls midway is
 * connection trouble (a server restart), retried by the caller.
 */
async function readChunks(
  h: { js: JetStreamClient; jsm: JetStreamManager },
  what: string,
  at: Located,
): Promise<Uint8Array> {
  if (at.bytes === 0) return new Uint8Array(0);
  const subject = `$O.${BUNDLES_BUCKET}.C.${at.nuid}`;
  if (at.bytes <= ONE_CHUNK_BYTES && (at.chunks ?? 1) === 1) {
    // A one-chunk object (every small bundle): one direct get instead of a stream look and a consumer. Its
    // digest is checked by the caller; anything but exactly the announced bytes takes the careful path below.
    const m = await h.jsm.streams.getMessage(`OBJ_${BUNDLES_BUCKET}`, { last_by_subj: subject });
    if (!m) throw new BundleRefused(`${what}: none of its ${at.bytes} bytes are stored (chunks missing)`);
    if (m.data.length === at.bytes) return m.data;
  }
  const si = await h.jsm.streams.info(`OBJ_${BUNDLES_BUCKET}`, { subjects_filter: subject });
  const stored = si.state.subjects?.[subject] ?? 0;
  if (stored === 0) throw new BundleRefused(`${what}: none of its ${at.bytes} bytes are stored (chunks missing)`);
  if (at.chunks !== undefined && stored > at.chunks)
    throw new BundleRefused(`${what}: more chunks stored than the ${at.chunks} announced`);
  // One filter subject, as the object store itself asks (filter_subjects needs nats-server 2.10).
  const filter = { filter_subject: subject };
  const consumer = await h.js.consumers.getPushConsumer(
    `OBJ_${BUNDLES_BUCKET}`,
    filter as unknown as Partial<OrderedPushConsumerOptions>,
  );
  const messages = await consumer.consume();
  const it = messages[Symbol.asyncIterator]();
  const parts: Uint8Array[] = [];
  let got = 0;
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const idle = new Promise<'idle'>((r) => (timer = setTimeout(() => r('idle'), IDLE_MS)));
      const next = await Promise.race([it.next(), idle]);
      clearTimeout(timer);
      if (next === 'idle' || next.done)
        throw new Error(`${what}: the download stalled after ${got} of ${at.bytes} bytes`);
      const jm = next.value as JsMsg;
      got += jm.data.length;
      count++;
      if (got > at.bytes || (at.chunks !== undefined && count > at.chunks)) {
        throw new BundleRefused(`${what}: more data stored than the ${at.bytes} bytes announced`);
      }
      parts.push(jm.data);
      if (jm.info.pending === 0) break;
    }
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  if (got !== at.bytes) throw new BundleRefused(`${what}: ${got} bytes stored, ${at.bytes} announced (chunks missing)`);
  return Buffer.concat(parts);
}

/** The bundle archive's bytes, checked as described above. */
export async function fetchBundle(
  h: { js: JetStreamClient; jsm: JetStreamManager; os: ObjectStore },
  want: BundleWanted,
  opts: { maxBytes: number; signal?: AbortSignal; cap?: string },
): Promise<Uint8Array> {
  const what = want.label ?? `bundle ${want.name}`;
  const at: Located = want.sealed
    ? { nuid: want.sealed.nuid, bytes: want.sealed.bytes, digest: Buffer.from(want.sealed.digest, 'hex') }
    : await locate(h.os, want.name, what, opts.signal);
  if (want.digest !== undefined && at.digest.toString('hex') !== want.digest)
    throw new BundleRefused(
      `${what}: SHA-256 digest mismatch ` +
        `(the object store announces ${at.digest.toString('hex')}, the job names ${want.digest})`,
    );
  checkCap(what, at.bytes, opts);
  const bytes = await readChunks(h, what, at);
  const digest = createHash('sha256').update(bytes).digest();
  if (!digest.equals(at.digest)) {
    const expected = `${want.sealed ? 'sealed in the result' : 'announced'} ${at.digest.toString('hex')}`;
    throw new BundleRefused(`${what}: SHA-256 digest mismatch (stored ${digest.toString('hex')}, ${expected})`);
  }
  return bytes;
}

function checkCap(what: string, bytes: number, opts: { maxBytes: number; cap?: string }): void {
  if (bytes <= opts.maxBytes) return;
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  throw new BundleRefused(
    `${what} has ${bytes} bytes (${mb(bytes)}), ` +
      `more than ${opts.cap ?? "this coordinator's cap"} of ` +
      `${mb(opts.maxBytes)}${opts.cap ? '' : ' (--max-bundle-mb)'}`,
  );
}

/**
 * A bundle carried inside its result message (bundleData): taken only with the size and SHA-256 the result
 * names (sealed, when the cluster signs jobs) and within the cap, like a fetched one.
 */
export function inlineBundle(
  want: { name: string; data: Uint8Array; bytes: number | undefined; digest: string | undefined },
  opts: { maxBytes: number },
): Uint8Array {
  const what = `bundle ${want.name} (inline)`;
  if (want.bytes === undefined || want.digest === undefined)
    throw new BundleRefused(`${what}: its result names no size and SHA-256 digest`);
  if (want.data.length !== want.bytes)
    throw new BundleRefused(`${what}: ${want.data.length} bytes carried, ${want.bytes} announced`);
  checkCap(what, want.bytes, opts);
  const digest = createHash('sha256').update(want.data).digest('hex');
  if (digest !== want.digest)
    throw new BundleRefused(`${what}: SHA-256 digest mismatch (carried ${digest}, announced ${want.digest})`);
  return want.data;
}
