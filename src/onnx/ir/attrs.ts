/**
 * Typed node attributes of the ONNX graph IR (src/onnx/graph.ts stores them, every writer and op record
 * reads them), with the readers that fall back to ONNX's defaults.
 */
export type Attr =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string };

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  ints: (value: readonly number[]): Attr => ({ kind: 'ints', value: [...value] }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  floats: (value: readonly number[]): Attr => ({ kind: 'floats', value: [...value] }),
  string: (value: string): Attr => ({ kind: 'string', value }),
};

/** What the readers need of a node. */
interface HasAttrs {
  readonly attrs: Readonly<Record<string, Attr>>;
}

export function intAttr(n: HasAttrs, key: string, fallback: number): number {
  const a = n.attrs[key];
  return a && a.kind === 'int' ? a.value : fallback;
}

export function intsAttr(n: HasAttrs, key: string): readonly number[] | undefined {
  const a = n.attrs[key];
  return a && a.kind === 'ints' ? a.value : undefined;
}

export function floatAttr(n: HasAttrs, key: string, fallback: number): number {
  const a = n.attrs[key];
  return a && a.kind === 'float' ? a.value : fallback;
}

export function stringAttr(n: HasAttrs, key: string): string | undefined {
  const a = n.attrs[key];
  return a && a.kind === 'string' ? a.value : undefined;
}
