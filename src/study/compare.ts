/**
 * Comparable results: whether two runs of one study recorded the same answers. A result is compared without
 * what depends on where and when its job ran (timings, worker names); everything it computed counts (status,
 * accuracies, NFE, losses, adapted steps, audits). scripts/transport-equivalence.ts runs a study on two
 * transports and compares them with this; the tests check what it sees.
 */
import { readResults } from './store.js';
import type { JobResult } from './types.js';

/** Keys of a result that depend on where and when it ran, not on what it computed. */
const VOLATILE = /^(worker|timings|ms|startedAt|finishedAt)$|Ms$/;

/** A result without its timings and worker names, keys sorted: equal results give equal strings. */
export function comparable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(comparable);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .filter((k) => !VOLATILE.test(k))
      .map((k) => [k, comparable(o[k])]),
  );
}

/** The first path at which two values differ, or undefined. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null))
    return `${path || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  if (a === null || typeof a !== 'object')
    return Object.is(a, b) ? undefined : `${path || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
    const d = firstDifference(x[k], y[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
}

/** The result of record of each job id of a study output directory (the store's own rule: a done result wins). */
export function resultsById(dir: string): Map<string, JobResult> {
  return readResults(dir).final;
}

/** One run to compare: its results by job id, and what messages call it ("the local pool", "NATS"). */
export interface Run {
  readonly label: string;
  readonly results: ReadonlyMap<string, JobResult>;
}

export interface RunCounts {
  readonly done: number;
  readonly failed: number;
}

export interface RunComparison {
  /** Jobs of the first run. */
  readonly jobs: number;
  readonly counts: readonly [RunCounts, RunCounts];
  /** One line per job whose results differ (or that only one run has); empty when the runs agree. */
  readonly differences: string[];
}

/** Compare two runs' results job by job. */
export function compareRuns(a: Run, b: Run): RunComparison {
  const differences: string[] = [];
  for (const id of a.results.keys()) if (!b.results.has(id)) differences.push(`${id}: only on ${a.label}`);
  for (const id of b.results.keys()) if (!a.results.has(id)) differences.push(`${id}: only on ${b.label}`);
  for (const [id, x] of a.results) {
    const y = b.results.get(id);
    if (!y) continue;
    if (x.status !== y.status) differences.push(`${id}: ${x.status} on ${a.label}, ${y.status} on ${b.label}`);
    else {
      const d = firstDifference(comparable(x), comparable(y));
      if (d) differences.push(`${id}: ${d}`);
    }
  }
  const count = (m: ReadonlyMap<string, JobResult>): RunCounts => {
    const rs = [...m.values()];
    return {
      done: rs.filter((r) => r.status === 'done').length,
      failed: rs.filter((r) => r.status === 'failed').length,
    };
  };
  return { jobs: a.results.size, counts: [count(a.results), count(b.results)], differences };
}
