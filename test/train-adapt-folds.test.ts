/**
 * Issue 24, finding 1 (beyond the paper): adaptation that also checks folds.
 * A step whose map folds space on the check batch is shrunk even when the
 * accuracies agree; a larger step is taken only if it does not fold. Through
 * the real CLI: `train --adapt --adapt-folds` records each check's folds, and
 * the real fold check (audit/adapt-folds.ts) finds the folds of a coarse step.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_ADAPT, fixedAdaptStep, type FoldProbe } from '../src/train/adapt.js';
import { runCli } from './helpers/cli.js';

const agree = () => ({ accuracy: 0.9, nfe: 4 });
const folds =
  (hFolds: (h: number) => boolean): FoldProbe =>
  async (s) => ({ folded: hFolds(s.h!) ? 5 : 0, states: 100, nfe: 8 });

test('a folding step shrinks though the accuracies agree; a step grows only to a size that does not fold', async (t) => {
  const o = { ...DEFAULT_ADAPT, folds: true };
  const folding = await fixedAdaptStep(
    50,
    { kind: 'fixed', method: 'rk4', h: 1 },
    0.9,
    4,
    agree,
    o,
    1,
    folds(() => true),
  );
  t.is(folding.decision.action, 'shrink');
  t.is(folding.spec.h, 0.5);
  t.like(folding.decision, { folded: 5, foldStates: 100 });
  const paper = await fixedAdaptStep(50, { kind: 'fixed', method: 'rk4', h: 0.5 }, 0.9, 4, agree, DEFAULT_ADAPT);
  t.is(paper.decision.action, 'grow', "the paper's adaptation grows: accuracy alone cannot see the fold");
  const blocked = await fixedAdaptStep(
    50,
    { kind: 'fixed', method: 'rk4', h: 0.5 },
    0.9,
    4,
    agree,
    o,
    1,
    folds((h) => h > 0.5),
  );
  t.like(blocked.decision, { action: 'keep', folded: 0, trialFolded: 5 });
  t.is(blocked.spec.h, 0.5);
  const grows = await fixedAdaptStep(
    50,
    { kind: 'fixed', method: 'rk4', h: 0.5 },
    0.9,
    4,
    agree,
    o,
    1,
    folds(() => false),
  );
  t.like(grows.decision, { action: 'grow', trialFolded: 0 });
});

test('train --adapt --adapt-folds: every check records its folds; a folding step is shrunk', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'odeness-adapt-folds-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  const bad = await runCli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2',
    '--solver',
    'rk4:1',
    '--adapt-folds',
    '--out',
    path.join(out, 'x'),
  ]);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /--adapt-folds adds fold checks to --adapt; add --adapt/);
  const r = await runCli([
    'train',
    '--dataset',
    'spheres:dupont2019:dim=2,n=256,testN=50',
    '--field',
    'mlp:width=16',
    '--solver',
    'euler:1',
    '--adapt',
    '--adapt-start',
    'spec',
    '--adapt-folds',
    '--adapt-every',
    '10',
    '--iterations',
    '30',
    '--lr',
    '0.05',
    '--out',
    path.join(out, 'm'),
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const adaptation: { folded?: number; foldStates?: number; action: string; paramBefore: number }[] = JSON.parse(
    r.stdout,
  ).adaptation;
  t.is(adaptation.length, 3);
  t.log(adaptation.map((d) => `${d.paramBefore}: ${d.folded}/${d.foldStates} ${d.action}`).join(', '));
  t.true(
    adaptation.some((d) => d.folded! > 0),
    'euler:1 on spheres folds space',
  );
  for (const d of adaptation) t.true(d.folded !== undefined && d.foldStates! > 0, JSON.stringify(d));
  for (const d of adaptation.filter((x) => x.folded! > 0))
    t.is(d.action, 1 / d.paramBefore >= 500 ? 'hold' : 'shrink', 'a folding step never stays or grows');
});
