/**
 * Where an estimate missed: a run's job time per dataset × field × solver kind against what its plan priced, piece
 * by piece (the plan's breakdown per job; the results' training and evaluation ms, and the rest: overhead, audits,
 * bundle). Sums of job time, not wall time: the workers' parallelism and the transport are the plan's to spread.
 *
 *   npx tsx scripts/estimate-groups.ts PLAN.json OUT/results.jsonl
 *
 * PLAN.json: `study plan FILE --json` with the run's overrides and workers (scripts/estimate-table.ts keeps one
 * per row as DIR/STUDY-TRANSPORT.plan.json).
 */
import { readFileSync } from 'node:fs';
import { parseSolverSpec } from '../src/solvers/spec.js';

const [planFile, resultsFile] = process.argv.slice(2);
if (!planFile || !resultsFile) throw new Error('usage: estimate-groups.ts PLAN.json OUT/results.jsonl');

interface Group {
  dataset: string;
  field: string;
  kind: string;
  jobs: number;
  breakdown?: Record<string, number>;
}
interface Result {
  job: { dataset: string; field: string; trainSolver: string };
  timings?: { ms: number };
  metrics?: { trainMs?: number; evalMs?: number };
}

const groups = (JSON.parse(readFileSync(planFile, 'utf8')).estimate?.groups ?? []) as Group[];
const results = readFileSync(resultsFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Result);
// The plan names fields in full (mlp:width=8,depth=2,…), as results do.
const key = (dataset: string, field: string, kind: string) => `${dataset}\n${field}\n${kind}`;
const measured = new Map<string, { n: number; ms: number; train: number; eval: number }>();
for (const r of results) {
  const k = key(r.job.dataset, r.job.field, parseSolverSpec(r.job.trainSolver).kind);
  const m = measured.get(k) ?? { n: 0, ms: 0, train: 0, eval: 0 };
  m.n++;
  m.ms += r.timings?.ms ?? 0;
  m.train += r.metrics?.trainMs ?? 0;
  m.eval += r.metrics?.evalMs ?? 0;
  measured.set(k, m);
}

const f0 = (x: number) => x.toFixed(0).padStart(6);
const rows: string[] = [
  '| dataset | field | kind | jobs | priced s | measured s | ratio | per job priced: build+train / eval / audit+overhead | measured: train / eval / rest |',
  '|---|---|---|---:|---:|---:|---:|---|---|',
];
let [pricedAll, measuredAll] = [0, 0];
for (const g of groups) {
  const m = measured.get(key(g.dataset, g.field, g.kind));
  if (!m || !g.breakdown) continue;
  const b = g.breakdown;
  const priced =
    (b['overheadMs'] ?? 0) + (b['buildMs'] ?? 0) + (b['trainMs'] ?? 0) + (b['evalMs'] ?? 0) + (b['auditMs'] ?? 0);
  pricedAll += priced;
  measuredAll += m.ms;
  const per = (x: number) => f0(x / g.jobs);
  rows.push(
    `| ${g.dataset} | ${g.field} | ${g.kind} | ${m.n} | ${(priced / 1000).toFixed(1)} | ${(m.ms / 1000).toFixed(1)} | ` +
      `${(m.ms / priced).toFixed(2)} | ${per((b['buildMs'] ?? 0) + (b['trainMs'] ?? 0))} / ${per(b['evalMs'] ?? 0)} / ` +
      `${per((b['auditMs'] ?? 0) + (b['overheadMs'] ?? 0))} | ${f0(m.train / m.n)} / ${f0(m.eval / m.n)} / ` +
      `${f0((m.ms - m.train - m.eval) / m.n)} |`,
  );
}
rows.push(
  `| all | | | ${results.length} | ${(pricedAll / 1000).toFixed(1)} | ${(measuredAll / 1000).toFixed(1)} | ` +
    `${(measuredAll / Math.max(1, pricedAll)).toFixed(2)} | | |`,
);
process.stdout.write(rows.join('\n') + '\n');
