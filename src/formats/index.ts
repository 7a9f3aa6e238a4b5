/**
 * Every file format and message of odeness, each defined once as a zod schema
 * with its TypeScript type derived from it (z.output). One file per format:
 *
 *   study-file.ts   the study file (YAML/JSON)             StudySpec
 *   job.ts          a job (plan.json, worker messages)      Job, JOB_LIMITS
 *   result.ts       a job's result / results.jsonl line     JobResult, JobMetrics
 *   plan-file.ts    plan.json                               PlanFile
 *   manifest.ts     a bundle's manifest.json                BundleManifest
 *   model-file.ts   a model directory's model.json          ModelFile, TrainingInfo
 *   checkpoint-file.ts  its checkpoint.json (train --resume)  CheckpointFile
 *   z0-file.ts      solve --z0: initial states, number[][]  Z0File
 *   spec-tokens.ts  the tokenizer of solver/field/dataset spec strings
 *   common.ts       shared building blocks and enums (positiveInt, ENGINE_CHOICES, …)
 *   issues.ts       zod issues → `path: expected …, got <value>` (parseWith)
 *
 * Why zod (4): types are derived with z.infer/z.output, so a format and its
 * type cannot drift; issues carry precise paths and the input found; it is
 * widely used and maintained. Formats sit at the bottom layer: they import
 * only zod and src/errors.ts.
 */
export * from './common.js';
export * from './issues.js';
export * from './job.js';
export * from './result.js';
export * from './plan-file.js';
export * from './manifest.js';
export * from './model-file.js';
export * from './checkpoint-file.js';
export * from './study-file.js';
export * from './spec-tokens.js';
export * from './z0-file.js';
