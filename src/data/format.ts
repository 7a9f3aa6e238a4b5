/**
 * The parsed form of a dataset spec and its canonical string. Kept apart from
 * spec.ts (the parser and loader) so that each loader can state the spec of
 * the dataset it built without an import cycle.
 */

export interface SpheresDatasetSpec {
  readonly kind: 'spheres';
  readonly preset: 'ott2021' | 'dupont2019';
  readonly dim: number;
  readonly n?: number;
  readonly testN?: number;
}

export interface MnistDatasetSpec {
  readonly kind: 'mnist';
  readonly size?: number;
  readonly n?: number;
  readonly testN?: number;
}

export interface Cifar10DatasetSpec {
  readonly kind: 'cifar10';
  readonly dir: string;
  readonly limit?: number;
  readonly testN?: number;
}

export interface JsonDatasetSpec {
  readonly kind: 'json';
  readonly file: string;
  readonly split?: number | 'none';
  readonly classes?: number;
  readonly shape?: readonly number[];
}

export type DatasetSpec = SpheresDatasetSpec | MnistDatasetSpec | Cifar10DatasetSpec | JsonDatasetSpec;

function opts(pairs: [string, string | number | undefined][]): string[] {
  return pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
}

/** Canonical string; parseDatasetSpec(formatDatasetSpec(s)) deep-equals s. */
export function formatDatasetSpec(s: DatasetSpec): string {
  switch (s.kind) {
    case 'spheres':
      return (
        `spheres:${s.preset}:` +
        opts([
          ['dim', s.dim],
          ['n', s.n],
          ['testN', s.testN],
        ]).join(',')
      );
    case 'mnist': {
      const o = opts([
        ['size', s.size],
        ['n', s.n],
        ['testN', s.testN],
      ]);
      return o.length ? `mnist:${o.join(',')}` : 'mnist';
    }
    case 'cifar10':
      return (
        'cifar10:' +
        opts([
          ['dir', s.dir],
          ['limit', s.limit],
          ['testN', s.testN],
        ]).join(',')
      );
    case 'json': {
      const o = opts([
        ['split', s.split],
        ['classes', s.classes],
        ['shape', s.shape?.join('x')],
      ]);
      return o.length ? `json:${s.file}:${o.join(',')}` : `json:${s.file}`;
    }
  }
}
