/**
 * The messages the cluster exchanges — one type and one decoder each — and
 * their msgpack encoding (msgpackr with `moreTypes`, so typed arrays in
 * metrics round-trip; records off, so every message decodes on its own).
 *
 *   job       coordinator → work queue → worker      JobMessage
 *   result    worker → KV bucket (key = job id)      ResultMessage
 *   event     worker → core subject (fire & forget)  EventMessage (start / progress)
 *   bundle    worker → object store (name = job id)  BundleArchive (a directory's files)
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Packr } from 'msgpackr';
import { validateJob, validateResult } from '../study/records.js';
import type { Job, JobProgress, JobResult } from '../study/types.js';

const packr = new Packr({ moreTypes: true, useRecords: false });

export const PROTOCOL_VERSION = 1;

export interface JobMessage {
  v: number;
  job: Job;
  /** Which run of this job id this is (1 = first; `--retry-failed` counts up). */
  attempt: number;
}

export interface ResultMessage {
  v: number;
  result: JobResult;
  /** Object-store name of the bundle archive (done results only). */
  bundle?: string;
}

export interface EventMessage {
  v: number;
  kind: 'start' | 'progress';
  id: string;
  worker: string;
  progress?: JobProgress;
}

export interface BundleArchive {
  v: number;
  files: { path: string; data: Uint8Array }[];
}

export class MessageError extends Error {}

function decodeObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch (e) {
    throw new MessageError(`undecodable ${what} message (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MessageError(`${what} message is not a map`);
  const o = v as Record<string, unknown>;
  if (o.v !== PROTOCOL_VERSION) throw new MessageError(`${what} message has protocol version ${String(o.v)}, expected ${PROTOCOL_VERSION}`);
  return o;
}

function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MessageError) throw e;
    throw new MessageError(`bad ${what} message: ${(e as Error).message}`);
  }
}

export const encode = (m: JobMessage | ResultMessage | EventMessage | BundleArchive): Uint8Array => packr.pack(m);

export function decodeJobMessage(bytes: Uint8Array): JobMessage {
  const o = decodeObject(bytes, 'job');
  return wrap('job', () => {
    const attempt = o.attempt;
    if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) throw new Error(`attempt: ${String(attempt)}`);
    return { v: PROTOCOL_VERSION, job: validateJob(o.job), attempt };
  });
}

export function decodeResultMessage(bytes: Uint8Array): ResultMessage {
  const o = decodeObject(bytes, 'result');
  return wrap('result', () => {
    if (o.bundle !== undefined && typeof o.bundle !== 'string') throw new Error('bundle: expected a string');
    return { v: PROTOCOL_VERSION, result: validateResult(o.result), ...(o.bundle !== undefined ? { bundle: o.bundle as string } : {}) };
  });
}

export function decodeEventMessage(bytes: Uint8Array): EventMessage {
  const o = decodeObject(bytes, 'event');
  return wrap('event', () => {
    if (o.kind !== 'start' && o.kind !== 'progress') throw new Error(`kind: ${String(o.kind)}`);
    if (typeof o.id !== 'string' || typeof o.worker !== 'string') throw new Error('id/worker: expected strings');
    return o as unknown as EventMessage;
  });
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(root, p)));
    else if (entry.isFile()) out.push(p);
  }
  return out.sort();
}

/** Pack every regular file under `dir` (relative paths with '/'). */
export async function packBundle(dir: string): Promise<Uint8Array> {
  const files: BundleArchive['files'] = [];
  for (const p of await listFiles(dir)) {
    files.push({ path: relative(dir, p).split(sep).join('/'), data: await readFile(p) });
  }
  return encode({ v: PROTOCOL_VERSION, files });
}

/** Write a packed bundle's files under `dir`; refuses paths that would escape it. */
export async function unpackBundle(bytes: Uint8Array, dir: string): Promise<number> {
  const o = decodeObject(bytes, 'bundle');
  const files = o.files;
  if (!Array.isArray(files)) throw new MessageError('bundle message: files is not a list');
  const root = resolve(dir);
  for (const f of files as BundleArchive['files']) {
    if (typeof f?.path !== 'string' || !(f.data instanceof Uint8Array)) throw new MessageError('bundle message: bad file entry');
    const target = resolve(root, f.path);
    if (!target.startsWith(root + sep)) throw new MessageError(`bundle message: path "${f.path}" escapes the bundle directory`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, f.data);
  }
  return files.length;
}
