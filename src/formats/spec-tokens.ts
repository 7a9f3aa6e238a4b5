/**
 * The one tokenizer of spec strings (solver, field and dataset specs):
 *
 *   <head>[:<body>]      body = items separated by ',' (and by ':' where the format allows)
 *   item = key=value | bare
 *
 * Each parser decides what its items mean; this module only splits, so the
 * three spec syntaxes cannot drift apart. Dataset specs hold file paths, so
 * there a separator counts only when a `key=` follows it (`pathSafe`).
 */
export interface SpecToken {
  /** The key of `key=value`, or undefined for a bare item. */
  readonly key?: string;
  /** The value of `key=value`, or the bare item itself (trimmed unless pathSafe). */
  readonly value: string;
  /** The item as written. */
  readonly text: string;
}

export interface SpecTokens {
  /** Text before the first ':' (trimmed). */
  readonly head: string;
  /** Text after the first ':' ('' when there is none). */
  readonly body: string;
  readonly items: readonly SpecToken[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PATH_SAFE_SPLIT = /[:,](?=[A-Za-z_][A-Za-z0-9_]*=)/;

export interface TokenizeOptions {
  /**
   * Dataset specs: ':' and ',' separate items only before a `key=`, and
   * values are kept verbatim (paths may hold ':', ',' and spaces).
   */
  readonly pathSafe?: boolean;
}

export function tokenizeSpec(spec: string, options: TokenizeOptions = {}): SpecTokens {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const head = (colon < 0 ? text : text.slice(0, colon)).trim();
  const body = colon < 0 ? '' : text.slice(colon + 1);
  if (body.trim() === '') return { head, body, items: [] };
  const pieces = options.pathSafe ? body.split(PATH_SAFE_SPLIT) : body.split(',').map((p) => p.trim());
  const items = pieces.map((piece, i): SpecToken => {
    const eq = piece.indexOf('=');
    const key = eq < 0 ? '' : piece.slice(0, eq).trim();
    // In a path-safe spec, the first piece is bare unless it starts with `key=` (a path may hold '=').
    if (eq < 0 || !KEY.test(key) || (options.pathSafe && i === 0 && !KEY.test(piece.slice(0, eq)))) {
      return { value: options.pathSafe ? piece : piece.trim(), text: piece };
    }
    const value = piece.slice(eq + 1);
    return { key, value: options.pathSafe ? value : value.trim(), text: piece };
  });
  return { head, body, items };
}
