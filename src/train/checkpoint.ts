/**
 * Training never loses finished work:
 *  - the output directory is checked before training starts (a path, not a
 *    file, writable, empty unless overwriting was asked for);
 *  - beside model.json and params.bin every model directory holds
 *    checkpoint.json: the run's settings and how far it got, so
 *    `train --resume DIR` can continue it (parameters, iteration count,
 *    batch order and the adapted solver are restored; Adam's moments are not
 *    saved and restart from zero).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { FileFormatError, OutputPathError } from '../errors.js';
import { CheckpointFileSchema, describeIssue, parseWith, type CheckpointFile } from '../formats/index.js';

export const CHECKPOINT_FILE = 'checkpoint.json';
const WRITE_PROBE = '.odeness-write-probe';

export interface OutDirOptions {
  /** Overwrite what the directory holds (default false: a non-empty directory is an error). */
  readonly force?: boolean;
}

async function statOrUndefined(p: string) {
  try {
    return await fs.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return 'notdir' as const;
    throw new OutputPathError(p, `cannot be inspected (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Checks that `out` can take a model before any training starts, and creates
 * it: not empty, not a file nor beneath one, writable, empty unless `force`.
 * Throws OutputPathError naming the path and the problem.
 */
export async function prepareOutDir(out: string, options: OutDirOptions = {}): Promise<void> {
  if (out.trim() === '') throw new OutputPathError(out, 'the output directory must be a path, got an empty string');
  const stat = await statOrUndefined(out);
  if (stat === 'notdir')
    throw new OutputPathError(
      out,
      `${(await existingAncestor(out)).path} is a file, so no directory can be created beneath it`,
    );
  if (stat && !stat.isDirectory()) throw new OutputPathError(out, 'is a file, not a directory');
  if (stat) {
    const entries = (await fs.readdir(out)).filter((e) => !e.startsWith(WRITE_PROBE));
    if (entries.length > 0 && !options.force) {
      const what = entries.includes('model.json')
        ? 'holds a model'
        : `is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''})`;
      throw new OutputPathError(
        out,
        `${what}; pass --force to overwrite it, or --resume ${out} to continue its training`,
      );
    }
    await probeWritable(out);
    return;
  }
  // Not there yet: saving creates it, so its nearest existing ancestor must be a writable directory.
  const ancestor = await existingAncestor(out);
  if (!ancestor.isDirectory)
    throw new OutputPathError(out, `${ancestor.path} is a file, so no directory can be created beneath it`);
  await probeWritable(ancestor.path, out);
}

/** Throws unless a file can be written in `dir` (the error names `target`, default dir). */
export async function probeWritable(dir: string, target = dir): Promise<void> {
  const probe = path.join(dir, `${WRITE_PROBE}-${process.pid}`);
  try {
    await fs.writeFile(probe, '');
    await fs.rm(probe, { force: true });
  } catch (e) {
    const where = target === dir ? 'is not writable' : `cannot be created: ${dir} is not writable`;
    throw new OutputPathError(target, `${where} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The nearest existing ancestor of p, and whether it is a directory. */
async function existingAncestor(p: string): Promise<{ path: string; isDirectory: boolean }> {
  let dir = path.resolve(p);
  for (;;) {
    const parent = path.dirname(dir);
    if (parent === dir) return { path: dir, isDirectory: true };
    dir = parent;
    const s = await statOrUndefined(dir);
    if (s === undefined || s === 'notdir') continue;
    return { path: dir, isDirectory: s.isDirectory() };
  }
}

export type Checkpoint = CheckpointFile;

export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const file = path.join(dir, CHECKPOINT_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(checkpoint, null, 2) + '\n');
  await fs.rename(tmp, file);
}

export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const file = path.join(dir, CHECKPOINT_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new FileFormatError(
      file,
      'missing; --resume needs a model directory written by `odeness train` (with its checkpoint.json)',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseWith(CheckpointFileSchema, json, (issue) => new FileFormatError(file, describeIssue(issue)));
}
