/**
 * Critical step size / tolerance from trained models on disk: evaluate each
 * (model directory or ONNX bundle, both in onnxruntime) under its training solver and the
 * test solvers, audit it under its training solver (a proof of a non-flow
 * fails it), then apply the critical-step rule per (dataset, field, method).
 *
 * Models of different datasets, fields or training methods are never pooled:
 * a step size means something else for each (an rk4 step of 0.5 is as
 * accurate as many Euler steps; a field's stiffness and a dataset's geometry
 * set how large a step keeps ODE semantics), so one number for all of them
 * would be decided by whichever group fails first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpecError } from '../errors.js';
import { solverParam, parseSolverSpec, type SolverSpec } from '../solvers/spec.js';
import { evaluate } from '../onnx/evaluate.js';
import { formatFieldSpec } from '../models/spec.js';
import {
  atLeastAsAccurate,
  checkThreshold,
  criticalStep,
  DEFAULT_THRESHOLD,
  type CriticalResult,
  type CriticalRow,
} from './critical.js';
import { auditData, openModelSource, type ModelSource } from './source.js';
import { AUDIT_POINTS, crossingAudit } from './audits.js';
import { paperTestSolvers } from '../solvers/test-set.js';
import { loadModel } from '../models/io.js';
import type { Device } from '../onnx/runtime/device.js';

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
  /** Where the sessions run (default cpu). */
  readonly device?: Device;
  /** Audit each model under its training solver; a proof of a non-flow fails it (default true). */
  readonly proofs?: boolean;
}

/** What a critical step is computed over: one dataset, one field, one training method. */
export interface CriticalGroupKey {
  readonly dataset: string;
  /** The field spec (model directories), or the state shape of a bundle (which does not record its field). */
  readonly field: string;
  readonly method: string;
}

export interface CriticalGroup extends CriticalGroupKey, CriticalResult {
  readonly dirs: string[];
}

export interface CriticalFromModels {
  readonly groups: CriticalGroup[];
  /** Why the groups were not pooled (absent with one group). */
  readonly note?: string;
}

interface ModelRow extends CriticalGroupKey {
  readonly dir: string;
  readonly row: CriticalRow;
}

async function fieldOf(dir: string, args: { model?: string }, source: ModelSource): Promise<string> {
  if (args.model) return formatFieldSpec((await loadModel(args.model)).config.field);
  return `a field on states [${source.stateShape.join(', ')}] (${dir}: a bundle does not record its field spec)`;
}

async function modelRow(dir: string, o: CriticalFromModelsOptions): Promise<ModelRow> {
  const args = sourceArgsFor(dir);
  const device = o.device ?? 'cpu';
  const source = await openModelSource({ ...args, device });
  try {
    if (!source.trainSolver)
      throw new SpecError(`${dir}: the training solver is not recorded (manifest.json "trainSolver")`);
    const train = parseSolverSpec(source.trainSolver);
    const tests = o.testSolvers ?? paperTestSolvers(train, source.t0, source.t1);
    const data = await auditData(source, o.dataset);
    const specs = [train, ...tests];
    const results = await evaluate(source, data, specs);
    const [own, ...rest] = results;
    const counted = rest.filter((r) => atLeastAsAccurate(source.trainSolver!, r.spec, source.t0, source.t1));
    if (counted.length === 0) {
      throw new SpecError(
        `${dir}: none of the test solvers is at least as accurate as its training solver ${source.trainSolver}; pass ` +
          `finer --solvers`,
      );
    }
    let nonFlow: string | undefined;
    if ((o.proofs ?? true) && data.n >= 2) {
      const n = Math.min(AUDIT_POINTS, data.n);
      const w = source.inputWidth;
      const audit = await crossingAudit(source, { x: data.x.subarray(0, n * w), y: data.y.subarray(0, n), n }, train);
      if (audit.verdict.conclusion === 'not-an-ode-flow') nonFlow = audit.verdict.text;
    }
    const row: CriticalRow = {
      id: dir,
      trainSpec: source.trainSolver,
      trainParam: solverParam(train, source.t0, source.t1),
      trainAccuracy: own!.accuracy,
      tests: counted.map((r) => ({ spec: r.spec, accuracy: r.accuracy })),
      chance: 1 / source.classes,
      ...(nonFlow ? { nonFlow } : {}),
    };
    return {
      dir,
      dataset: o.dataset ?? source.dataset ?? '(unrecorded dataset)',
      field: await fieldOf(dir, args, source),
      method: train.method,
      row,
    };
  } finally {
    await source.release();
  }
}

export async function criticalFromModels(
  dirs: readonly string[],
  o: CriticalFromModelsOptions = {},
): Promise<CriticalFromModels> {
  checkThreshold(o.threshold ?? DEFAULT_THRESHOLD);
  if (dirs.length === 0) throw new SpecError('give at least one model directory');
  const groups = new Map<string, ModelRow[]>();
  for (const dir of dirs) {
    const m = await modelRow(dir, o);
    const key = JSON.stringify([m.dataset, m.field, m.method]);
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const out: CriticalGroup[] = [...groups.values()].map((ms) => {
    const kind = parseSolverSpec(ms[0]!.row.trainSpec).kind === 'fixed' ? 'step' : 'tol';
    const { dataset, field, method } = ms[0]!;
    return {
      dataset,
      field,
      method,
      ...criticalStep(
        ms.map((m) => m.row),
        { threshold: o.threshold, kind },
      ),
      dirs: ms.map((m) => m.dir),
    };
  });
  if (out.length === 1) return { groups: out };
  const differ = (['dataset', 'field', 'method'] as const).filter((k) => new Set(out.map((g) => g[k])).size > 1);
  return {
    groups: out,
    note:
      `${out.length} groups, one critical value each: the models differ in ${differ.join(', ')}, ` +
      'and a step size means something else for each ' +
      '(a method’s order, a field’s dynamics and a dataset’s geometry ' +
      'set how large a step keeps ODE semantics) — ' +
      'pooled, the first group to fail would decide for all',
  };
}
