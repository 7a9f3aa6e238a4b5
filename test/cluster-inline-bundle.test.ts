/**
 * Small bundles ride inside their result message (bundleData) instead of the object store: the coordinator
 * takes the bytes only with the size and SHA-256 the result names (sealed, on a signed cluster), within its
 * cap; the message schema bounds them. No NATS server: the checks themselves (the cluster tests run the path
 * end to end, every tiny job's bundle travelling inline).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { BundleRefused, inlineBundle } from '../src/cluster/bundle-fetch.js';
import { decodeResultMessage, encode, MessageError } from '../src/cluster/codec.js';
import { MAX_INLINE_BUNDLE_BYTES, PROTOCOL_VERSION, type ResultMessage } from '../src/cluster/protocol.js';
import { resultAuthentic, sealResult } from '../src/cluster/result-auth.js';
import { forgedDone, job } from './helpers/wire.js';

const archive = encode({ v: PROTOCOL_VERSION, files: [{ path: 'manifest.json', data: new Uint8Array(300).fill(1) }] });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const name = `${'a'.repeat(16)}.${'b'.repeat(16)}`;
const cap = { maxBytes: 2 ** 20 };

test('an inline bundle is taken only with the size and digest its result names, within the cap', (t) => {
  const want = { name, data: archive, bytes: archive.length, digest: sha(archive) };
  t.is(inlineBundle(want, cap), archive);
  const refused = (w: Partial<typeof want>, opts = cap) =>
    t.throws(() => inlineBundle({ ...want, ...w }, opts), { instanceOf: BundleRefused })?.message;
  t.regex(refused({ digest: undefined as unknown as string }) ?? '', /inline\): its result names no size and SHA-256/);
  t.regex(refused({ bytes: archive.length + 1 }) ?? '', /bytes carried, \d+ announced/);
  const flipped = Uint8Array.from(archive, (b, i) => (i === archive.length - 1 ? b ^ 1 : b));
  t.regex(refused({ data: flipped }) ?? '', /SHA-256 digest mismatch \(carried [0-9a-f]{64}, announced/);
  t.regex(refused({}, { maxBytes: 100 }) ?? '', /more than this coordinator's cap of 0\.0 MiB \(--max-bundle-mb\)/);
});

test('the seal covers an inline bundle through its digest: tampered bytes or a rewritten digest are caught', (t) => {
  const key = Buffer.from('a shared secret of the cluster');
  const j = job({ seed: 7 });
  const msg: ResultMessage = {
    ...forgedDone(j, 'b'.repeat(16), { worker: 'genuine' }),
    bundleDigest: sha(archive),
    bundleBytes: archive.length,
    bundleData: archive,
  };
  const sealed = decodeResultMessage(encode(sealResult(key, msg)));
  t.true(resultAuthentic(key, sealed), 'sealed without an object-store id: the bytes are inline');
  t.deepEqual(
    inlineBundle({ name, data: sealed.bundleData!, bytes: sealed.bundleBytes, digest: sealed.bundleDigest }, cap),
    archive,
  );
  // Bytes swapped under a genuine seal: the seal still holds (the bytes are outside it), their digest does not.
  const other = encode({ v: PROTOCOL_VERSION, files: [{ path: 'README', data: new TextEncoder().encode('pwned') }] });
  const swapped = { ...sealed, bundleData: other, bundleBytes: other.length };
  t.false(resultAuthentic(key, swapped), 'the sealed size no longer matches');
  t.throws(() => inlineBundle({ name, data: other, bytes: sealed.bundleBytes, digest: sealed.bundleDigest }, cap), {
    instanceOf: BundleRefused,
  });
  t.false(resultAuthentic(key, { ...sealed, bundleData: other, bundleDigest: sha(other) }), 'a rewritten digest');
  const { bundleData: _dropped, ...withoutBytes } = sealed;
  t.false(resultAuthentic(key, withoutBytes), 'a done result with neither an object id nor inline bytes');
});

test('the result schema bounds inline bundles (at most NATS default payload)', (t) => {
  const j = job({ seed: 8 });
  const big = new Uint8Array(MAX_INLINE_BUNDLE_BYTES + 1);
  const e = t.throws(() => decodeResultMessage(encode({ ...forgedDone(j, 'c'.repeat(16)), bundleData: big })), {
    instanceOf: MessageError,
  });
  t.regex(e?.message ?? '', /bundleData: expected at most 1048576 bytes/);
});
