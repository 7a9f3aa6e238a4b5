/**
 * A training run's events as one type: what `odeness train` renders and a
 * study's job reports, instead of one callback per kind. `trainHooks` turns
 * one event listener into trainRun's hooks.
 */
import type { AdaptDecision } from './adapt.js';
import type { GraphBuild } from './engine.js';
import type { TrainLogEntry } from './train.js';

export type TrainEvent =
  | { type: 'iteration'; iteration: number }
  | ({ type: 'train-log' } & TrainLogEntry)
  | ({ type: 'graph' } & GraphBuild)
  | ({ type: 'adapt' } & AdaptDecision)
  /** The final test evaluation: field calls so far, of total when known. */
  | { type: 'evaluation'; calls: number; total?: number };

export interface TrainEventHooks {
  onIteration(iteration: number): void;
  onLog(entry: TrainLogEntry): void;
  onGraphBuild(build: GraphBuild): void;
  onAdapt(decision: AdaptDecision): void;
  onEvaluation(calls: number, total?: number): void;
}

export function trainHooks(onEvent: (e: TrainEvent) => void): TrainEventHooks {
  return {
    onIteration: (iteration) => onEvent({ type: 'iteration', iteration }),
    onLog: (entry) => onEvent({ type: 'train-log', ...entry }),
    onGraphBuild: (build) => onEvent({ type: 'graph', ...build }),
    onAdapt: (decision) => onEvent({ type: 'adapt', ...decision }),
    onEvaluation: (calls, total) => onEvent({ type: 'evaluation', calls, ...(total !== undefined ? { total } : {}) }),
  };
}
