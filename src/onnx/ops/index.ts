/**
 * The op registry: every ONNX op the compiler knows, one record each (op.ts), registered once here.
 * A new op is a record in one of the family modules plus nothing else; shape inference (shapes.ts) and
 * reverse-mode autodiff (autodiff.ts) look ops up only through `opDef`.
 */
import { CONV_OPS } from './conv.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { LAYOUT_OPS } from './layout.js';
import { LINEAR_OPS } from './linear.js';
import type { OpDef } from './op.js';
import { REDUCE_OPS } from './reduce.js';

/** One map from op records; registering an op twice is an error. */
export function opRegistry(records: readonly OpDef[]): ReadonlyMap<string, OpDef> {
  const map = new Map<string, OpDef>();
  for (const r of records) {
    if (map.has(r.name)) throw new Error(`ops: op "${r.name}" is already registered`);
    map.set(r.name, r);
  }
  return map;
}

export const OPS = opRegistry([...ELEMENTWISE_OPS, ...LINEAR_OPS, ...LAYOUT_OPS, ...REDUCE_OPS, ...CONV_OPS]);

export function opDef(op: string): OpDef | undefined {
  return OPS.get(op);
}

/** Op types with a gradient rule, sorted. */
export function gradientOps(): string[] {
  return [...OPS.values()].filter((r) => r.grad).map((r) => r.name).sort();
}

export function hasGradient(op: string): boolean {
  return OPS.get(op)?.grad !== undefined;
}

export * from './op.js';
