/**
 * Datasets of an untrusted job (a NATS worker's job process): every file is
 * looked up under the worker's data root, whatever the spelling — a relative
 * name is resolved against the root (never the working directory), `..` and
 * absolute names outside it are refused — and opened with no-follow,
 * non-blocking semantics: O_NOFOLLOW (the last component may not be a
 * symbolic link), O_NONBLOCK (a FIFO cannot hang the open), then fstat on the
 * open descriptor (regular files only: no FIFO, device or directory) and the
 * descriptor's own path (/proc/self/fd, so a symbolic link in a parent
 * directory is caught too) must lie under the root. The bytes read are those
 * of the descriptor checked. Errors name the path as given, never any of the
 * file's content.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
} from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { FileFormatError } from '../errors.js';
import { loadCifar10 } from './cifar10.js';
import { jsonToData, loadJsonDataset } from './json.js';
import { formatDatasetSpec } from './format.js';
import { Rng, type Seed } from '../random.js';
import { datasetOf, parseDatasetSpec } from './spec.js';
import type { Dataset } from './types.js';

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

/** The path the kernel opened for `fd` (Linux); elsewhere the resolved path of `abs`. */
function openedPath(fd: number, abs: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(abs);
  }
}

/** Open `given` under `root` (already a real path) as described above; `dir` for a directory. The caller closes it. */
function openUnder(root: string, given: string, kind: 'file' | 'dir'): { fd: number; path: string } {
  const abs = resolve(root, given);
  const outside = () => new FileFormatError(given, "outside this worker's --data-root");
  if (!inside(root, abs) && !(kind === 'dir' && abs === root)) throw outside();
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = constants;
  const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | (kind === 'dir' ? O_DIRECTORY : 0);
  let fd: number;
  try {
    fd = openSync(abs, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ELOOP'
        ? 'is a symbolic link (not followed under --data-root)'
        : code === 'ENOENT'
          ? 'file not found'
          : code === 'ENOTDIR'
            ? kind === 'dir'
              ? 'is not a directory'
              : 'a parent is not a directory'
            : `cannot open (${code ?? 'error'})`;
    throw new FileFormatError(given, why);
  }
  try {
    const st = fstatSync(fd);
    if (kind === 'file' && !st.isFile()) {
      throw new FileFormatError(given, 'is not a regular file (FIFOs, devices and directories are refused)');
    }
    const real = openedPath(fd, abs);
    if (!inside(root, real) && !(kind === 'dir' && real === root)) throw outside();
    return { fd, path: real };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The text of `given` under `root`, read from the checked descriptor. */
function readUnder(root: string, given: string): string {
  const { fd } = openUnder(root, given, 'file');
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Every CIFAR-10 batch file of `dir` checked like a file (the loader then reads them by path). */
function checkCifarDir(root: string, given: string): string {
  const { fd, path } = openUnder(root, given, 'dir');
  closeSync(fd);
  for (const name of readdirSync(path)) {
    if (name === 'cifar-10-batches-bin') checkCifarDir(root, join(given, name));
    else if (/^(data|test)_batch(_\d+)?\.bin$/.test(name)) closeSync(openUnder(root, join(given, name), 'file').fd);
  }
  return path;
}

/** Build a job's dataset with every file confined to `dataRoot`; other datasets as loadDataset does. */
export async function loadConfinedDataset(spec: string, seed: Seed, dataRoot: string): Promise<Dataset> {
  const s = parseDatasetSpec(spec);
  const rng = new Rng(seed);
  if (s.kind !== 'json' && s.kind !== 'cifar10') return datasetOf(s, rng);
  const root = realpathSync(dataRoot);
  if (s.kind === 'cifar10') {
    const dir = checkCifarDir(root, s.dir);
    return { ...loadCifar10({ dir, limit: s.limit, nTest: s.testN, rng }), spec: formatDatasetSpec(s) };
  }
  const text = readUnder(root, s.file);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text around the error: keep only the position.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new FileFormatError(s.file, `not valid JSON${at ? ` (at character ${at})` : ''}`);
  }
  const data = jsonToData(doc, s.file, true);
  const ds = loadJsonDataset({ file: s.file, split: s.split, classes: s.classes, shape: s.shape, rng, data });
  return { ...ds, spec: formatDatasetSpec(s) };
}
