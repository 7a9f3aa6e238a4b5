/** How the report writes numbers: rounded for reading, exact where asked (tooltips, report.json). */
import type { Spread } from './stats.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const esc = (v: unknown): string => escapeHtml(String(v));

export function fmtAcc(a: number | undefined): string {
  return a === undefined || !Number.isFinite(a) ? '—' : `${(100 * a).toFixed(1)} %`;
}

export function fmtNum(v: number | undefined | null): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

/** A step size or tolerance to 3 significant digits (0.07671544199101527 → 0.0767, 1e-6 → 1e-6). */
export function fmtParam(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(3)));
}

/**
 * A solver spec with its step or tolerance rounded: `euler:0.07671544199101527`
 * → `euler:0.0767`; step-count specs (`rk4:steps=20`) and specs with options stay as they are.
 */
export function roundSpec(spec: string): string {
  const m = /^([a-z0-9_]+):([0-9.eE+-]+)$/.exec(spec);
  if (!m) return spec;
  const v = Number(m[2]);
  return Number.isFinite(v) ? `${m[1]}:${fmtParam(v)}` : spec;
}

/** A spec in <code>, rounded, with the exact spec as its tooltip when rounding changed it. */
export function specHtml(spec: string): string {
  const r = roundSpec(spec);
  return r === spec ? `<code>${esc(spec)}</code>` : `<code title="${esc(spec)}">${esc(r)}</code>`;
}

/** A parameter, rounded, with the exact value as its tooltip. */
export function paramHtml(v: number | null | undefined, prefix = ''): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const r = fmtParam(v);
  return r === String(v) ? esc(prefix + r) : `<span title="${esc(v)}">${esc(prefix + r)}</span>`;
}

/** "97.2 % ± 0.4" (accuracy) — mean over seeds and its std in percentage points. */
export function fmtAccSpread(s: Spread | undefined): string {
  if (!s) return '—';
  return s.n > 1 ? `${fmtAcc(s.mean)} ± ${(100 * s.std).toFixed(1)}` : fmtAcc(s.mean);
}

/** "65,524 ± 1,200" — a count's mean over seeds and its std. */
export function fmtNumSpread(s: Spread | undefined): string {
  if (!s) return '—';
  const m = Math.round(s.mean);
  return s.n > 1 ? `${fmtNum(m)} ± ${fmtNum(Math.round(s.std))}` : fmtNum(m);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
