/**
 * Jobs that require a device, on a NATS cluster: a CPU worker hands them back to the queue (it neither
 * runs nor fails them) and a worker with that device runs them; results record the device and adapter.
 * Needs nats-server and a WebGPU adapter (Mesa's lavapipe in CI; see .ci/run); fails loudly without.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { planSpec } from '../src/study/plan.js';
import { parseStudyText as parseStudy } from '../src/study/schema.js';
import { canRunJob } from '../src/cluster/nats-worker.js';
import { ranBy, resultLines, withCluster } from './helpers/cluster.js';
import { tinyStudy, writeStudy } from './helpers/procs.js';

// Dawn (WebGPU over Vulkan) wants a runtime directory; the workers inherit it.
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(os.tmpdir(), 'odeness-xdg-'));

const STUDY = tinyStudy({ grid: '[euler:0.5]', seeds: 2, iterations: 20 });

test("a study file's device key: CPU jobs keep their ids and carry no device; GPU jobs carry it", (t) => {
  const ids = (text: string) => planSpec(parseStudy(text, 's.yaml')).jobs;
  const plain = ids(STUDY);
  const cpu = ids(`${STUDY}device: cpu\n`);
  const gpu = ids(`${STUDY}device: webgpu\n`);
  t.deepEqual(cpu, plain);
  t.true(plain.every((j) => !('device' in j)));
  t.true(gpu.every((j) => j.device === 'webgpu'));
  t.true(
    gpu.every((j, i) => j.id !== plain[i]!.id),
    'a job for another device is another job',
  );
  t.deepEqual(planSpec(parseStudy(STUDY, 's.yaml'), { device: 'webgpu' }).jobs, gpu, '--device is the same as the key');
  const message = /device.*expected one of cpu, webgpu, cuda/;
  t.throws(() => parseStudy(`${STUDY}device: tpu\n`, 's.yaml'), { message });
});

test('which worker takes which job', (t) => {
  t.true(canRunJob('cpu', {}));
  t.false(canRunJob('cpu', { device: 'webgpu' }));
  t.true(canRunJob('webgpu', { device: 'webgpu' }));
  t.true(canRunJob('webgpu', {}), 'a GPU worker also runs CPU jobs');
  t.false(canRunJob('webgpu', { device: 'cuda' }));
});

const CLUSTER_TITLE = 'cluster: a CPU worker leaves webgpu jobs to the webgpu worker; results say device and adapter';
test.serial(CLUSTER_TITLE, async (t) => {
  t.timeout(240_000);
  await withCluster(t, { workers: [{}, { args: ['--device', 'webgpu'] }] }, async ({ dir, a, b, coordinator }) => {
    const file = writeStudy(dir, 's.yaml', `${STUDY}device: webgpu\n`);
    const out = join(dir, 'out');
    const coord = coordinator(file, out);
    t.is(await coord.exited, 0, coord.err());
    const all = resultLines(out);
    t.is(all.length, 2);
    for (const r of all) {
      t.is(r.status, 'done', r.error);
      t.regex(r.worker, new RegExp(`/${b.pid}@webgpu/`), 'run by the webgpu worker');
      t.like(r.metrics, { device: 'webgpu', engine: 'ort' });
      t.regex((r.metrics as { adapter?: string }).adapter ?? '', /\(vulkan, (software|hardware)\)/);
    }
    t.deepEqual(ranBy(a), [], 'the CPU worker ran nothing');
    t.regex(b.err(), /pulling from .*device webgpu/);
  });
});
