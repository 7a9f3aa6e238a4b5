/**
 * The part of the ONNX graph builder (src/onnx/graph.ts: GraphBuilder) that graph-writing code below the
 * compiler needs — the field kinds (src/models/fields) write their f(t, z) through it.
 */
import type { Attr } from './attrs.js';

export type DType = 'float32' | 'float64' | 'int64';
export type InitData = Float32Array | Float64Array | BigInt64Array;

export interface GraphWriter {
  readonly float: 'float32' | 'float64';
  /**
   * onnxruntime's channel block (8 or 16) when the graph runs only inside onnxruntime's CPU provider on
   * this machine (the engines' own graphs), so conv fields may use its blocked-channel (NCHWc) kernels;
   * 0 for portable ONNX (files users keep), which never contains them.
   */
  readonly nchwcBlock: number;
  op(op: string, inputs: readonly string[], attrs?: Record<string, Attr>, out?: string): string;
  /** A float constant of the graph's float type. */
  scalar(value: number, shape?: readonly number[]): string;
  /** An int64 vector constant. */
  int64s(values: readonly number[]): string;
  /** A constant tensor under a fresh name derived from the hint. */
  initializer(hint: string, dtype: DType, shape: readonly number[], data: InitData): string;
  /**
   * The value `make` returns, made once per graph and key (a weight re-laid out once and shared by every
   * solver stage, say); later calls with the key return it without calling `make`.
   */
  once<T>(key: string, make: () => T): T;
}
