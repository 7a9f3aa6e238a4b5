/**
 * The msgpack encoding of the NATS messages (protocol.ts): msgpackr with
 * `moreTypes`, so typed arrays in metrics round-trip; records off, so every
 * message decodes on its own; 64-bit integers decode as numbers (a BigInt in
 * a result's metrics would not survive JSON). Decoding checks the protocol
 * version, then the message's schema.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { syncDirs, writeDurably } from '../study/durable.js';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import {
  BundleArchiveSchema,
  EventMessageSchema,
  JobMessageSchema,
  PROTOCOL_VERSION,
  ResultMessageSchema,
  type BundleArchive,
  type EventMessage,
  type JobMessage,
  type ResultMessage,
} from './protocol.js';

const packr = new Packr({ moreTypes: true, useRecords: false, int64AsType: 'number' });

/** An undecodable, invalid or other-version message; `version` is set when only the version is wrong. */
export class MessageError extends Error {
  constructor(
    message: string,
    readonly version?: unknown,
  ) {
    super(message);
  }
}

export const encode = (m: JobMessage | ResultMessage | EventMessage | BundleArchive): Uint8Array => packr.pack(m);

/** Unpack without checking a schema (for messages of another version, read only for their job id). */
export function unpackRaw(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch (e) {
    throw new MessageError(`undecodable ${what} message (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MessageError(`${what} message is not a map`);
  return v as Record<string, unknown>;
}

function decodeWith<T>(schema: z.ZodType<T>, bytes: Uint8Array, what: string): T {
  const o = unpackRaw(bytes, what);
  if (o.v !== PROTOCOL_VERSION) {
    throw new MessageError(
      `${what} message has protocol version ${JSON.stringify(o.v) ?? String(o.v)}; ` +
        `this odeness speaks version ${PROTOCOL_VERSION}`,
      o.v,
    );
  }
  const r = schema.safeParse(o);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new MessageError(
      `bad ${what} message: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
    );
  }
  return r.data;
}

export const decodeJobMessage = (bytes: Uint8Array): JobMessage => decodeWith(JobMessageSchema, bytes, 'job');
export const decodeResultMessage = (bytes: Uint8Array): ResultMessage =>
  decodeWith(ResultMessageSchema, bytes, 'result');
export const decodeEventMessage = (bytes: Uint8Array): EventMessage => decodeWith(EventMessageSchema, bytes, 'event');

function listFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(root, p));
    else if (entry.isFile()) out.push(p);
  }
  return out.sort();
}

/**
 * Pack every regular file under `dir` (relative paths with '/'). Synchronous: a worker's main loop has
 * nothing else to do meanwhile, and each fs promise is two hops through libuv's thread pool (a job's bundle
 * is ~20 of them), each a context switch that costs most where workers outnumber cores.
 */
export function packBundle(dir: string): Uint8Array {
  const files: BundleArchive['files'] = [];
  for (const p of listFiles(dir)) {
    files.push({ path: relative(dir, p).split(sep).join('/'), data: readFileSync(p) });
  }
  return encode({ v: PROTOCOL_VERSION, files });
}

/**
 * Write a packed bundle's files under `dir` (new files only), durably: each file and directory fsync'd as
 * it is written (study/durable.ts), so the store need not open every file a second time to fsync it before
 * it renames the directory into place (a third of the syscalls of recording a tiny job's result). Refuses
 * paths that would escape `dir`.
 */
export async function unpackBundle(bytes: Uint8Array, dir: string): Promise<number> {
  const { files } = decodeWith(BundleArchiveSchema, bytes, 'bundle');
  const root = resolve(dir);
  const made = new Set<string>([root]); // each directory made once, not once per file
  for (const f of files) {
    const target = resolve(root, f.path);
    if (!target.startsWith(root + sep))
      throw new MessageError(`bundle message: path "${f.path}" escapes the bundle directory`);
    if (!made.has(dirname(target))) await mkdir(dirname(target), { recursive: true });
    for (let d = dirname(target); d.startsWith(root + sep) && !made.has(d); d = dirname(d)) made.add(d);
    await writeDurably(target, f.data);
  }
  await syncDirs(made);
  return files.length;
}

/** An error of this machine's file system (it carries a syscall and an errno code), not of a message. */
export function isLocalFsError(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException | undefined;
  return typeof x?.code === 'string' && typeof x.syscall === 'string';
}
