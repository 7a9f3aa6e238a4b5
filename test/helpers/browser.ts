/**
 * Load a page in the real headless Chromium (Debian's /usr/bin/chromium) and
 * report what a person would see go wrong: console messages and uncaught
 * script errors (from Chromium's log), and every <figure> whose SVG the
 * browser did not lay out (a probe script measures each one after load).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export interface PageCheck {
  /** Console messages and uncaught errors, as Chromium logged them. */
  readonly console: string[];
  /** Per <figure>: its data-figure name and the laid-out size of its SVG (0 × 0 when there is none). */
  readonly figures: { name: string; width: number; height: number }[];
  /** The DOM after load (with the probe's results). */
  readonly dom: string;
}

const PROBE = `<script>
addEventListener('load', () => {
  for (const f of document.querySelectorAll('figure')) {
    const svg = f.querySelector('svg');
    const r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    f.setAttribute('data-probe', Math.round(r.width) + 'x' + Math.round(r.height));
  }
  document.body.setAttribute('data-probed', 'yes');
});
</script>`;

function run(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

// The background-networking flags keep Chromium from calling out (this machine has no network beyond loopback).
const BASE_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-file-access-from-files',
  '--enable-logging=stderr',
  '--v=0',
];

/** Load `htmlFile` (a copy with the probe appended sits beside it) and check it. */
export async function checkPage(htmlFile: string, timeoutMs = 90_000): Promise<PageCheck> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: the browser tests need Chromium (Debian: apt-get install chromium)`);
  const probed = htmlFile.replace(/\.html?$/, '') + '.probe.html';
  // The probe goes last so that the page's own scripts (there should be none) run first; a meta refresh is dropped so the load is measured once.
  writeFileSync(
    probed,
    readFileSync(htmlFile, 'utf8')
      .replace(/<meta http-equiv="refresh"[^>]*>/, '')
      .replace('</body>', `${PROBE}</body>`),
  );
  const r = await run(
    [...BASE_ARGS, '--virtual-time-budget=5000', '--dump-dom', pathToFileURL(probed).href],
    timeoutMs,
  );
  const console = r.stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l) || /Uncaught/.test(l));
  if (!r.stdout.includes('data-probed="yes"'))
    throw new Error(`chromium did not finish loading ${htmlFile} (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
  const figures = [...r.stdout.matchAll(/<figure([^>]*)>/g)].map((m) => {
    const name = /data-figure="([^"]*)"/.exec(m[1]!)?.[1] ?? '';
    const [w, h] = (/data-probe="(\d+)x(\d+)"/.exec(m[1]!) ?? [, '0', '0']).slice(1).map(Number);
    return { name, width: w!, height: h! };
  });
  return { console, figures, dom: r.stdout };
}

/** A PNG screenshot of `htmlFile` as headless Chromium renders it. */
export async function screenshot(
  htmlFile: string,
  pngFile: string,
  size = '1280,2400',
  timeoutMs = 90_000,
): Promise<void> {
  const r = await run(
    [
      ...BASE_ARGS,
      `--window-size=${size}`,
      '--hide-scrollbars',
      `--screenshot=${pngFile}`,
      pathToFileURL(htmlFile).href,
    ],
    timeoutMs,
  );
  if (!existsSync(pngFile)) throw new Error(`chromium wrote no screenshot (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
}
