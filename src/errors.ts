/**
 * Errors a user can cause (bad spec, bad file, bad data). The CLI prints their
 * message on one line without a stack trace; anything else is a bug and keeps
 * its stack.
 *
 * Every user-facing error class lives here, except StudyFileError
 * (study/schema.ts), which words its message with the study schema's issue
 * formatter (this module imports nothing). Four classes extend plain Error on
 * purpose, as signals that never reach a user as such: each is caught in its
 * own module and becomes a result, a log line or an OdenessError there —
 * `Reported` (formats/study-file.ts: one issue per study file), `MessageError`
 * (cluster/codec.ts: an unreadable network message), `NoAnswer`
 * (cluster/nats-connect.ts: a connect probe) and `JobRefused`
 * (cluster/job-checks.ts: a job a worker will not run).
 */
export class OdenessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A malformed solver / dataset / field spec string or option value. */
export class SpecError extends OdenessError {}

/** A file that is missing, unreadable or not in the expected format. */
export class FileFormatError extends OdenessError {
  constructor(
    readonly file: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${detail}`, options);
  }
}

/** Data whose shape does not fit the model or bundle it is used with. */
export class ShapeError extends OdenessError {}

/** A solve that cannot finish: the state blew up or the step budget ran out. */
export class SolveError extends OdenessError {
  constructor(
    message: string,
    readonly t: number,
  ) {
    super(message);
  }
}

/** Training stopped because the loss became NaN/Inf. */
export class DivergenceError extends OdenessError {
  constructor(
    message: string,
    readonly iteration: number,
  ) {
    super(message);
  }
}

/** A size (dimension, sample count, label, layer width) beyond what can be allocated; checked before allocating. */
export class SizeError extends OdenessError {}

/** Data that breaks the dataset contract (labels, value range, class count). */
export class DataError extends OdenessError {}

/** A file-system operation refused for a reason the user controls (a path, a permission). */
export class FileSystemError extends OdenessError {
  constructor(
    readonly path: string,
    readonly code: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${detail} (${code})`, options);
  }
}

/** A study run into a directory that belongs to another study. */
export class StudyMismatchError extends OdenessError {
  constructor(
    readonly dir: string,
    readonly differs: readonly string[],
  ) {
    super(
      `${dir} belongs to another study (${differs.join(', ')} differ${differs.length === 1 ? 's' : ''}); ` +
        `use a new --out, or --extend to add this study's jobs to it, or --replace to make it this study's (results ` +
        `already there are kept)`,
    );
  }
}

/** A record (a job, a result) not matching its format; the message names the path, the value and what is allowed. */
export class RecordError extends OdenessError {}

export function isOdenessError(e: unknown): e is OdenessError {
  return e instanceof OdenessError;
}

/** What each user-caused file-system error code means, in words. */
const FS_CODES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory, expected a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'file name too long',
  ENOTEMPTY: 'directory not empty',
  EMFILE: 'too many open files',
};

/**
 * A Node.js error the user caused, as an OdenessError: a file-system error
 * about a path (EEXIST, ENOTDIR, EACCES, ENOENT, …) names the path; a typed
 * array or buffer too large for memory names the size. Anything else stays
 * as it is (a bug).
 */
export function asUserError(e: unknown): unknown {
  if (e instanceof OdenessError || !(e instanceof Error)) return e;
  const errno = e as NodeJS.ErrnoException & { dest?: string };
  if (typeof errno.code === 'string' && FS_CODES[errno.code] && typeof errno.path === 'string') {
    const what = errno.syscall ? `cannot ${errno.syscall}: ${FS_CODES[errno.code]}` : FS_CODES[errno.code]!;
    return new FileSystemError(errno.path, errno.code, what, { cause: e });
  }
  if (
    e instanceof RangeError &&
    /Invalid typed array length|Array buffer allocation failed|Invalid array length/.test(e.message)
  ) {
    return new SizeError(
      `cannot allocate memory for the requested sizes (${e.message}); reduce the dataset or field size`,
      { cause: e },
    );
  }
  return e;
}

/** An output path that cannot take what is to be written (a file, a non-empty directory, not writable). */
export class OutputPathError extends OdenessError {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${path === '' ? '""' : path}: ${detail}`);
  }
}

/**
 * A device (--device) this machine cannot run sessions on: the provider is missing, no adapter, or session creation
 * failed.
 */
export class DeviceError extends OdenessError {}
