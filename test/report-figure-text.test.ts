/**
 * Issue 24, finding 8 (figures): the crossing figure's title never counts
 * chord artefacts as crossings; the accuracy figure leaves room above the
 * best point (the training-solver diamond is not cut by the frame) and
 * `evaluate --plot` titles it; the fan's t axis has few, non-overlapping labels.
 */
import test from 'ava';
import { crossingTitle } from '../src/cli/plot-output.js';
import { accuracyVsStepsSpec, fanSpec } from '../src/report/figures.js';

const base = {
  examples: [],
  pairsChecked: 4950,
  firstStep: 0,
  projected: false,
  d: 2,
  crossings: 120,
  touchingPairs: 0,
} as unknown as Parameters<typeof crossingTitle>[0];

test('crossing title: persistent crossings and artefacts apart, the spec as people write it', (t) => {
  t.is(
    crossingTitle({
      ...base,
      solver: 'rk4:0.7320500000000003',
      refinement: { persistentPairs: 0, artefactPairs: 120 },
    }),
    'under rk4:0.73205: 0 persistent crossings, 120 chord artefacts',
  );
  t.is(
    crossingTitle({ ...base, solver: 'euler:0.5', refinement: { persistentPairs: 3, artefactPairs: 0 } }),
    'under euler:0.5: 3 persistent crossings',
  );
  t.is(crossingTitle({ ...base, solver: 'euler:0.5' }), 'under euler:0.5: 120 chord crossings (not refined, no proof)');
  t.is(
    crossingTitle({ ...base, solver: 'euler:0.5', projected: true }),
    'under euler:0.5: 120 crossings in 2-D projection (no proof)',
  );
  t.is(crossingTitle({ ...base, solver: 'euler:0.5', crossings: 0 }), 'under euler:0.5: no crossing');
});

test('accuracy figure: the best point (the diamond) lies strictly inside the y domain', (t) => {
  const spec = accuracyVsStepsSpec(
    [
      {
        label: 'trained with euler:0.25',
        points: [
          { x: 2, accuracy: 0.9 },
          { x: 4, accuracy: 1 },
        ],
        train: { x: 4, accuracy: 1 },
      },
    ],
    { title: 'x' },
  ) as unknown as { layer: { encoding: { y: { scale: { domain: number[] } } } }[] };
  const [lo, hi] = spec.layer[0]!.encoding.y.scale.domain as [number, number];
  t.true(hi > 1 && lo < 0.9, `domain ${lo}..${hi}`);
});

test('fan: the t axis asks for few labels and drops overlapping ones', (t) => {
  const times = Array.from({ length: 21 }, (_, k) => k / 20);
  const spec = fanSpec({
    times,
    perClass: [
      { label: 0, mean: times.map((x) => x + 0.01), std: times.map(() => 0.01), min: times, max: times, count: 5 },
    ] as never,
  }) as unknown as { layer: { encoding: { x: { axis: Record<string, unknown> } } }[] };
  t.like(spec.layer[0]!.encoding.x.axis, { tickCount: 6, labelOverlap: 'greedy' });
});
