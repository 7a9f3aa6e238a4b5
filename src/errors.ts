/**
 * Errors a user can cause (bad spec, bad file, bad data). The CLI prints their
 * message on one line without a stack trace; anything else is a bug and keeps
 * its stack.
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
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: ${detail}`, options);
  }
}

/** Data whose shape does not fit the model or bundle it is used with. */
export class ShapeError extends OdenessError {}

/** A solve that cannot finish: the state blew up or the step budget ran out. */
export class SolveError extends OdenessError {
  constructor(message: string, readonly t: number) {
    super(message);
  }
}

/** Training stopped because the loss became NaN/Inf. */
export class DivergenceError extends OdenessError {
  constructor(message: string, readonly iteration: number) {
    super(message);
  }
}

export function isOdenessError(e: unknown): e is OdenessError {
  return e instanceof OdenessError;
}
