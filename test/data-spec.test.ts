import test from 'ava';
import { SpecError } from '../src/errors.js';
import { formatDatasetSpec, loadDataset, makeSpheres, parseDatasetSpec, type DatasetSpec } from '../src/data/index.js';
import { Rng } from '../src/random.js';

test('parses each form', (t) => {
  t.deepEqual(parseDatasetSpec('spheres:ott2021:dim=2'), { kind: 'spheres', preset: 'ott2021', dim: 2 });
  t.deepEqual(parseDatasetSpec(' spheres:dupont2019:dim=900,n=500:testN=50 '), {
    kind: 'spheres',
    preset: 'dupont2019',
    dim: 900,
    n: 500,
    testN: 50,
  });
  t.deepEqual(parseDatasetSpec('mnist'), { kind: 'mnist' });
  t.deepEqual(parseDatasetSpec('mnist:size=14'), { kind: 'mnist', size: 14 });
  t.deepEqual(parseDatasetSpec('mnist:size=7,n=100,testN=20'), { kind: 'mnist', size: 7, n: 100, testN: 20 });
  t.deepEqual(parseDatasetSpec('cifar10:dir=/data/cifar-10-batches-bin'), {
    kind: 'cifar10',
    dir: '/data/cifar-10-batches-bin',
  });
  t.deepEqual(parseDatasetSpec('cifar10:/data/c'), { kind: 'cifar10', dir: '/data/c' });
  t.deepEqual(parseDatasetSpec('cifar10:dir=/d,limit=5000,testN=1000'), {
    kind: 'cifar10',
    dir: '/d',
    limit: 5000,
    testN: 1000,
  });
  t.deepEqual(parseDatasetSpec('json:data/points.json'), { kind: 'json', file: 'data/points.json' });
  t.deepEqual(parseDatasetSpec('json:file=a.json'), { kind: 'json', file: 'a.json' });
  t.deepEqual(parseDatasetSpec('json:a.json:split=none,classes=3,shape=1x2x2'), {
    kind: 'json',
    file: 'a.json',
    split: 'none',
    classes: 3,
    shape: [1, 2, 2],
  });
  t.deepEqual(parseDatasetSpec('json:a.json:split=0.25'), { kind: 'json', file: 'a.json', split: 0.25 });
});

test('paths may contain ":" and "," when no key= follows', (t) => {
  t.deepEqual(parseDatasetSpec('json:C:\\data\\x,y.json'), { kind: 'json', file: 'C:\\data\\x,y.json' });
  t.deepEqual(parseDatasetSpec('cifar10:dir=/mnt/a:b,c/cifar:limit=10'), {
    kind: 'cifar10',
    dir: '/mnt/a:b,c/cifar',
    limit: 10,
  });
});

test('format round-trips', (t) => {
  const specs: DatasetSpec[] = [
    { kind: 'spheres', preset: 'ott2021', dim: 10 },
    { kind: 'spheres', preset: 'dupont2019', dim: 2, n: 100, testN: 30 },
    { kind: 'mnist' },
    { kind: 'mnist', size: 14, testN: 10 },
    { kind: 'cifar10', dir: '/x/y', limit: 10 },
    { kind: 'json', file: 'f.json' },
    { kind: 'json', file: 'dir/f.json', split: 'none', shape: [1, 28, 28] },
    { kind: 'json', file: 'f.json', split: 0.1, classes: 5 },
  ];
  for (const s of specs) t.deepEqual(parseDatasetSpec(formatDatasetSpec(s)), s);
  t.is(formatDatasetSpec({ kind: 'spheres', preset: 'ott2021', dim: 3, n: 10 }), 'spheres:ott2021:dim=3,n=10');
  t.is(formatDatasetSpec({ kind: 'mnist', size: 14 }), 'mnist:size=14');
});

