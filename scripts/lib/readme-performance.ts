/**
 * The README's training-speed tables, written from one run of scripts/bench-train.ts (`--write-readme`): the
 * text between BEGIN and END below is replaced, nothing else. Every number of a row comes from that run; the
 * ratio is the row's own torchdiffeq column over its odeness column (as printed), and the range beside it is
 * the lowest and highest of the run's paired rounds (each round times both tools back to back).
 */

export const README_BEGIN = '<!-- BEGIN bench:train (written by `npm run bench:train -- --write-readme`) -->';
export const README_END = '<!-- END bench:train -->';

/** What scripts/bench-train.ts prints with --json (the fields the tables use). */
export interface BenchResult {
  readonly date?: string;
  readonly command?: string;
  readonly rounds?: number;
  /** os.loadavg()[0] when the run started and ended. */
  readonly load?: { readonly start: number; readonly end: number };
  readonly backend?: string;
  readonly onnxruntime?: string;
  readonly machine: { readonly cpus: number; readonly model?: string; readonly node: string };
  readonly threads: number;
  /** Why torchdiffeq was not timed, when it was not. */
  readonly torch_note?: string;
  readonly rows: readonly Record<string, unknown>[];
  readonly adaptive?: readonly Record<string, unknown>[];
  readonly conv1d?: readonly Record<string, unknown>[];
}

/** A number as the tables print it: 3 significant digits (whole numbers from 100), thousands spaced. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  const s = a >= 100 ? Math.round(v).toString() : v.toPrecision(3);
  const [whole, frac] = s.split('.');
  const spaced = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return frac === undefined ? spaced : `${spaced}.${frac}`;
}

/** The printed value back as a number (what a reader divides). */
const printed = (v: number) => Number(fmt(v).replace(/ /g, ''));

const n = (v: unknown): number => (typeof v === 'number' ? v : NaN);

/** "3.25× [2.18–5.20]": the printed columns' ratio, and the paired rounds' range. */
function ratioCell(odeness: number, torch: number, rounds: unknown): string {
  if (!Number.isFinite(torch)) return '—';
  const ratio = printed(torch) / printed(odeness);
  const rs = Array.isArray(rounds) ? (rounds as number[]) : [];
  const range = rs.length > 1 ? ` [${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}]` : '';
  return `${ratio.toFixed(2)}×${range}`;
}

/** The engines-against-baseline table: ms per step of each engine, and speedup = baseline / ort (as printed). */
function stepTable(r: BenchResult): string[] {
  const dims = [...new Set(r.rows.map((row) => `${row.dim}/${row.hidden}`))];
  const lines = [
    '| workload | ort engine (one graph) | tfjs engine | naive tfjs baseline | speedup (ort) |',
    '|---|---|---|---|---|',
  ];
  for (const key of dims) {
    const of = (engine: string) => r.rows.find((row) => `${row.dim}/${row.hidden}` === key && row.engine === engine);
    const ort = of('ort');
    const tfjs = of('tfjs');
    const [dim, hidden] = key.split('/');
    const base = n((ort ?? tfjs)?.baseline_ms);
    const ms = (row: Record<string, unknown> | undefined) => (row ? `${fmt(n(row.ms_per_step))} ms` : '—');
    const speedup = ort && Number.isFinite(base) ? `${(printed(base) / printed(n(ort.ms_per_step))).toFixed(1)}×` : '—';
    const baseCell = Number.isFinite(base) ? `${fmt(base)} ms` : '—';
    lines.push(`| d=${dim}, h=${hidden} | ${ms(ort)} | ${ms(tfjs)} | ${baseCell} | ${speedup} |`);
  }
  return lines;
}

