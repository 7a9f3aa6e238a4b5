/**
 * Critical step size / tolerance from trained models on disk: evaluate each
 * (model directory or ONNX bundle, both in onnxruntime) under its training solver and the
 * test solvers, then apply the critical-step rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpecError } from '../errors.js';
import { solverParam, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { evaluate } from '../onnx/evaluate.js';
import { atLeastAsAccurate, checkThreshold, criticalStep, DEFAULT_THRESHOLD, type CriticalResult, type CriticalRow } from './critical.js';
import { auditData, openModelSource } from './source.js';
import { paperTestSolvers } from '../solvers/test-set.js';

/** A bundle when the directory holds field.onnx (ONNX runs faster), else a tfjs model directory. */
export function sourceArgsFor(dir: string): { model?: string; bundle?: string } {
  if (fs.existsSync(path.join(dir, 'field.onnx'))) return { bundle: dir };
  if (fs.existsSync(path.join(dir, 'model.json'))) return { model: dir };
  throw new SpecError(`${dir}: neither a model directory (model.json) nor an ONNX bundle (field.onnx)`);
}

export interface CriticalFromModelsOptions {
  readonly threshold?: number;
  /** Test solvers for every model; default: the paper's set around each model's training solver. */
  readonly testSolvers?: readonly SolverSpec[];
  /** Evaluation data as a dataset spec (its test split); default: each model's own test split. */
  readonly dataset?: string;
}

export async function criticalFromModels(dirs: readonly string[], o: CriticalFromModelsOptions = {}): Promise<CriticalResult & { dirs: string[] }> {
  checkThreshold(o.threshold ?? DEFAULT_THRESHOLD);
  if (dirs.length === 0) throw new SpecError('give at least one model directory');
  const rows: CriticalRow[] = [];
  let kind: 'step' | 'tol' | undefined;
  for (const dir of dirs) {
    const args = sourceArgsFor(dir);
    const source = await openModelSource(args);
    try {
      if (!source.trainSolver) throw new SpecError(`${dir}: the training solver is not recorded (manifest.json "trainSolver")`);
      const train = parseSolverSpec(source.trainSolver);
      const thisKind = train.kind === 'fixed' ? 'step' : 'tol';
      if (kind && kind !== thisKind) throw new SpecError(`${dir}: trained with ${source.trainSolver}; cannot mix fixed-step and adaptive training solvers in one critical-step analysis`);
      kind = thisKind;
      const tests = o.testSolvers ?? paperTestSolvers(train, source.t0, source.t1);
      const data = await auditData(source, o.dataset);
      const specs = [train, ...tests];
      const results = await evaluate(source, data, specs);
      const [own, ...rest] = results;
      const counted = rest.filter((r) => atLeastAsAccurate(source.trainSolver!, r.spec, source.t0, source.t1));
      if (counted.length === 0) {
        throw new SpecError(`${dir}: none of the test solvers is at least as accurate as its training solver ${source.trainSolver}; pass finer --solvers`);
      }
      rows.push({ trainSpec: source.trainSolver, trainParam: solverParam(train, source.t0, source.t1), trainAccuracy: own!.accuracy, tests: counted.map((r) => ({ spec: r.spec, accuracy: r.accuracy })) });
    } finally {
      await source.release();
    }
  }
  return { ...criticalStep(rows, { threshold: o.threshold, kind }), dirs: [...dirs] };
}
