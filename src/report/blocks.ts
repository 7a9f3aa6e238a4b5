/**
 * The HTML building blocks the report's sections are made of: tables and the
 * figure sink that writes each figure beside the page and returns its inline copy.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { esc } from './format.js';
import { svgToPng } from './vega.js';

/** Subfolder of the report's directory that holds the SVG (and PNG) figures. */
export const FIGURE_DIR = 'figures';

/** Writes figures into DIR/figures/ and returns the HTML that shows one inline. */
export class FigureSink {
  readonly files: string[] = [];
  private readonly used = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly png: boolean,
  ) {}

  async add(base: string, svg: string, caption: string): Promise<string> {
    const slug =
      base
        .replace(/[^A-Za-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 120) || 'x';
    let name = `fig-${slug}`;
    for (let q = 2; this.used.has(name); q++) name = `fig-${slug}-${q}`;
    this.used.add(name);
    const svgPath = join(this.dir, `${name}.svg`);
    await writeFile(svgPath, svg, 'utf8');
    this.files.push(svgPath);
    if (this.png) {
      const pngPath = join(this.dir, `${name}.png`);
      await writeFile(pngPath, await svgToPng(svg));
      this.files.push(pngPath);
    }
    // Inline copy: the XML namespace attributes are not needed inside HTML.
    const inline = svg.replace(/\s+xmlns(:xlink)?="[^"]*"/g, '');
    return (
      `<figure data-figure="${esc(name)}">${inline}<figcaption>${esc(caption)} <span ` +
      `class="sub">(${FIGURE_DIR}/${esc(name)}.svg)</span></figcaption></figure>`
    );
  }
}

export interface Cell {
  readonly html: string;
  readonly num?: boolean;
}

export interface TableRow {
  readonly cells: readonly Cell[];
  readonly cls?: string;
}

export function table(headers: readonly string[], rows: readonly TableRow[], cls = ''): string {
  const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      (r) =>
        `<tr${r.cls ? ` class="${r.cls}"` : ''}>` +
        r.cells.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.html}</td>`).join('') +
        '</tr>',
    )
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}
