// Types of scripts/transport-equivalence.mjs for the TypeScript tests.
export interface RunSummary {
  file: string;
  overrides: string[];
  workers: number;
  exit: { local: number; nats: number | undefined };
  jobs: number;
  local: { done: number; failed: number };
  nats: { done: number; failed: number };
  differences: string[];
  agree?: boolean;
  ms?: number;
}
export function comparable(v: unknown): unknown;
export function firstDifference(a: unknown, b: unknown, path?: string): string | undefined;
export function resultsById(dir: string): Map<string, Record<string, unknown> & { id: string; status: string }>;
export function compareRuns(
  local: Map<string, unknown>,
  nats: Map<string, unknown>,
): Pick<RunSummary, 'jobs' | 'local' | 'nats' | 'differences'>;
export function transportEquivalence(
  file: string,
  opts: { workers?: number; overrides?: string[]; dir: string; log?: (m: string) => void },
): Promise<RunSummary>;
