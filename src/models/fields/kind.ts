/**
 * What one field kind (MLP, conv1d, conv2d, …) supplies, so that spec
 * parsing, parameter shapes, initialisation, the tfjs forward pass, the ONNX
 * graph and the onnxruntime engines are written once per kind (one module in
 * this folder) and nowhere else switch on the kind.
 */
import type * as tf from '@tensorflow/tfjs';
import type { GraphWriter } from '../../graph/ir/writer.js';
import type { OptionDef, OptionValues } from './options.js';

export interface ParamShape {
  readonly name: string;
  readonly shape: readonly number[];
  /** Fan-in for Kaiming init; 0 marks a bias (initialised to zero). */
  readonly fanIn: number;
}

export interface FieldGraphContext {
  readonly g: GraphWriter;
  /** Graph value of a parameter ("field.0.weight"), added once and shared by every stage. */
  param(name: string): string;
  /** Per-sample state shape (canonical layout: [D] or [C, H, W]). */
  readonly stateShape: readonly number[];
  /** State [B, ...stateShape]. */
  readonly z: string;
  /** Time, a one-element tensor; given when usesTime(spec). */
  readonly t?: string;
  /** Name of the output value (fresh when absent). */
  readonly out?: string;
}

/** A field closure over tfjs tensors; image states are NHWC (tfjs's conv layout). */
export type TfField = (t: number, z: tf.Tensor) => tf.Tensor;

export interface FieldKind<S extends { readonly kind: string }> {
  readonly kind: S['kind'];
  /** One line for --help: the spec syntax. */
  readonly usage: string;
  /** Spec options with their bounds and defaults. */
  readonly options: readonly OptionDef[];
  fromOptions(o: OptionValues): S;
  /** Canonical spec string (every option spelled out); `located`: with where a field brought as a file lies here. */
  format(spec: S, located?: boolean): string;
  /** True when only the ort engine trains it (a graph brought as a file has no tfjs forward pass). */
  readonly ortOnly?: boolean;
  /** Rank of the per-sample state it works on: 1 = vector [D], 3 = image [C, H, W]; absent: checkState decides. */
  readonly stateRank?: 1 | 3;
  /** For kinds whose state shape is fixed by the spec (an imported graph): a one-line ShapeError on a mismatch. */
  checkState?(spec: S, stateShape: readonly number[]): void;
  /** Initial values of some parameters (an imported graph's own weights); the others get Kaiming init. */
  initial?(spec: S): Readonly<Record<string, Float32Array>>;
  /**
   * The portable field.onnx of a trained model, for kinds that bring their own graph: that graph with the
   * trained parameter values (its names kept, so the weights load back where they came from).
   */
  exportGraph?(spec: S, params: Readonly<Record<string, { readonly data: Float32Array }>>): Uint8Array;
  /** Field parameter shapes ("field.<layer>.weight|bias"), in a fixed order. */
  params(spec: S, stateShape: readonly number[]): ParamShape[];
  /** Values of the widest hidden activation per sample (sizes evaluation chunks: models/memory.ts). */
  hiddenValues(spec: S, stateShape: readonly number[]): number;
  /**
   * Values one field evaluation keeps per sample for its backward pass: every hidden layer's output and
   * the activation after it (sizes a job's training memory: src/study/job-memory.ts).
   */
  activationValues(spec: S, stateShape: readonly number[]): number;
  /** True when f depends on t (the graphs then take a t input). */
  usesTime(spec: S): boolean;
  /** The tfjs forward pass; weight re-layouts happen here, once per call. */
  tfField(spec: S, vars: Readonly<Record<string, tf.Tensor>>, stateShape: readonly number[]): TfField;
  /** Append f(t, z) to an ONNX graph; returns the name of dz [B, ...stateShape]. */
  appendGraph(spec: S, ctx: FieldGraphContext): string;
}