const rejects: [string, string][] = [
  [
    '',
    'empty dataset spec; expected one of spheres:<preset>:dim=<d>, mnist[:size=14], cifar10:dir=<path>, json:<file>',
  ],
  ['imagenet', 'dataset spec "imagenet": unknown dataset "imagenet"; expected one of spheres, mnist, cifar10, json'],
  ['Spheres:ott2021:dim=2', 'dataset spec "Spheres:ott2021:dim=2": unknown dataset "Spheres"'],
  [
    'spheres',
    'dataset spec "spheres": missing preset; expected spheres:<preset>:dim=<d> with preset one of ott2021, dupont2019',
  ],
  ['spheres:dim=2', 'dataset spec "spheres:dim=2": missing preset'],
  [
    'spheres:ott2022:dim=2',
    'dataset spec "spheres:ott2022:dim=2": unknown spheres preset "ott2022"; expected one of ott2021, dupont2019',
  ],
  [
    'spheres:ott2021',
    'dataset spec "spheres:ott2021": missing dim; expected e.g. spheres:ott2021:dim=2 (dim a positive integer)',
  ],
  ['spheres:ott2021:dim=0', 'dataset spec "spheres:ott2021:dim=0": dim must be a positive integer, got "0"'],
  ['spheres:ott2021:dim=-3', 'dataset spec "spheres:ott2021:dim=-3": dim must be a positive integer, got "-3"'],
  ['spheres:ott2021:dim=2.5', 'dataset spec "spheres:ott2021:dim=2.5": dim must be a positive integer, got "2.5"'],
  ['spheres:ott2021:dim=', 'dataset spec "spheres:ott2021:dim=": dim must be a positive integer, got ""'],
  ['spheres:ott2021:dim=two', 'dataset spec "spheres:ott2021:dim=two": dim must be a positive integer, got "two"'],
  [
    'spheres:ott2021:dim=2,dims=3',
    'dataset spec "spheres:ott2021:dim=2,dims=3": unknown option "dims" for spheres; expected dim, n, testN',
  ],
  ['spheres:ott2021:dim=2,dim=3', 'dataset spec "spheres:ott2021:dim=2,dim=3": option dim given twice'],
  ['spheres:ott2021:dim=2,n=0', 'dataset spec "spheres:ott2021:dim=2,n=0": n must be a positive integer, got "0"'],
  ['mnist:size=5', 'dataset spec "mnist:size=5": size must be one of 28, 14, 7, 4 (28 divided by an integer), got 5'],
  ['mnist:14', 'dataset spec "mnist:14": unexpected "14"; expected mnist or mnist:size=<28|14|7|4>'],
  ['mnist:dim=3', 'dataset spec "mnist:dim=3": unknown option "dim" for mnist; expected size, n, testN'],
  ['cifar10', 'dataset spec "cifar10": missing directory; expected cifar10:dir=<path> (folder with data_batch_*.bin)'],
  ['cifar10:dir=', 'dataset spec "cifar10:dir=": missing directory'],
  ['cifar10:/a:dir=/b', 'dataset spec "cifar10:/a:dir=/b": give the directory once: cifar10:dir=<path>'],
  ['cifar10:dir=/a,limit=x', 'dataset spec "cifar10:dir=/a,limit=x": limit must be a positive integer, got "x"'],
  ['json', 'dataset spec "json": missing file; expected json:<file>'],
  [
    'json:a.json:split=1.5',
    'dataset spec "json:a.json:split=1.5": split must be a test fraction between 0 and 1 (exclusive) or "none", got "1.5"',
  ],
  ['json:a.json:split=0', 'dataset spec "json:a.json:split=0": split must be a test fraction'],
  [
    'json:a.json:shape=1x0',
    'dataset spec "json:a.json:shape=1x0": shape must be positive integers joined by "x", e.g. 1x28x28, got "1x0"',
  ],
  ['json:a.json:classes=0', 'dataset spec "json:a.json:classes=0": classes must be a positive integer, got "0"'],
  [
    'json:a.json:seed=3',
    'dataset spec "json:a.json:seed=3": unknown option "seed" for json; expected file, split, classes, shape',
  ],
];

for (const [spec, message] of rejects) {
  test(`rejects ${JSON.stringify(spec)}`, (t) => {
    const e = t.throws(() => parseDatasetSpec(spec), { instanceOf: SpecError });
    t.true(e!.message.startsWith(message), e!.message);
  });
}

test('loadDataset builds the same data as the direct call and reports the canonical spec', async (t) => {
  const ds = await loadDataset('spheres:ott2021:n=300,dim=3', 9);
  const direct = makeSpheres({ dim: 3, shells: 'ott2021', nTrain: 300, rng: new Rng(9) });
  t.is(ds.spec, 'spheres:ott2021:dim=3,n=300');
  t.is(ds.train.n, 300);
  t.is(ds.test.n, 1000);
  t.deepEqual(Array.from(ds.train.x), Array.from(direct.train.x));
  const viaObject = await loadDataset({ kind: 'spheres', preset: 'ott2021', dim: 3, n: 300 }, 9);
  t.deepEqual(Array.from(viaObject.test.x), Array.from(ds.test.x));
  await t.throwsAsync(loadDataset('spheres:ott2021:dim=0', 1), { instanceOf: SpecError });
});
