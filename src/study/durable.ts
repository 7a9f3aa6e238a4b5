/**
 * Durability of a bundle before it is renamed into place: every regular file
 * and every directory under it fsync'd, so that a crash right after the
 * rename cannot leave models/<id>/ with empty or missing files (both
 * transports: a local run's bundle is written by a job thread and synced
 * here before the rename; a NATS one is written durably as it is unpacked
 * from its result message or the object store).
 */
import { open, readdir } from 'node:fs/promises';
import { sep } from 'node:path';
import { join } from 'node:path';

async function syncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } catch (e) {
    // Directories cannot be fsync'd on every platform; files always can.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL' && (e as NodeJS.ErrnoException).code !== 'EISDIR') throw e;
  } finally {
    await fh.close();
  }
}

/** fsync every regular file and directory under `dir`, `dir` itself last. */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(p);
    else if (entry.isFile()) await syncPath(p);
  }
  await syncPath(dir);
}

/** Write a new file (exclusive create) and fsync it before closing: one open where write-then-syncTree took two. */
export async function writeDurably(file: string, data: Uint8Array): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync directories, deepest first (a directory's entry in its parent after its own entries). */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  const depth = (d: string) => d.split(sep).length;
  for (const d of [...dirs].sort((a, b) => depth(b) - depth(a))) await syncPath(d);
}
