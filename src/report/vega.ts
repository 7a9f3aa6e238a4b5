/**
 * Figures rendered offline in Node: a vega-lite spec is compiled to vega, run
 * headless (`renderer: 'none'`) and serialised with `view.toSVG()`. PNGs are
 * made by loading that SVG into @napi-rs/canvas as an image and drawing it
 * (scaled) on a white canvas.
 *
 * Every data set is inlined in the spec and the vega loader refuses every
 * load, so rendering never touches the network or the file system.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { type Loader, parse as parseVega, View } from 'vega';
import { compile, type Config, type TopLevelSpec } from 'vega-lite';
import { SpecError } from '../errors.js';

/**
 * A vega loader that loads nothing (all data is inline): every attempt is
 * refused and recorded, and `renderVegaLite` then fails loudly.
 */
function offlineLoader(attempts: string[]): Loader {
  const refuse = (uri: unknown): Promise<never> => {
    attempts.push(String(uri));
    return Promise.reject(new Error(`odeness figures render offline: refusing to load ${String(uri)}`));
  };
  return { load: refuse, sanitize: refuse, http: refuse, file: refuse };
}

/** Shared look: system sans-serif font (DejaVu on Linux), white background. */
const BASE_CONFIG: Config = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320, titleLimit: 320, symbolOpacity: 1 },
};

/** Compile a vega-lite spec and render it to an SVG string, offline. */
export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const full = { ...spec, config: { ...BASE_CONFIG, ...spec.config } } as TopLevelSpec;
  const vgSpec = compile(full).spec;
  const attempts: string[] = [];
  const view = new View(parseVega(vgSpec), { renderer: 'none', loader: offlineLoader(attempts), logLevel: 0 });
  try {
    const svg = await view.toSVG();
    if (attempts.length > 0)
      throw new SpecError(
        `figures render offline with inline data only; the spec tried to load ${attempts.join(', ')}`,
      );
    return svg;
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG string to PNG bytes (scale 2 = double resolution). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  if (!(scale > 0 && Number.isFinite(scale)))
    throw new SpecError(`svgToPng: scale must be a positive number, got ${scale}`);
  const img = await loadImage(Buffer.from(svg, 'utf8'));
  const w = Math.max(1, Math.ceil(img.width * scale));
  const h = Math.max(1, Math.ceil(img.height * scale));
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  return canvas.toBuffer('image/png');
}

export interface WriteOptions {
  /** Also write `name.png`. Default false. */
  readonly png?: boolean;
  /** PNG resolution factor. Default 2. */
  readonly pngScale?: number;
}

export interface WrittenPlot {
  readonly svg: string;
  readonly svgPath: string;
  readonly pngPath?: string;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

/** Write `name.svg` (and `name.png` when asked) into `dir` (created if missing). */
export async function writePlot(
  dir: string,
  name: string,
  svg: string,
  options: WriteOptions = {},
): Promise<WrittenPlot> {
  if (!SAFE_NAME.test(name))
    throw new SpecError(`plot name "${name}" may only contain letters, digits, '.', '_' and '-'`);
  await mkdir(dir, { recursive: true });
  const svgPath = join(dir, `${name}.svg`);
  await writeFile(svgPath, svg, 'utf8');
  if (!options.png) return { svg, svgPath };
  const pngPath = join(dir, `${name}.png`);
  await writeFile(pngPath, await svgToPng(svg, options.pngScale ?? 2));
  return { svg, svgPath, pngPath };
}
