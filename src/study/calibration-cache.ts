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

/** One dataset × field × solver kind × batch on this machine (study/calibrate.ts measures it). */
export interface CachedCost {
  /** A training iteration: fixed ms, and ms per sample·NFE. */
  readonly msPerIteration: number;
  readonly msPerSampleNfe: number;
  /**
   * A training graph build with its session's slow first runs: buildMs + buildMsPerStage · stages^buildExponent
   * (adaptive: buildMs, its step graphs).
   */
  readonly buildMs: number;
  readonly buildMsPerStage: number;
  readonly buildExponent: number;
  /**
   * A fixed-step build measured beyond the curve's last stages (price.ts BUILD_CURVE_STAGES), where builds grow
   * faster than the curve says; measured when a plan has such grids (absent: the curve is extrapolated).
   */
  readonly buildTail?: { readonly stages: number; readonly ms: number };
  /** A job's fixed part: data, engine set-up, model save, bundle write, sessions opened, result. */
  readonly jobOverheadMs: number;
  /** A forward field call of evaluation or an audit: ms per call and per row. */
  readonly msPerCall: number;
  readonly msPerRow: number;
  /** NFE of the fan audit's float64 reference solve on this field (the calibration's model). */
  readonly referenceNfe: number;
  /** Its extra NFE per output time it stops at (the fan audit records it at every step of the audited solver). */
  readonly referenceNfePerStop: number;
  /** Ms per row of one of its calls: the field call's and its float64 solver arithmetic. */
  readonly referenceMsPerRow: number;
  /** A job's time beside another busy worker over its time alone (1 to 2): what parallel workers cost each other. */
  readonly contention: number;
  /** CPU time over wall time while it was measured (the figures above are scaled by it: idle-machine costs). */
  readonly cpuShare?: number;
  /** When it was measured (ISO time). */
  readonly measuredAt: string;
}

/** What a transport adds: ms per job (dispatch, store, a job process), and its start. */
export interface TransportCost {
  readonly msPerJob: number;
  readonly startupMs: number;
  /** CPU share while measured (the figures are scaled by it), see calibrate.ts. */
  readonly cpuShare?: number;
  /** ISO time, or 'default' for the built-in figures. */
  readonly measuredAt: string;
}

const FILE = 'calibration.json';
// Version 2 prices builds, job overhead, field calls and the fan reference; version 3 fits the build exponent, counts
// a session's slow first runs in its build, the reference's stops and workers' contention; version 4 takes contention
// as a median and the transports' overhead against the share others took of the machine; version 5 times contention
// on a job with the fan audit: older entries are measured again (version 4's transports are kept).
const FORMAT = 'odeness-calibration/5';

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

export function transportKey(name: string): string {
  return [machineKey(), 'transport', name].join('\n');
}

type Entry = CachedCost | TransportCost;

/** Older formats whose transport entries mean what they mean now (NATS's needs a cluster to measure again). */
const TRANSPORTS_SINCE = ['odeness-calibration/4'];

function readAll(dir: string): Record<string, Entry> {
  try {
    type Doc = { format?: string; entries?: Record<string, Entry> };
    const doc = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Doc;
    if (!doc.entries || typeof doc.entries !== 'object') return {};
    if (doc.format === FORMAT) return doc.entries;
    if (!TRANSPORTS_SINCE.includes(doc.format ?? '')) return {};
    return Object.fromEntries(Object.entries(doc.entries).filter(([key]) => key.split('\n')[1] === 'transport'));
  } catch {
    return {}; // absent or unreadable: calibrate again
  }
}

const COST_FIELDS = [
  'msPerIteration',
  'msPerSampleNfe',
  'buildMs',
  'buildMsPerStage',
  'buildExponent',
  'jobOverheadMs',
  'msPerCall',
  'msPerRow',
  'referenceNfe',
  'referenceNfePerStop',
  'referenceMsPerRow',
  'contention',
] as const;

const finite = (e: Entry | undefined, fields: readonly string[]): boolean =>
  e !== undefined && fields.every((f) => Number.isFinite((e as unknown as Record<string, unknown>)[f]));

export function readCachedCost(key: string, dir = calibrationCacheDir()): CachedCost | undefined {
  const c = readAll(dir)[key];
  return finite(c, COST_FIELDS) ? (c as CachedCost) : undefined;
}

export function readCachedTransport(key: string, dir = calibrationCacheDir()): TransportCost | undefined {
  const c = readAll(dir)[key];
  return finite(c, ['msPerJob', 'startupMs']) ? (c as TransportCost) : undefined;
}

export function writeCachedTransport(key: string, cost: TransportCost, dir = calibrationCacheDir()): void {
  writeCachedCost(key, cost, dir);
}

/** Keep a measurement; a cache that cannot be written only costs the next call a calibration. */
export function writeCachedCost(key: string, cost: Entry, dir = calibrationCacheDir()): void {
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
