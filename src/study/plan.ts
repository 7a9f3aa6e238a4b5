/**
 * Expand a study into jobs with content-hash ids.
 *
 * id = first 16 hex digits of sha256(canonicalJson(job minus id)); canonical
 * JSON sorts object keys at every level, so the id does not depend on the key
 * order of the study file, on the job's position in the plan, or on the
 * machine that planned it.
 */
import { createHash } from 'node:crypto';
import { loadStudyFile, validateStudy, type StudySpec } from './schema.js';
import { paperTestSolvers } from './paper.js';
import type { Job } from './types.js';

/** A study as written in a file: what `validateStudy` accepts (see schema.ts). */
export type StudyDocument = Record<string, unknown>;

export interface StudyPlan {
  readonly name?: string;
  readonly spec: StudySpec;
  readonly jobs: readonly Job[];
}

/** JSON with object keys sorted at every level; throws on values JSON cannot represent faithfully. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: non-finite number ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(o[k])).join(',') + '}';
  }
  throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
}

export const JOB_ID_LENGTH = 16;

/**
 * Version of what a job computes. Part of every id, so results stored by an
 * older executor (e.g. in a long-lived NATS result bucket) are never mistaken
 * for current ones; bump it when executeJob's metrics change meaning.
 */
export const JOB_FORMAT = 'odeness-job/1';

export function jobId(config: Omit<Job, 'id'> & { id?: string }): string {
  const { id: _ignored, ...rest } = config;
  return createHash('sha256').update(JOB_FORMAT + '\n' + canonicalJson(rest)).digest('hex').slice(0, JOB_ID_LENGTH);
}

/** Expand a validated spec: datasets × fields × grid points × adapt × seeds, duplicates dropped. */
export function planSpec(spec: StudySpec): StudyPlan {
  const jobs: Job[] = [];
  const seen = new Set<string>();
  for (const dataset of spec.datasets) {
    for (const field of spec.fields) {
      for (const entry of spec.grid) {
        for (const trainSolver of entry.specs) {
          const testSolvers = [...new Set((spec.testSolvers === 'paper' ? ['paper'] : spec.testSolvers).flatMap((t) => (t === 'paper' ? paperTestSolvers(trainSolver) : [t])))];
          for (const adapt of spec.adapt) {
            for (const seed of spec.seeds) {
              const config: Omit<Job, 'id'> = {
                dataset, field, trainSolver, adapt, seed,
                iterations: spec.iterations, batchSize: spec.batchSize, lr: spec.lr,
                testSolvers, audit: { crossing: spec.audits.crossing, fan: spec.audits.fan }, engine: spec.engine,
                ...(spec.solverLimits ? { solverLimits: spec.solverLimits } : {}),
              };
              const id = jobId(config);
              if (seen.has(id)) continue;
              seen.add(id);
              jobs.push({ id, ...config });
            }
          }
        }
      }
    }
  }
  return { ...(spec.name !== undefined ? { name: spec.name } : {}), spec, jobs };
}

/** Plan from a study file path or a study document (the object a study file parses to). */
export function planStudy(source: string | StudyDocument): StudyPlan {
  const spec = typeof source === 'string' ? loadStudyFile(source) : validateStudy(source, '<study>');
  return planSpec(spec);
}