/** odeness (the ort engine) beside torchdiffeq on the same workloads, in the same run. */
function torchTable(r: BenchResult): string[] {
  const lines = ['| workload | odeness | torchdiffeq | ratio |', '|---|---|---|---|'];
  const row = (label: string, ode: number, torch: unknown, rounds: unknown) =>
    Number.isFinite(n(torch)) &&
    lines.push(`| ${label} | ${fmt(ode)} | ${fmt(n(torch))} | ${ratioCell(ode, n(torch), rounds)} |`);
  for (const x of r.rows.filter((x) => x.engine === 'ort')) {
    const label = `MLP ${x.dim}→${x.hidden}→${x.hidden}→${x.dim}, rk4 × 10, batch ${x.batch} (ms/step)`;
    row(label, n(x.ms_per_step), x.torchdiffeq_ms, x.ratio_rounds);
  }
  for (const x of (r.conv1d ?? []).filter((x) => x.engine === 'ort')) {
    const label = `conv1d field (paper), 900-d spheres, ${x.solver}, batch ${x.batch} (ms/iteration)`;
    row(label, n(x.ms_per_iter), x.torchdiffeq_ms, x.ratio_rounds);
  }
  for (const x of (r.adaptive ?? []).filter((x) => x.engine === 'ort')) {
    const label = `${x.workload}, ${x.solver}, batch ${x.batch} (ms per forward NFE)`;
    row(label, n(x.ms_per_nfe), x.torchdiffeq_ms, x.ratio_rounds);
  }
  return lines;
}

/** The largest MLP's step against one thread's matrix-product peak measured around each round, when measured. */
function peakLine(r: BenchResult): string[] {
  const x = r.rows.find((row) => row.engine === 'ort' && row.peak_fraction !== undefined);
  if (!x) return [];
  const rounds = Array.isArray(x.peak_fraction_rounds) ? (x.peak_fraction_rounds as number[]) : [];
  const range =
    rounds.length > 1 ? ` [${Math.round(100 * Math.min(...rounds))}–${Math.round(100 * Math.max(...rounds))} %]` : '';
  return [
    '',
    `The d=${x.dim} step runs at ${fmt(n(x.gflops))} GFLOP/s: ${Math.round(100 * n(x.peak_fraction))} %${range} of one ` +
      `thread's float32 matrix-product peak (${fmt(n(x.matmul_peak_gflops))} GFLOP/s, the best 1024³ product of ` +
      'onnxruntime and torch measured before and after each round).',
  ];
}

/** The generated section (markers included) for one benchmark result. */
export function performanceMarkdown(r: BenchResult): string {
  const load = r.load
    ? `load average ${r.load.start.toFixed(2)} at the start, ${r.load.end.toFixed(2)} at the end`
    : '';
  const machine = `${r.machine.model ?? 'unknown CPU'} (${r.machine.cpus} CPUs), Node ${r.machine.node}`;
  const versions = [r.onnxruntime && `onnxruntime ${r.onnxruntime}`, r.backend && `tfjs on ${r.backend}`]
    .filter(Boolean)
    .join(', ');
  const torch = torchTable(r);
  return [
    README_BEGIN,
    `One run of \`${r.command ?? 'npm run bench:train'}\` on ${r.date ?? 'an unrecorded date'}: ${machine}` +
      `${versions ? `; ${versions}` : ''}; ${r.threads} onnxruntime thread(s)${load ? `; ${load}` : ''}.`,
    '',
    '**Training step** (MLP field d→h→h→d tanh, rk4 with 10 steps, batch 256, Adam, cross-entropy), ms per step:',
    `the median of ${r.rounds === 1 ? "one round's" : `${r.rounds ?? 'the'} rounds'`} medians. \`baseline\` is the same model written naively with stock ` +
      'tfjs ops and `optimizer.minimize` on the default backend, timed in the same run; `speedup = baseline / ort`.',
    '',
    ...stepTable(r),
    '',
    '**Beside torchdiffeq** (0.2.5, one thread; `../shared/anchors/`, run by the same benchmark between its rounds):',
    'ratio = the torchdiffeq column / the odeness column (the ort engine); in brackets the lowest and highest',
    'ratio of the paired rounds, each timing both tools back to back.',
    '',
    ...(torch.length > 2
      ? torch
      : [`(torchdiffeq was not timed in this run${r.torch_note ? `: ${r.torch_note}` : ''}.)`]),
    ...peakLine(r),
    README_END,
  ].join('\n');
}

/** `readme` with the text between the markers (markers included) replaced by `section`; throws without markers. */
export function replaceSection(readme: string, section: string, file = 'README.md'): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin)
    throw new Error(`${file}: no "${README_BEGIN}" … "${README_END}" markers around the generated tables`);
  return readme.slice(0, begin) + section + readme.slice(end + README_END.length);
}
