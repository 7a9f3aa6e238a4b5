import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileFormatError, SpecError } from '../src/errors.js';
import { loadDataset, loadJsonDataset, readJsonData } from '../src/data/index.js';
import { Rng } from '../src/random.js';

const root = mkdtempSync(join(tmpdir(), 'odeness-json-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function file(content: unknown, raw = false): string {
  const f = join(root, `d${counter++}.json`);
  writeFileSync(f, raw ? String(content) : JSON.stringify(content));
  return f;
}

const ten = {
  x: Array.from({ length: 10 }, (_, i) => [i, -i / 2]),
  y: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0],
};

test('readJsonData: values, labels and width', (t) => {
  const f = file({
    x: [
      [1, 2.5],
      [-3, 1e-3],
      [0, 4],
    ],
    y: [1, 0, 3],
  });
  const d = readJsonData(f);
  t.is(d.n, 3);
  t.is(d.width, 2);
  t.deepEqual(Array.from(d.x), [1, 2.5, -3, Math.fround(1e-3), 0, 4]);
  t.true(d.x instanceof Float32Array);
  t.true(d.y instanceof Int32Array);
  t.deepEqual(Array.from(d.y), [1, 0, 3]);
});

test('dataset: seeded 80/20 split, disjoint, classes = max(y)+1', (t) => {
  const f = file(ten);
  const d = loadJsonDataset({ file: f, rng: new Rng(4) });
  t.is(d.classes, 3);
  t.deepEqual(d.inputShape, [2]);
  t.is(d.train.n, 8);
  t.is(d.test.n, 2);
  t.is(d.spec, `json:${f}`);
  t.regex(d.name, /^json-d\d+$/);
  const firsts = [...d.train.x.filter((_, k) => k % 2 === 0), ...d.test.x.filter((_, k) => k % 2 === 0)].sort(
    (a, b) => a - b,
  );
  t.deepEqual(firsts, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (let i = 0; i < d.train.n; i++) t.is(d.train.y[i], ten.y[d.train.x[2 * i]!]);
  const again = loadJsonDataset({ file: f, rng: new Rng(4) });
  t.deepEqual(Array.from(again.test.x), Array.from(d.test.x));
  const splits = [5, 6, 7, 8].map((seed) => Array.from(loadJsonDataset({ file: f, rng: new Rng(seed) }).test.x).join());
  t.true(splits.some((s) => s !== Array.from(d.test.x).join()));
  t.is(loadJsonDataset({ file: f, rng: new Rng(4), split: 0.5 }).test.n, 5);
});

test('split=none keeps all rows in order for evaluation; classes and shape options', (t) => {
  const f = file({
    x: [
      [0, 0, 0, 1],
      [1, 1, 1, 1],
    ],
    y: [0, 1],
  });
  const d = loadJsonDataset({ file: f, rng: new Rng(1), split: 'none', classes: 4, shape: [1, 2, 2] });
  t.is(d.train.n, 2);
  t.is(d.test.n, 2);
  t.deepEqual(Array.from(d.test.x), [0, 0, 0, 1, 1, 1, 1, 1]);
  t.is(d.classes, 4);
  t.deepEqual(d.inputShape, [1, 2, 2]);
  t.is(d.spec, `json:${f}:split=none,classes=4,shape=1x2x2`);
  t.throws(() => loadJsonDataset({ file: f, rng: new Rng(1), split: 'none', classes: 1 }), {
    instanceOf: FileFormatError,
    message: `${f}: label 1 found, but classes=1 allows only 0…0`,
  });
  t.throws(() => loadJsonDataset({ file: f, rng: new Rng(1), split: 'none', shape: [3] }), {
    instanceOf: FileFormatError,
    message: /rows have 4 values, but shape 3 needs 3/,
  });
  t.throws(() => loadJsonDataset({ file: f, rng: new Rng(1), split: 0.2 }), {
    instanceOf: FileFormatError,
    message: /use split=none/,
  });
  t.throws(() => loadJsonDataset({ file: f, rng: new Rng(1), split: 1 }), {
    instanceOf: SpecError,
    message: /split must be a test fraction/,
  });
});

test('loadDataset("json:<file>:split=none")', async (t) => {
  const f = file(ten);
  const d = await loadDataset(`json:${f}:split=none`, 0);
  t.is(d.train.n, 10);
  t.is(d.spec, `json:${f}:split=none`);
});

const cases: [string, unknown, boolean, string][] = [
  ['not JSON', '{"x": [[1, 2]', true, 'not valid JSON: '],
  ['top level array', [[1, 2]], false, 'expected a JSON object {"x": [[...], ...], "y": [...]}'],
  ['x missing', { y: [0] }, false, 'field "x" is missing; expected an array of numeric rows'],
  ['x not array', { x: 3, y: [0] }, false, 'field "x" is not an array; expected an array of numeric rows'],
  ['x empty', { x: [], y: [] }, false, 'field "x" is empty; expected at least one row'],
  ['y missing', { x: [[1]] }, false, 'field "y" is missing; expected an array of integer labels'],
  ['length mismatch', { x: [[1], [2]], y: [0] }, false, '"y" has 1 labels but "x" has 2 rows'],
  [
    'row width',
    {
      x: [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8, 9, 10],
      ],
      y: [0, 0, 0, 0],
    },
    false,
    'x[3] has 4 values, expected 2',
  ],
  ['empty first row', { x: [[]], y: [0] }, false, 'x[0] is empty; expected at least one value per row'],
  ['row not array', { x: [[1], 5], y: [0, 0] }, false, 'x[1] is 5, expected an array of numbers'],
  [
    'string value',
    {
      x: [
        [1, 2],
        ['a', 2],
      ],
      y: [0, 0],
    },
    false,
    'x[1][0] is "a", expected a finite number',
  ],
  [
    'null value (NaN in JSON.stringify)',
    {
      x: [
        [1, 2],
        [3, Number.NaN],
      ],
      y: [0, 0],
    },
    false,
    'x[1][1] is null, expected a finite number',
  ],
  ['overflowing number', '{"x": [[1e400]], "y": [0]}', true, 'x[0][0] is Infinity, expected a finite number'],
  ['negative label', { x: [[1], [2], [3]], y: [0, 1, -1] }, false, 'y[2] is -1, expected a non-negative integer label'],
  ['fractional label', { x: [[1]], y: [1.5] }, false, 'y[0] is 1.5, expected a non-negative integer label'],
  ['string label', { x: [[1]], y: ['1'] }, false, 'y[0] is "1", expected a non-negative integer label'],
];

for (const [name, content, raw, detail] of cases) {
  test(`readJsonData rejects: ${name}`, (t) => {
    const f = file(content, raw);
    const e = t.throws(() => readJsonData(f), { instanceOf: FileFormatError });
    t.true(e!.message.startsWith(`${f}: ${detail}`), e!.message);
    t.is((e as FileFormatError).file, f);
  });
}

test('readJsonData: missing file and directory', (t) => {
  const missing = join(root, 'nope.json');
  t.throws(() => readJsonData(missing), { instanceOf: FileFormatError, message: `${missing}: file not found` });
  t.throws(() => readJsonData(root), {
    instanceOf: FileFormatError,
    message: `${root}: is a directory, expected a JSON file`,
  });
});
