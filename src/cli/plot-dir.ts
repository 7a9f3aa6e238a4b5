/**
 * The directory a --plot flag names: checked before any work, and filled with
 * copies of written figures. Light: no plotting library.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileFormatError } from '../errors.js';

/**
 * A --plot directory is checked before any work: a file in its place would
 * otherwise fail only after the results were computed and printed.
 */
export function checkPlotDir(dir: string | undefined, flag = '--plot'): void {
  if (dir === undefined) return;
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    return; // created when the figures are written
  }
  if (!stat.isDirectory())
    throw new FileFormatError(dir, `exists and is not a directory (${flag} takes the directory the figures go into)`);
}

/** Copies written figures into `dir` (unless they are there already); returns their paths there. */
export async function copyFigures(files: readonly string[], dir: string): Promise<string[]> {
  checkPlotDir(dir);
  await fs.promises.mkdir(dir, { recursive: true });
  return Promise.all(
    files.map(async (f) => {
      const to = path.join(dir, path.basename(f));
      if (path.resolve(to) !== path.resolve(f)) await fs.promises.copyFile(f, to);
      return to;
    }),
  );
}
