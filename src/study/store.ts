/**
 * The result store of one study output directory:
 *
 *   DIR/plan.json        the planned jobs (written atomically at the start of each run)
 *   DIR/results.jsonl    one JSON line per finished or failed job, appended
 *   DIR/models/<id>/     the bundle of each done job
 *   DIR/state.json       jobs running right now (for `study status`), rewritten atomically
 *   DIR/.lock            pid/host of the run holding the directory
 *
 * Crash safety: a bundle is written to `models/.tmp-*` and renamed into place
 * before its result line is appended; a result line is appended with one
 * write() of the whole line on an O_APPEND descriptor, then fsync'd. So a
 * `done` line always has its bundle, and a SIGKILL leaves at worst a torn last
 * line, which readers ignore and the next writer cuts off.
 *
 * Reading: the final result of a job id is its first `done` line, else its
 * last `failed` line (a `--retry-failed` rerun appends after the failure);
 * later duplicates are ignored.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FileFormatError, OdenessError, OutputPathError, StudyMismatchError } from '../errors.js';
import { syncTree } from './durable.js';
import { acquireLock, type DirLock } from './lock.js';
import { validateResult } from './records.js';
import { describeIssue, parseWith, PlanFileSchema, type PlanFile, type PlanOverrides } from '../formats/index.js';

export { LOCK_FILE, readLock, type LockInfo } from './lock.js';
import type { Job, JobResult } from './types.js';

export const RESULTS_FILE = 'results.jsonl';
export const PLAN_FILE = 'plan.json';
export const STATE_FILE = 'state.json';
export const MODELS_DIR = 'models';
const TMP_PREFIX = '.tmp-';

export type { PlanFile } from '../formats/index.js';

/** What to do when a study is run into a directory that belongs to another study. */
export type StudyBinding = 'check' | 'extend' | 'replace';

/** The study a run plans: what `bindStudy` compares with the directory's. */
export interface BoundStudy {
  readonly name?: string;
  readonly studyHash: string;
  readonly spec: unknown;
  readonly overrides?: PlanOverrides;
  readonly jobs: readonly Job[];
}

export { StudyMismatchError } from '../errors.js';

/** Top-level keys whose values differ between two normalised studies (canonical comparison). */
function studyDifferences(a: unknown, b: unknown): string[] {
  const ra = (a ?? {}) as Record<string, unknown>;
  const rb = (b ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort();
  return keys.filter((k) => canonical(ra[k]) !== canonical(rb[k]));
}

function canonical(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  const o = v as Record<string, unknown>;
  return (
    '{' +
    Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => JSON.stringify(k) + ':' + canonical(o[k]))
      .join(',') +
    '}'
  );
}

/**
 * The plan file a run of `study` writes into a directory holding `existing`:
 * a directory belongs to the studies recorded in it. Another study stops the
 * run (StudyMismatchError, nothing written) unless `binding` says to extend
 * the directory (plan = both studies' jobs) or replace its plan (earlier
 * results stay in results.jsonl and are shown as not in the plan).
 */
