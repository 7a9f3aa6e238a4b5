/**
 * The study file: the schema is src/formats/study-file.ts (the format and its
 * wording, defined once); this module gives it the real spec parsers and
 * reads files. Used by `study plan`, `study run` and the library.
 *
 * Unknown keys are errors. Every error names the file, the path inside it
 * (e.g. `grid[2].steps[0]`), the value found and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { FileFormatError } from '../errors.js';
import { describeIssue, ENGINE_CHOICES, parseWith, studyFileSchema, type StudySpec } from '../formats/index.js';
import { DEFAULT_SOLVER_LIMITS, formatSolverSpec, parseSolverSpec } from '../solvers/spec.js';
import { ADAPTIVE_METHODS, METHODS } from '../solvers/tableau.js';
import { formatDatasetSpec, parseDatasetSpec } from '../data/spec.js';
import { formatFieldSpec, parseFieldSpec } from '../models/spec.js';

export { STUDY_DEFAULTS, type GridEntry, type StudySpec, type EngineChoice as Engine } from '../formats/index.js';
/** @deprecated the one definition is ENGINE_CHOICES in src/formats/common.ts. */
export const ENGINES = ENGINE_CHOICES;

/** A study file (or object) that does not match the schema. */
export class StudyFileError extends FileFormatError {
  constructor(
    file: string,
    readonly path: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(file, describeIssue({ path, value, expected, unknownKey: false }));
  }
}

const schema = studyFileSchema({
  methods: METHODS,
  isAdaptive: (m) => ADAPTIVE_METHODS.includes(m),
  solver: (s, limits) => formatSolverSpec(parseSolverSpec(s, limits)),
  dataset: (s) => formatDatasetSpec(parseDatasetSpec(s)),
  // Located: the planner gives jobs the canonical form and keeps where each file lies (models/field-files.ts).
  field: (s) => formatFieldSpec(parseFieldSpec(s), { located: true }),
  defaultLimits: DEFAULT_SOLVER_LIMITS,
});

/**
 * Check a parsed study document and return it normalised. `file` is used in
 * error messages only (`<study>` for objects passed to the library).
 */
export function validateStudy(raw: unknown, file = '<study>'): StudySpec {
  return parseWith(schema, raw, (i) => new StudyFileError(file, i.path, i.value, i.expected));
}

/** Parse a study file's text (YAML 1.2, which includes JSON; `.json` files as strict JSON). */
export function parseStudyText(text: string, file: string): StudySpec {
  let raw: unknown;
  if (file.toLowerCase().endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new FileFormatError(file, `not valid JSON: ${(e as Error).message}`);
    }
  } else {
    try {
      raw = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
    } catch (e) {
      if (e instanceof YAMLParseError) throw new FileFormatError(file, `not valid YAML: ${e.message.split('\n')[0]}`);
      throw e;
    }
  }
  return validateStudy(raw, file);
}

export function loadStudyFile(file: string): StudySpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(
      file,
      `cannot read the study file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return parseStudyText(text, file);
}
