// A study's answers do not depend on where it ran: examples/quick-spheres.yaml, smoke-sized (grid and
// adaptation jobs, crossing and fan audits), on the local pool and on a real nats-server with 2 workers.
import test from 'ava';
import { join } from 'node:path';
import { compareRuns, resultsById, type Run } from '../src/study/compare.js';
import { planStudy } from '../src/study/plan.js';
import type { JobResult } from '../src/study/types.js';
import { requirePrerequisite, tempDir, transportEquivalenceRun } from './helpers/procs.js';

const SMOKE = ['--iterations', '2', '--batch-size', '16', '--test-points', '20'];

test.serial(
  'quick-spheres (smoke): the local pool and NATS with 2 workers give the same ids, statuses and metrics',
  async (t) => {
    t.timeout(240_000);
    requirePrerequisite('nats-server');
    const dir = tempDir();
    const s = await transportEquivalenceRun(t, 'examples/quick-spheres.yaml', dir, SMOKE);
    t.true(s.agree);
    const planned = planStudy('examples/quick-spheres.yaml', { iterations: 2, batchSize: 16, testPoints: 20 }).jobs;
    t.deepEqual(s.exit, { local: 0, nats: 0 });
    t.is(s.jobs, planned.length);
    t.deepEqual([...resultsById(join(dir, 'nats')).keys()].sort(), planned.map((j) => j.id).sort());
    t.deepEqual(s.local, { done: planned.length, failed: 0 });
    t.deepEqual(s.nats, s.local);
    t.deepEqual(s.differences, []);

    // The comparison sees what it must: an accuracy, an adapted step, an audit count, a status.
    const local: Run = { label: 'the local pool', results: resultsById(join(dir, 'local')) };
    const nats = resultsById(join(dir, 'nats'));
    const adapted = planned.find((j) => j.adapt)!.id;
    const mutate = (id: string, f: (r: Record<string, any>) => void) => {
      const copy = new Map(nats);
      const r = structuredClone(copy.get(id)!) as Record<string, any>;
      f(r);
      copy.set(id, r as JobResult);
      return compareRuns(local, { label: 'NATS', results: copy }).differences;
    };
    t.regex(mutate(planned[0]!.id, (r) => (r.metrics.evals[0].accuracy += 0.05)).join(), /accuracy/);
    t.regex(mutate(adapted, (r) => (r.metrics.trainSolver = 'euler:0.123')).join(), /trainSolver/);
    t.regex(mutate(planned[0]!.id, (r) => (r.metrics.audits.crossing.crossings += 1)).join(), /crossings/);
    t.regex(mutate(planned[0]!.id, (r) => (r.status = 'failed')).join(), /done on the local pool, failed on NATS/);
    t.deepEqual(
      mutate(planned[0]!.id, (r) => ((r.worker = 'elsewhere'), (r.metrics.trainMs = 1))),
      [],
    );
  },
);