export function bindStudy(
  dir: string,
  existing: PlanFile | undefined,
  study: BoundStudy,
  binding: StudyBinding = 'check',
): PlanFile {
  const fresh = (jobs: readonly Job[], studies: string[]): PlanFile => ({
    ...(study.name !== undefined ? { name: study.name } : {}),
    writtenAt: new Date().toISOString(),
    studyHash: study.studyHash,
    studies,
    study: study.spec,
    ...(study.overrides ? { overrides: study.overrides } : {}),
    jobs: [...jobs],
  });
  const union = (a: readonly Job[], b: readonly Job[]) => {
    const ids = new Set(a.map((j) => j.id));
    return [...a, ...b.filter((j) => !ids.has(j.id))];
  };
  if (!existing || binding === 'replace') return fresh(study.jobs, [study.studyHash]);
  const bound = existing.studies ?? (existing.studyHash ? [existing.studyHash] : []);
  if (bound.includes(study.studyHash))
    return fresh(bound.length > 1 ? union(existing.jobs, study.jobs) : study.jobs, bound);
  if (bound.length === 0) {
    // A directory written before studies were recorded: it is this study's if it planned the same jobs.
    const same =
      existing.jobs.length === study.jobs.length && existing.jobs.every((j, i) => j.id === study.jobs[i]!.id);
    if (same) return fresh(study.jobs, [study.studyHash]);
    if (binding === 'check') throw new StudyMismatchError(dir, ['the planned jobs']);
  } else if (binding === 'check') {
    const differs = existing.study !== undefined ? studyDifferences(existing.study, study.spec) : [];
    throw new StudyMismatchError(dir, differs.length > 0 ? differs : ['the study']);
  }
  return fresh(union(existing.jobs, study.jobs), [...bound, study.studyHash]);
}

export interface StateFile {
  pid: number;
  host: string;
  updatedAt: string;
  transport: string;
  running: { id: string; worker: string; since: string }[];
}

export interface ResultsRead {
  /** Final result per job id. */
  final: Map<string, JobResult>;
  /** Every valid line in file order (retries and duplicates included). */
  all: JobResult[];
  lines: number;
  /** Lines that did not parse or validate (a torn last line counts here). */
  invalid: number;
  /** Lines for an id that already had a final result. */
  duplicates: number;
  /** Byte length of the file up to and including its last newline. */
  validLength: number;
}

/** What a writer keeps per job id: enough to tell whether a new result supersedes the recorded one. */
export type ResultStanding = Pick<JobResult, 'status' | 'attempt'>;

/** Whether `r` becomes the final result of its job id, given the current final result `prev`. */
export function supersedes(prev: ResultStanding | undefined, r: ResultStanding): boolean {
  return prev === undefined || (prev.status === 'failed' && (r.status === 'done' || r.attempt >= prev.attempt));
}

/** Fold one result into the final-result map; returns whether it changed the final result. */
export function foldResult(final: Map<string, JobResult>, r: JobResult): boolean {
  if (supersedes(final.get(r.id), r)) {
    final.set(r.id, r);
    return true;
  }
  return false;
}

export function parseResults(text: string): ResultsRead {
  const final = new Map<string, JobResult>();
  const all: JobResult[] = [];
  let lines = 0;
  let invalid = 0;
  let duplicates = 0;
  const end = text.lastIndexOf('\n') + 1;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    lines++;
    let r: JobResult;
    try {
      r = validateResult(JSON.parse(line));
    } catch {
      invalid++;
      continue;
    }
    all.push(r);
    if (!foldResult(final, r)) duplicates++;
  }
  return { final, all, lines, invalid, duplicates, validLength: Buffer.byteLength(text.slice(0, end)) };
}

export function readResults(dir: string): ResultsRead {
  const file = join(dir, RESULTS_FILE);
  if (!existsSync(file)) return { final: new Map(), all: [], lines: 0, invalid: 0, duplicates: 0, validLength: 0 };
  return parseResults(readFileSync(file, 'utf8'));
}

export function readPlan(dir: string): PlanFile | undefined {
  const file = join(dir, PLAN_FILE);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseWith(PlanFileSchema, raw, (i) => new FileFormatError(file, `not a study plan (${describeIssue(i)})`));
}

export function readState(dir: string): StateFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as StateFile;
  } catch {
    return undefined;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    /* not supported everywhere; the rename is still atomic */
  } finally {
    await fh?.close();
  }
}

