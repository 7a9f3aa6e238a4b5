import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SpecError } from '../src/errors.js';
import { countCrossings } from '../src/audit/crossing.js';
import { fanStats } from '../src/audit/fan.js';
import {
  accuracyVsStepsSvg,
  adaptationSvg,
  fanSvg,
  renderVegaLite,
  svgToPng,
  trajectoriesSvg,
  writeAccuracyVsStepsPlot,
  writeAdaptationPlot,
  writeFanPlot,
  writePlot,
  writeTrajectoriesPlot,
  type AccuracyCurve,
} from '../src/report/figures.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Text content of every <text> element (vega writes labels as plain text nodes). */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

function assertSvg(t: import('ava').ExecutionContext, svg: string): void {
  t.true(svg.startsWith('<svg'), svg.slice(0, 80));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.false(/NaN/.test(svg.replace(/aria-label="[^"]*"/g, '')), 'no NaN coordinates');
}

const curves: AccuracyCurve[] = [0.5, 0.1].map((h) => ({
  label: `euler h=${h}`,
  points: [0.5, 1, 2].flatMap((f) => [
    { x: Math.round(f / h), accuracy: h > 0.2 ? 0.6 + 0.1 * f : 0.95, testSolver: 'euler' },
    { x: Math.round(f / h), accuracy: h > 0.2 ? 0.62 : 0.94, testSolver: 'rk4' },
  ]),
  train: { x: Math.round(1 / h), accuracy: h > 0.2 ? 0.97 : 0.95 },
}));

test('accuracy vs test steps: axis titles, legends, train marker, log x', async (t) => {
  const svg = await accuracyVsStepsSvg(curves, { title: 'Euler-trained models' });
  assertSvg(t, svg);
  const labels = texts(svg);
  for (const s of [
    'number of test steps',
    'test accuracy',
    'training configuration',
    'euler h=0.5',
    'euler h=0.1',
    'test solver',
    'rk4',
    'train solver',
    'Euler-trained models',
  ]) {
    t.true(labels.includes(s), `missing "${s}"`);
  }
  // Log axis: the decade ticks 1 and 10 are labelled.
  t.true(labels.includes('10'));
  t.true(svg.includes('training configuration: euler h=0.1'));
});

test('accuracy vs 1/tol variant for adaptive solvers', async (t) => {
  const svg = await accuracyVsStepsSvg(
    [
      {
        label: 'dopri5 tol=1e-3',
        points: [1e-2, 1e-3, 1e-4].map((tol) => ({ x: tol, accuracy: 0.9 })),
        train: { x: 1e-3, accuracy: 0.91 },
      },
    ],
    { xKind: 'tol' },
  );
  assertSvg(t, svg);
  const labels = texts(svg);
  t.true(labels.includes('1 / tolerance (test)'));
  t.true(labels.includes('dopri5 tol=1e-3'));
  t.true(svg.includes('1 / tolerance (test): 1000;'));
  t.true(svg.includes('values from 100 to 10,000'));
});

test('trajectories: classes, crossing pairs highlighted, start/end markers, projection of d > 2', async (t) => {
  const traj = [Float64Array.of(0, 0, 1, 0, 0, 3, 1, 3), Float64Array.of(1, 1, 0, 1, 0, 4, 1, 4)];
  const cr = countCrossings(traj, { n: 4, d: 2, listPairs: true });
  t.is(cr.crossings, 1);
  const svg = await trajectoriesSvg(
    { trajectory: traj, n: 4, d: 2, labels: [0, 1, 0, 1], crossings: cr },
    { title: 'two swap' },
  );
  assertSvg(t, svg);
  const labels = texts(svg);
  for (const s of ['z₁', 'z₂', 'class 0', 'class 1', 'crossing pair', 'start', 'end', 'marker'])
    t.true(labels.includes(s), `missing "${s}"`);
  t.true(svg.includes('stroke="#000000"'), 'highlight colour used');
  // Without crossings there is no highlight legend entry.
  const plain = await trajectoriesSvg({ trajectory: traj, n: 4, d: 2 });
  t.false(texts(plain).includes('crossing pair'));
  // d = 3 is projected: axis titles say so.
  const t3 = [Float64Array.of(0, 0, 0, 1, 0, 0.1, 0, 2, 0), Float64Array.of(1, 1, 0, 0, 1, 0.1, 1, 2, 0)];
  const svg3 = await trajectoriesSvg({ trajectory: t3, n: 3, d: 3 });
  t.true(texts(svg3).some((s) => s.startsWith('PC 1')));
  // 1-D: time on x.
  const svg1 = await trajectoriesSvg({
    trajectory: [Float64Array.of(0, 1), Float64Array.of(1, 0)],
    n: 2,
    d: 1,
    crossings: [{ i: 0, j: 1 }],
  });
  t.true(texts(svg1).includes('step / K'));
  await t.throwsAsync(trajectoriesSvg({ trajectory: traj, n: 4, d: 2, labels: [0] }), { instanceOf: SpecError });
});

test('fan: mean line and band per class on log y', async (t) => {
  const n = 20;
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  const solver = [0, 1, 2, 3].map((k) =>
    Float64Array.from({ length: n }, (_, i) => k * 0.01 * (1 + labels[i]!) * (1 + i / n)),
  );
  const reference = [0, 1, 2, 3].map(() => new Float64Array(n));
  const fan = fanStats(solver, reference, labels, { n, d: 1 });
  for (const band of ['std', 'minmax'] as const) {
    const svg = await fanSvg(fan, { band });
    assertSvg(t, svg);
    const labels2 = texts(svg);
    for (const s of ['t', 'global error ‖z_h(t) − z(t)‖', 'class 0', 'class 1'])
      t.true(labels2.includes(s), `missing "${s}"`);
    t.true(svg.includes('aria-roledescription="area mark"'));
  }
});

test('adaptation trace: two panels, log tolerance', async (t) => {
  const points = Array.from({ length: 10 }, (_, i) => ({
    iteration: 50 * i,
    param: 1e-6 * 1.1 ** i,
    trainAccuracy: 0.5 + i / 40,
    testAccuracy: 0.48 + i / 40,
  }));
  const svg = await adaptationSvg({ kind: 'tol', points });
  assertSvg(t, svg);
  const labels = texts(svg);
  for (const s of ['tolerance', 'accuracy', 'iteration', 'train solver', 'test solver', 'Tolerance adaptation'])
    t.true(labels.includes(s), `missing "${s}"`);
  t.true(
    labels.some((s) => /e-6$/.test(s)),
    'log tolerance axis in exponent format',
  );
  const h = await adaptationSvg({
    kind: 'step',
    points: points.map((p) => ({ ...p, param: 0.5 / (1 + p.iteration / 100) })),
  });
  t.true(texts(h).includes('step size h'));
});

test('PNG output has the PNG signature; companions write name.svg and name.png', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'odeness-plots-'));
  try {
    const svg = await accuracyVsStepsSvg(curves);
    const png = await svgToPng(svg, 1);
    t.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    t.true(png.length > 2000);
    const a = await writeAccuracyVsStepsPlot(dir, 'acc', curves, { png: true });
    t.is(a.svgPath, join(dir, 'acc.svg'));
    t.deepEqual((await readFile(a.pngPath!)).subarray(0, 8), PNG_SIGNATURE);
    t.is(await readFile(a.svgPath, 'utf8'), a.svg);
    const b = await writeTrajectoriesPlot(dir, 'traj', {
      trajectory: [Float64Array.of(0, 0), Float64Array.of(1, 1)],
      n: 1,
      d: 2,
    });
    t.is(b.pngPath, undefined);
    t.true((await readFile(b.svgPath, 'utf8')).startsWith('<svg'));
    const f = await writeFanPlot(dir, 'fan', {
      times: [0, 1],
      perClass: [{ label: 0, count: 1, mean: [0, 1], std: [0, 0], min: [0, 1], max: [0, 1], median: [0, 1] }],
    });
    t.true(f.svg.startsWith('<svg'));
    const d = await writeAdaptationPlot(dir, 'adapt', {
      kind: 'step',
      points: [{ iteration: 0, param: 0.1, trainAccuracy: 0.5, testAccuracy: 0.5 }],
    });
    t.true(d.svg.startsWith('<svg'));
    await t.throwsAsync(writePlot(dir, '../evil', svg), { instanceOf: SpecError });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('rendering is offline: a spec that asks to load data fails instead of fetching', async (t) => {
  await t.throwsAsync(
    renderVegaLite({
      data: { url: 'https://example.invalid/data.csv' },
      mark: 'point',
      encoding: { x: { field: 'a', type: 'quantitative' } },
    }),
    {
      instanceOf: SpecError,
      message: /offline/,
    },
  );
  const svg = await renderVegaLite({
    data: { values: [{ a: 1 }] },
    mark: 'point',
    encoding: { x: { field: 'a', type: 'quantitative' } },
  });
  t.false(/<image|href="http/.test(svg));
});

test('accuracy vs test steps: x labels at the tested values, none closer than a label width (8, 9, 10 on a log axis)', async (t) => {
  const xs = [1, 2, 4, 8, 9, 10, 20, 50, 100];
  const svg = await accuracyVsStepsSvg([
    { label: 'euler:0.5', points: xs.map((x) => ({ x, accuracy: 0.5 + 0.5 / x })) },
  ]);
  const axis = svg.slice(svg.indexOf('aria-label="X-axis'), svg.indexOf('aria-label="Y-axis'));
  const labels = [
    ...axis.matchAll(/<text text-anchor="\w+" transform="translate\(([\d.]+),16\)"[^>]*opacity="1">([^<]+)<\/text>/g),
  ].map((m) => ({ x: Number(m[1]), text: m[2]! }));
  t.deepEqual(
    labels.map((l) => l.text),
    ['1', '2', '4', '8', '20', '50', '100'],
  );
  for (let i = 1; i < labels.length; i++)
    t.true(labels[i]!.x - labels[i - 1]!.x >= 26, `${labels[i - 1]!.text} and ${labels[i]!.text} overlap`);
});

test('accuracy vs test steps: equal accuracies (an untrained smoke-run model) still get a readable y axis, not one tick "0.580000"', async (t) => {
  const svg = await accuracyVsStepsSvg([
    { label: 'dopri5:0.1', points: [1, 10, 100].map((x) => ({ x, accuracy: 0.58 })) },
  ]);
  const axis = svg.slice(svg.indexOf('aria-label="Y-axis'));
  const labels = [...axis.matchAll(/<text[^>]*opacity="1">([^<]+)<\/text>/g)]
    .map((m) => m[1]!)
    .filter((s) => /^[\d.]+$/.test(s));
  t.true(labels.length >= 3, labels.join(', '));
  for (const l of labels) t.true(l.length <= 4, `short labels, got ${l}`);
  t.false(labels.includes('0.580000'));
});
