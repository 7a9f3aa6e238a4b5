/**
 * The paper's central effect (Ott et al. 2021): a 2-D Neural ODE without
 * augmentation cannot separate a ball from a surrounding annulus as a true
 * flow, but a 2-step Euler map can. Trained with euler:0.5 it reaches high
 * accuracy under its own solver and collapses under rk4:0.01; trained with
 * rk4:0.05 it keeps its accuracy under the finer solver.
 */
import test from 'ava';
import { initBackend } from '../src/engines/backend.js';
import { evaluateModel } from './helpers/tfjs-evaluate.js';
import { parseSolverSpec } from '../src/solvers/spec.js';
import { trainRun } from '../src/train/run.js';

const base = { dataset: 'spheres:dupont2019:dim=2', field: 'mlp:width=32', seed: 1, batchSize: 128, lr: 1e-3 };

test.before(async () => {
  await initBackend('wasm');
});

test('euler:0.5 exploits the discretisation: ≥ 95 % own solver, loses ≥ 20 points under rk4:0.01', async (t) => {
  const run = await trainRun({ ...base, solver: 'euler:0.5', iterations: 1000 });
  const [own, fine] = evaluateModel(run.model, run.dataset.test, [
    parseSolverSpec('euler:0.5'),
    parseSolverSpec('rk4:0.01'),
  ]);
  t.log(`euler:0.5 → own ${own!.accuracy}, rk4:0.01 ${fine!.accuracy}`);
  t.true(own!.accuracy >= 0.95, `own-solver accuracy ${own!.accuracy}`);
  t.true(own!.accuracy - fine!.accuracy >= 0.2, `drop ${own!.accuracy - fine!.accuracy}`);
});

test('rk4:0.05 keeps ODE semantics: loses ≤ 2 points under rk4:0.01', async (t) => {
  const run = await trainRun({ ...base, solver: 'rk4:0.05', iterations: 250 });
  const [own, fine] = evaluateModel(run.model, run.dataset.test, [
    parseSolverSpec('rk4:0.05'),
    parseSolverSpec('rk4:0.01'),
  ]);
  t.log(`rk4:0.05 → own ${own!.accuracy}, rk4:0.01 ${fine!.accuracy}`);
  t.true(own!.accuracy > 0.6, `the model learned something: ${own!.accuracy}`);
  t.true(own!.accuracy - fine!.accuracy <= 0.02, `drop ${own!.accuracy - fine!.accuracy}`);
});
