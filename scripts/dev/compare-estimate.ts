/**
 * The study estimate against a measured run, per group: what `study plan` prices (src/study/estimate.ts, from this
 * machine's cached calibration) beside what the study's results.jsonl measured (timings.ms, metrics.trainMs,
 * metrics.evalMs), for grid and adaptation jobs apart. A development aid for tuning price.ts and calibrate.ts.
 *
 *   npx tsx scripts/dev/compare-estimate.ts RUN_DIR [pool|nats] [workers]
 *
 * RUN_DIR holds plan.json and results.jsonl (a `study run --out`). Priced columns: overhead, build, train, eval,
 * audit (serial ms of the group's jobs); measured: the jobs' wall ms, of which training (builds included) and
 * evaluation, the rest being bundle writing, audits and overhead. Transport cost and the wall-time estimate are
 * printed for the whole plan, beside the run's first start to last finish.
 */
import { readFileSync } from 'node:fs';
import { estimateWork, type WallBreakdown } from '../../src/study/estimate.js';
import type { StudyPlan } from '../../src/study/plan.js';
import { parseSolverSpec } from '../../src/solvers/spec.js';
import type { Job } from '../../src/study/types.js';

interface Measured {
  n: number;
  ms: number;
  train: number;
  ev: number;
}
interface Result {
  job: Job;
  timings: { ms: number; startedAt: string; finishedAt: string };
  metrics?: { trainMs?: number; evalMs?: number };
}

const [dir, transportArg, workersArg] = process.argv.slice(2);
if (!dir) {
  console.error('usage: compare-estimate.ts RUN_DIR [pool|nats] [workers]');
  process.exit(2);
}
const transport = transportArg === 'nats' ? 'nats' : 'pool';
const workers = Number(workersArg ?? 2);
const plan = JSON.parse(readFileSync(`${dir}/plan.json`, 'utf8')) as StudyPlan;
const lines = readFileSync(`${dir}/results.jsonl`, 'utf8').trim().split('\n');
const results = lines.map((l) => JSON.parse(l) as Result);

const keyOf = (j: Job) =>
  `${j.dataset}|${j.field}|${parseSolverSpec(j.trainSolver).kind}|${j.adapt ? 'adapt' : 'grid'}`;
const measured = new Map<string, Measured>();
for (const r of results) {
  const m = measured.get(keyOf(r.job)) ?? { n: 0, ms: 0, train: 0, ev: 0 };
  m.n++;
  m.ms += r.timings.ms;
  m.train += r.metrics?.trainMs ?? 0;
  m.ev += r.metrics?.evalMs ?? 0;
  measured.set(keyOf(r.job), m);
}

const s = (ms: number) => (ms / 1000).toFixed(1);
const total = (b: WallBreakdown) => b.overheadMs + b.buildMs + b.trainMs + b.evalMs + b.auditMs;
const subsets = new Map<string, Job[]>();
for (const j of plan.jobs) subsets.set(keyOf(j), [...(subsets.get(keyOf(j)) ?? []), j]);
let priced = 0;
let meas = 0;
// Adaptation jobs are priced around their method's grid (estimate.ts): priced with every grid job, less the grid's.
const grid = plan.jobs.filter((j) => !j.adapt);
const gridOnly = await estimateWork({ ...plan, jobs: grid }, { workers, transport });
const less = (a: WallBreakdown, b: WallBreakdown) =>
  Object.fromEntries(
    Object.entries(a).map(([k, v]) => [k, v - b[k as keyof WallBreakdown]]),
  ) as unknown as WallBreakdown;
for (const [key, jobs] of subsets) {
  const adapt = jobs[0]!.adapt;
  const est = await estimateWork({ ...plan, jobs: adapt ? [...grid, ...jobs] : jobs }, { workers, transport });
  const b = adapt ? less(est.breakdown!, gridOnly.breakdown!) : est.breakdown!;
  const m = measured.get(key) ?? { n: 0, ms: 0, train: 0, ev: 0 };
  const p = total(b);
  priced += p;
  meas += m.ms;
  console.log(
    `${key.replace(/,testN=\d+|:channels=\d+/g, '').padEnd(44)} jobs ${String(jobs.length).padStart(3)}`,
    `priced ${s(p).padStart(6)} meas ${s(m.ms).padStart(6)} ratio ${(m.ms / p).toFixed(2)}`,
    `| priced ovh ${s(b.overheadMs)} build ${s(b.buildMs)} train ${s(b.trainMs)} eval ${s(b.evalMs)}`,
    `audit ${s(b.auditMs)} | meas train ${s(m.train)} eval ${s(m.ev)} rest ${s(m.ms - m.train - m.ev)}`,
  );
}
const est = await estimateWork(plan, { workers, transport });
const t0 = Math.min(...results.map((r) => Date.parse(r.timings.startedAt)));
const t1 = Math.max(...results.map((r) => Date.parse(r.timings.finishedAt)));
console.log(
  `serial: priced ${s(priced)} s, measured ${s(meas)} s (${(meas / priced).toFixed(2)}×);`,
  `wall estimate ${s(est.wallMs ?? 0)} s on ${workers} ${transport} workers`,
  `(transport ${s(est.breakdown?.transportMs ?? 0)} s, start ${s(est.transportCost?.startupMs ?? 0)} s);`,
  `results first start to last finish ${s(t1 - t0)} s`,
);
