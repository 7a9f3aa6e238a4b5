/**
 * The calibration of `study plan`, measured once per machine and kept: five
 * calls within 20 minutes priced the paper's sphere study at 331 h to 936 h,
 * because each call timed a few iterations on a machine whose load changed.
 * A cached measurement makes repeated estimates identical; `--recalibrate`
 * measures again (e.g. after the machine changed or was busy at the first).
 *
 * The cache is one JSON file: $ODENESS_CACHE_DIR, else $XDG_CACHE_HOME/odeness,
 * else ~/.cache/odeness; entries are keyed by the machine (host, CPU model,
 * cores, Node version) and the calibrated (dataset, field, solver kind, batch).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, homedir, hostname } from 'node:os';
import { join } from 'node:path';

export interface CachedCost {
  readonly msPerIteration: number;
  readonly msPerSampleNfe: number;
  /** When it was measured (ISO time). */
  readonly measuredAt: string;
}

const FILE = 'calibration.json';
const FORMAT = 'odeness-calibration/1';

export function calibrationCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ODENESS_CACHE_DIR']) return env['ODENESS_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'odeness');
}

/** This machine, as far as calibration cares. */
function machineKey(): string {
  return [hostname(), cpus()[0]?.model ?? 'cpu', availableParallelism(), process.version].join('|');
}

export function calibrationKey(dataset: string, field: string, kind: string, batch: number): string {
  return [machineKey(), dataset, field, kind, batch].join('\n');
}

function readAll(dir: string): Record<string, CachedCost> {
  try {
    type Doc = { format?: string; entries?: Record<string, CachedCost> };
    const doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Doc;
    return doc.format === FORMAT && doc.entries && typeof doc.entries === 'object' ? doc.entries : {};
  } catch {
    return {}; // absent or unreadable: calibrate again
  }
}

export function readCachedCost(key: string, dir = calibrationCacheDir()): CachedCost | undefined {
  const c = readAll(dir)[key];
  return c && Number.isFinite(c.msPerIteration) && Number.isFinite(c.msPerSampleNfe) ? c : undefined;
}

/** Keep a measurement; a cache that cannot be written only costs the next call a calibration. */
export function writeCachedCost(key: string, cost: CachedCost, dir = calibrationCacheDir()): void {
  try {
    mkdirSync(dir, { recursive: true });
    const entries = { ...readAll(dir), [key]: cost };
    const tmp = join(dir, `${FILE}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify({ format: FORMAT, entries }, null, 1));
    renameSync(tmp, join(dir, FILE));
  } catch {
    // read-only home, full disk: the estimate stands, uncached
  }
}
