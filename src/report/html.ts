/**
 * The report model rendered as one self-contained HTML page (inline CSS,
 * figures as inline SVG, no scripts, no external fonts or styles — it opens in
 * a browser without network access), each figure also written beside it as an
 * SVG (and PNG on request) in DIR/figures/, and the model itself as
 * DIR/report.json (exact values).
 *
 * While a study runs (model.live), the page reloads itself every few seconds
 * (a meta refresh, removed from the final page).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpecError } from '../errors.js';
import { FIGURE_DIR, FigureSink } from './blocks.js';
import { esc } from './format.js';
import type { ReportModel } from './model.js';
import { header, jobsSection, notInPlanSection, studySection } from './sections.js';

export { FIGURE_DIR };
export const REPORT_JSON = 'report.json';

export interface RenderOptions {
  /** Also write PNGs of the figures. Default false. */
  readonly png?: boolean;
  /** HTML file name. Default "report.html". */
  readonly fileName?: string;
  /** Most adaptation-trace figures per method (default 6). */
  readonly maxAdaptationFigures?: number;
  /** Seconds between reloads of a live page (default 5). */
  readonly refreshSeconds?: number;
}

export interface WrittenReport {
  readonly html: string;
  readonly htmlPath: string;
  readonly jsonPath: string;
  /** Written figure files (SVG, and PNG when asked). */
  readonly figures: string[];
}

const CSS = `
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:2px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.4em}h4{margin:1em 0 .3em}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fff0f0}.pass{color:#1a7f37;font-weight:bold}.failtxt{color:#b42318;font-weight:bold}
figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}
figcaption{font-size:.85em;color:#555;max-width:640px}
.note{background:#f8f8f8;border-left:4px solid #bbb;padding:6px 10px;margin:6px 0}
.warn{background:#fff8e6;border-left:4px solid #e0a400;padding:6px 10px;margin:6px 0}
.live{background:#eef6ff;border-left:4px solid #4c78a8;padding:6px 10px;margin:6px 0}
[title]{text-decoration:underline dotted #999}
code{font-size:.95em}details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}
`;

/** Render the page and its figures into `outDir`; returns the HTML and the written paths. */
export async function writeReport(
  model: ReportModel,
  outDir: string,
  options: RenderOptions = {},
): Promise<WrittenReport> {
  const fileName = options.fileName ?? 'report.html';
  if (!/^[A-Za-z0-9._-]+\.html?$/.test(fileName))
    throw new SpecError(`report file name "${fileName}" must be a plain *.html name`);
  const figureDir = join(outDir, FIGURE_DIR);
  await mkdir(figureDir, { recursive: true });
  const figures = new FigureSink(figureDir, Boolean(options.png));
  const parts: string[] = [header(model)];
  for (const s of model.sections)
    parts.push(await studySection(s, model, figures, { maxAdaptationFigures: options.maxAdaptationFigures ?? 6 }));
  parts.push(jobsSection(model));
  parts.push(notInPlanSection(model));
  const refresh = model.live ? `\n<meta http-equiv="refresh" content="${options.refreshSeconds ?? 5}">` : '';
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">${refresh}
<title>${esc(model.title)}</title>
<style>${CSS}</style>
</head>
<body>
${parts.filter(Boolean).join('\n')}
</body>
</html>
`;
  const htmlPath = join(outDir, fileName);
  const jsonPath = join(outDir, REPORT_JSON);
  // Atomic replacement: a browser reloading a live page never reads half a file.
  await writeAtomic(jsonPath, JSON.stringify(model, null, 1) + '\n');
  await writeAtomic(htmlPath, html);
  return { html, htmlPath, jsonPath, figures: figures.files };
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, 'utf8');
  await rename(tmp, file);
}
