/**
 * The one bridge from zod's issues to the project's error messages: every
 * format reports its first problem as `path: expected …, got <value>`, where
 * the path is written as in the file (`grid[2].steps[0]`), the value is the
 * one found (shortened) and "expected" is the schema's own wording.
 */
import type * as z from 'zod';

/** One problem found in a document, ready for an error message. */
export interface FormatIssue {
  /** Where, written as in the document: `grid[2].steps[0]`; '' for the document itself. */
  readonly path: string;
  /** The value found there (undefined when the key is missing). */
  readonly value: unknown;
  /** What is allowed there, in the schema's words. */
  readonly expected: string;
  /** True when the problem is a key the format does not know. */
  readonly unknownKey: boolean;
}

/** `a.b[0].c` from zod's path segments. */
export function joinPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** A value as quoted in an error message: strings in quotes, long objects cut. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 200 ? v.slice(0, 197) + '...' : v);
  if (typeof v === 'bigint') return `${v}`;
  if (v === null || typeof v !== 'object') return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** The first issue, with an unknown key reported at its own path and value. */
export function firstIssue(error: z.ZodError): FormatIssue {
  return resolve(error.issues[0]!, []);
}

function resolve(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): FormatIssue {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const parent = issue.input as Record<string, unknown> | undefined;
    return { path: joinPath([...path, key]), value: parent?.[key], expected: issue.message, unknownKey: true };
  }
  if (issue.code === 'invalid_union') {
    // Every branch failed. A branch that failed only because the value is not its type says
    // nothing; of the others, the one that got deepest into the value is the one the author meant.
    const meant = issue.errors
      .map((branch) => branch[0])
      .filter((i): i is z.core.$ZodIssue => i !== undefined && !(i.code === 'invalid_type' && i.path.length === 0))
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (meant) return resolve(meant, path);
  }
  // zod fills a custom issue's missing input with the whole object; `params.absent` marks a key that is missing.
  const absent = issue.code === 'custom' && (issue.params as { absent?: boolean } | undefined)?.absent === true;
  return { path: joinPath(path), value: absent ? undefined : issue.input, expected: issue.message, unknownKey: false };
}

/** `path: expected, got value` (the project's wording for a format error). */
export function describeIssue(i: FormatIssue): string {
  return `${i.path || '(top level)'}: ${i.expected}, got ${showValue(i.value)}`;
}

/**
 * Parse `raw` with `schema`; on failure throw what `fail` makes of the first
 * issue (each format wraps it in its own OdenessError with the file name).
 * Inputs are always reported (zod's `reportInput`), so messages can quote them.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  fail: (issue: FormatIssue) => Error,
): z.output<S> {
  const r = schema.safeParse(raw, { reportInput: true });
  if (r.success) return r.data;
  throw fail(firstIssue(r.error));
}
