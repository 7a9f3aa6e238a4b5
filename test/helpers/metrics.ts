import type { JobMetrics } from '../../src/formats/index.js';

/** Metrics of a done job as executeJob records them (values made up, the shape real), for store and report tests. */
export function sampleMetrics(trainAccuracy = 0.9): JobMetrics {
  return {
    trainSolver: 'euler:0.5',
    initialSolver: 'euler:0.5',
    trainAccuracy,
    trainNfe: 2,
    finalLoss: 0.3,
    finalBatchAccuracy: trainAccuracy,
    iterations: 10,
    nfe: { forward: 20, backward: 20, checks: 0, total: 40 },
    evals: [{ solver: 'rk4', param: 0.25, spec: 'rk4:0.25', steps: 4, accuracy: trainAccuracy, nfe: 16, accepted: 4, rejected: 0 }],
    backend: 'wasm',
    engine: 'tfjs',
    trainMs: 1,
    evalMs: 1,
  };
}