export class ResultStore {
  /**
   * The final result's status and attempt per job id. Not the results themselves: a coordinator recording
   * 20 000 results kept every parsed result (~35 KB of RSS each with the rest of its garbage).
   */
  readonly standings = new Map<string, ResultStanding>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly fh: FileHandle,
    read: ResultsRead,
    private readonly lock: DirLock,
  ) {
    for (const [id, r] of read.final) this.standings.set(id, { status: r.status, attempt: r.attempt });
  }

  /** Take the directory's lock, repair a torn last line, remove stale temp bundles. */
  static async open(dir: string): Promise<ResultStore> {
    await mkdir(join(dir, MODELS_DIR), { recursive: true });
    const lock = await acquireLock(dir);
    try {
      const file = join(dir, RESULTS_FILE);
      const text = existsSync(file) ? await readFile(file, 'utf8') : '';
      const read = parseResults(text);
      const fh = await open(file, 'a');
      if (read.validLength < Buffer.byteLength(text)) {
        // A torn last line from a killed writer: cut it so the next append starts a fresh line.
        await fh.truncate(read.validLength);
      }
      for (const name of await readdir(join(dir, MODELS_DIR))) {
        if (name.startsWith(TMP_PREFIX)) await rm(join(dir, MODELS_DIR, name), { recursive: true, force: true });
      }
      return new ResultStore(dir, fh, read, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  get modelsDir(): string {
    return join(this.dir, MODELS_DIR);
  }

  bundlePath(id: string): string {
    return join(this.dir, MODELS_DIR, id);
  }

  /**
   * Record the plan of this run. With a study (a StudyPlan), the directory is
   * bound to it (see bindStudy: another study stops here, before anything is
   * written); returns the jobs the directory now plans.
   */
  async writePlan(
    plan: { name?: string; jobs: readonly Job[] } | BoundStudy,
    binding: StudyBinding = 'check',
  ): Promise<readonly Job[]> {
    const body: PlanFile =
      'studyHash' in plan
        ? bindStudy(this.dir, readPlan(this.dir), plan, binding)
        : {
            ...(plan.name !== undefined ? { name: plan.name } : {}),
            writtenAt: new Date().toISOString(),
            jobs: [...plan.jobs],
          };
    await writeAtomic(join(this.dir, PLAN_FILE), JSON.stringify(body, null, 1) + '\n');
    return body.jobs;
  }

  async writeState(state: Omit<StateFile, 'pid' | 'host' | 'updatedAt'>): Promise<void> {
    if (this.closed) return;
    await writeAtomic(
      join(this.dir, STATE_FILE),
      JSON.stringify({ pid: process.pid, host: hostname(), updatedAt: new Date().toISOString(), ...state }) + '\n',
    );
  }

  /**
   * The directory is the truth: a run whose --out was removed, replaced or
   * made unwritable must stop, not append to a results file nobody can read
   * (an unlinked results.jsonl took every line and the run said "16/16 done").
   * Throws an OutputPathError naming the directory unless results.jsonl is
   * still the file this store appends to.
   */
  async checkDir(): Promise<void> {
    const file = join(this.dir, RESULTS_FILE);
    let onDisk: { ino: number; dev: number } | undefined;
    try {
      onDisk = await stat(file);
    } catch {
      onDisk = undefined;
    }
    const held = await this.fh.stat();
    if (!onDisk || onDisk.ino !== held.ino || onDisk.dev !== held.dev) {
      throw new OutputPathError(
        this.dir,
        `the study output directory was removed or replaced during the run (${RESULTS_FILE} is gone); stopping — ` +
          `results recorded there before are lost with it, rerun to redo them`,
      );
    }
  }

  /**
   * After the directory vanished and the run stopped: remove the bundle temp dirs that jobs in flight
   * recreated under it, and the parents if empty (a stopped run leaves nothing that looks like a study).
   */
  async dropLeftovers(): Promise<void> {
    const names = await readdir(this.modelsDir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.startsWith(TMP_PREFIX))) {
      await rm(join(this.modelsDir, name), { recursive: true, force: true }).catch(() => undefined);
    }
    await this.dropRecreated();
  }

  /**
   * After the directory vanished, a job still writing its bundle recreated
   * DIR/models/.tmp-…: remove that, and the parents only if they are empty
   * (rmdir), so the run leaves nothing that looks like a study behind.
   */
  private async dropRecreated(bundleTmp?: string): Promise<void> {
    if (bundleTmp) await rm(bundleTmp, { recursive: true, force: true }).catch(() => undefined);
    for (const d of [this.modelsDir, this.dir]) await rmdir(d).catch(() => undefined);
  }

  /** A file-system failure while recording, as one line naming the directory. */
  private lost(e: unknown): unknown {
    if (e instanceof OdenessError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    return code
      ? new OutputPathError(
          this.dir,
          `cannot record results in the study output directory (${code}: ${(e as Error).message}); stopping — ` +
            `finished results stay recorded, rerun to resume`,
        )
      : e;
  }

  /**
   * A fresh empty directory to build one bundle in; `commit` renames it into place (and checks, before it
   * does, that the study directory is still the one this store writes to).
   */
  async tempBundleDir(id: string): Promise<string> {
    const dir = join(this.dir, MODELS_DIR, `${TMP_PREFIX}${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      // Not recursive: a vanished models/ must not be recreated as if nothing happened.
      await mkdir(dir);
    } catch (e) {
      // A vanished or replaced directory is named as such, not as the mkdir that found it.
      await this.checkDir().catch((gone: unknown) => {
        throw this.lost(gone);
      });
      throw this.lost(e);
    }
    return dir;
  }

  /**
   * Record a result: move its bundle into models/<id>/ (done results), then
   * append its line. Returns false (and discards the bundle) when the job id
   * already has a final result this one does not replace. `bundleSynced`: the
   * bundle's files and directories are on disk already (written durably).
   */
  commit(result: JobResult, bundleTmp?: string, bundleSynced = false): Promise<boolean> {
    const run = this.queue.then(async () => {
      try {
        await this.checkDir();
      } catch (e) {
        await this.dropRecreated(bundleTmp);
        throw e;
      }
      try {
        return await this.commitNow(validateResult(result), bundleTmp, bundleSynced);
      } catch (e) {
        throw this.lost(e);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commitNow(result: JobResult, bundleTmp: string | undefined, bundleSynced: boolean): Promise<boolean> {
    if (this.closed) throw new Error('ResultStore is closed');
    if (!supersedes(this.standings.get(result.id), result)) {
      if (bundleTmp) await rm(bundleTmp, { recursive: true, force: true });
      return false;
    }
    let placed: string | undefined;
    if (result.status === 'done' && bundleTmp) {
      placed = this.bundlePath(result.id);
      await rm(placed, { recursive: true, force: true }); // leftover of a run killed between rename and append
      // Files and directories on disk before the rename makes them the bundle.
      if (!bundleSynced) await syncTree(bundleTmp);
      await rename(bundleTmp, placed);
      await fsyncDir(this.modelsDir);
    } else if (bundleTmp) {
      await rm(bundleTmp, { recursive: true, force: true });
    }
    const line = Buffer.from(JSON.stringify(result) + '\n');
    try {
      // One write() of the whole line on an O_APPEND descriptor: concurrent appenders never interleave within a line.
      const { bytesWritten } = await this.fh.write(line);
      if (bytesWritten !== line.length)
        throw new Error(`short write to ${RESULTS_FILE}: ${bytesWritten} of ${line.length} bytes`);
      await this.fh.datasync();
    } catch (err) {
      // No line, no bundle: an unrecorded result leaves no orphan models/<id> behind (ENOSPC, EIO).
      if (placed) await rm(placed, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.standings.set(result.id, { status: result.status, attempt: result.attempt });
    return true;
  }

  async discard(bundleTmp: string): Promise<void> {
    await rm(bundleTmp, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    await this.fh.close();
    await rm(join(this.dir, STATE_FILE), { force: true });
    await this.lock.release();
  }
}
