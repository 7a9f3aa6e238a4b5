/**
 * The field registry: every field kind odeness knows, one module each. A new
 * kind is a new module here plus its entry in KINDS; spec parsing, parameter
 * shapes, initialisation, the tfjs forward pass, ONNX graphs and both
 * training engines reach it only through `fieldKind`.
 */
import { SpecError } from '../../errors.js';
import { conv1d } from './conv1d.js';
import { conv2d } from './conv2d.js';
import type { FieldKind } from './kind.js';
import { mlp } from './mlp.js';
import { onnxField } from './onnx.js';

const KINDS = [mlp, conv1d, conv2d, onnxField] as const;

export type FieldSpec = ReturnType<(typeof KINDS)[number]['fromOptions']>;
export type FieldKindName = FieldSpec['kind'];
export const FIELD_KINDS: readonly FieldKindName[] = KINDS.map((k) => k.kind);

const byName = new Map<string, FieldKind<FieldSpec>>(KINDS.map((k) => [k.kind, k as unknown as FieldKind<FieldSpec>]));

/** The module of a field kind, by name or by spec; unknown names are a SpecError. */
export function fieldKind(
  which: string | Pick<FieldSpec, 'kind'>,
  spec = typeof which === 'string' ? which : which.kind,
): FieldKind<FieldSpec> {
  const name = typeof which === 'string' ? which : which.kind;
  const k = byName.get(name);
  if (!k)
    throw new SpecError(`field spec "${spec}": unknown field "${name}"; expected one of ${FIELD_KINDS.join(', ')}`);
  return k;
}

export type { MlpFieldSpec } from './mlp.js';
export type { Conv1dFieldSpec } from './conv1d.js';
export type { Conv2dFieldSpec } from './conv2d.js';
export type { OnnxFieldSpec } from './onnx.js';
export type { Activation } from './graph-ops.js';
export { type FieldGraphContext, type FieldKind, type ParamShape, type TfField } from './kind.js';
export { attr, type Attr } from '../../graph/ir/attrs.js';
export type { GraphWriter } from '../../graph/ir/writer.js';
