/**
 * What an audit runs on: a model source (src/onnx/source.ts — a model
 * directory, a bundle, or a model in memory, all in onnxruntime) and its
 * test data, checked against the model's input and classes.
 */
import { SpecError, ShapeError } from '../errors.js';
import { checkLabelsFitModel } from '../data/limits.js';
import { loadDataset } from '../data/spec.js';
import type { EvalData } from '../onnx/evaluate.js';
import type { ModelSource } from '../onnx/source.js';

export { openModelSource, requireField, type ModelSource, type SourceArgs } from '../onnx/source.js';

/** Audit data: labelled samples of the source's input width (the evaluation's data). */
export type AuditData = EvalData;

/**
 * The test split of `dataset` (a dataset spec, e.g. json:points.json:split=none), else of the dataset the model
 * records.
 */
export async function auditData(source: ModelSource, dataset?: string, maxPoints?: number): Promise<AuditData> {
  let data: AuditData;
  if (dataset) data = (await loadDataset(dataset, source.seed ?? 0)).test;
  else if (source.dataset) data = (await loadDataset(source.dataset, source.seed ?? 0)).test;
  else
    throw new SpecError(
      `${source.dir} does not record its dataset; pass --dataset <spec>, e.g. --dataset json:points.json:split=none`,
    );
  checkLabelsFitModel(dataset ?? source.dataset!, data.y, source.classes);
  if (data.n > 0 && data.x.length / data.n !== source.inputWidth) {
    throw new ShapeError(
      `${dataset ?? source.dataset}: data rows have ${data.x.length / data.n} values but ${source.dir} expects ` +
        `${source.inputWidth}`,
    );
  }
  if (maxPoints !== undefined && data.n > maxPoints) {
    const w = source.inputWidth;
    data = { x: data.x.slice(0, maxPoints * w), y: data.y.slice(0, maxPoints), n: maxPoints };
  }
  return data;
}
