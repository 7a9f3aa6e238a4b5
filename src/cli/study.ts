/**
 * CLI for studies and cluster workers — parsing and printing only; every
 * command calls the library (src/study, src/cluster).
 *
 *   odeness study plan FILE [--json]
 *   odeness study run FILE --out DIR [--workers N] [--nats URL [auth/TLS options]] [--retry-failed] [--json]
 *   odeness study status DIR [--json]
 *   odeness worker --nats URL [--workers N] [--user U --password P | --token T] [--tls-ca F --tls-cert F --tls-key F]
 *
 * Secrets can come from files (--password-file, --token-file, --creds) or the
 * environment (NATS_USER, NATS_PASSWORD, NATS_TOKEN) instead of the command
 * line, where `ps` would show them. They are never printed: URLs are masked in
 * every message.
 */
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isPositiveInt } from '../formats/index.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OdenessError } from '../errors.js';
import { DEFAULT_REPORT_INTERVAL_MS, LiveReport, liveReportMs } from '../report/live.js';
import {
  estimateWork,
  JOB_THRESHOLD,
  WORK_THRESHOLD,
  type WallBreakdown,
  type WorkEstimate,
} from '../study/estimate.js';
import type { TransportName } from '../study/calibrate-transport.js';
import { planStudy, type PlanOverrides, type StudyPlan } from '../study/plan.js';
import { bindStudy, readPlan, type StudyBinding } from '../study/store.js';
import { runStudy } from '../study/run.js';
import { studyStatus, type StudyStatus } from '../study/status.js';
import { terminalSafe } from './terminal.js';
import { DEFAULT_INLINE_BUNDLE_BYTES, runWorker } from '../cluster/nats-worker.js';
import { capThreads, LocalTransport } from '../study/local.js';
import { NatsTransport, type NatsStudyOptions } from '../cluster/nats-coordinator.js';
import { describeNats, plainTextCredentialsWarning, type NatsConnectOptions } from '../cluster/nats-connect.js';
import { readKeyFile } from '../cluster/job-checks.js';
import { cleanStudy } from '../cluster/nats-clean.js';
import { defaultText, deviceOption, memorySize, renamedOption } from './args.js';
import { defaultMemoryBudget, DEFAULT_MEMORY_SHARE } from '../study/admission.js';
import { formatBytes } from '../engines/memory.js';
import type { Device, DeviceChoice } from '../formats/common.js';
import { probeDevice, resolveDevice } from '../onnx/runtime/adapters.js';
import { plural } from './output.js';
import { countsLine, fmtDuration, jobSolverText, studyEventPrinter, type EventFormat } from './events.js';
import { abortOnSignals, stopExitCode, type StopReason } from './signals.js';

/** --workers / --concurrency within this machine's cores and memory, saying so when lowered. */
function cappedThreads(requested: number): number {
  const { threads, note } = capThreads(requested);
  if (note) process.stderr.write(`odeness: ${note}\n`);
  return threads;
}

function positiveIntFlag(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !isPositiveInt(n))
      throw new InvalidArgumentError(`${flag} must be a positive integer.`);
    return n;
  };
}

/** --workers: how many jobs run at once on this machine (study run locally, worker on a cluster). */
function workersOption(description: string): Option {
  return defaultText(
    new Option('--workers <n>', description).argParser(positiveIntFlag('--workers')),
    `one per core, ${availableParallelism()} here`,
  );
}

function positiveSeconds(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a number of seconds, at least 1.`);
    return n;
  };
}

/** The connection flags as commander hands them over (--nats is the URL). */
type NatsFlags = Pick<
  NatsConnectOptions,
  'user' | 'password' | 'token' | 'passwordFile' | 'tokenFile' | 'creds' | 'tlsCa' | 'tlsCert' | 'tlsKey'
> & { nats?: string; jobKeyFile?: string };
const NATS_FLAGS = [
  'user',
  'password',
  'token',
  'passwordFile',
  'tokenFile',
  'creds',
  'tlsCa',
  'tlsCert',
  'tlsKey',
  'jobKeyFile',
] as const;

function addNatsOptions(cmd: Command, required: boolean): Command {
  const url = new Option(
    '--nats <url>',
    required
      ? 'NATS server URL, e.g. nats://host:4222'
      : 'run on a NATS cluster (workers: odeness worker --nats URL) instead of local threads',
  );
  if (required) url.makeOptionMandatory();
  else defaultText(url, 'none: local worker threads');
  return cmd
    .addOption(url)
    .addOption(new Option('--user <user>', 'NATS user').env('NATS_USER'))
    .addOption(
      new Option(
        '--password <password>',
        'NATS password; ps shows arguments to every user, not environment variables: ' +
          'prefer NATS_PASSWORD or --password-file',
      ).env('NATS_PASSWORD'),
    )
    .addOption(new Option('--password-file <file>', 'read the NATS password from a file').conflicts(['password']))
    .addOption(
      new Option('--token <token>', 'NATS auth token; prefer NATS_TOKEN (not visible in ps) or --token-file')
        .env('NATS_TOKEN')
        .conflicts(['user', 'password']),
    )
    .addOption(
      new Option('--token-file <file>', 'read the NATS auth token from a file').conflicts([
        'user',
        'password',
        'token',
      ]),
    )
    .addOption(
      new Option('--creds <file>', 'NATS credentials file (user JWT + nkey seed, from nsc)').conflicts([
        'user',
        'password',
        'token',
      ]),
    )
    .addOption(
      new Option(
        '--job-key-file <file>',
        'shared secret (≥ 16 characters) signing jobs: ' +
          "coordinator and workers given the same file run only the coordinator's jobs",
      ),
    )
    .addOption(new Option('--tls-ca <file>', 'CA certificate (PEM) to verify the server'))
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM)'))
    .addOption(new Option('--tls-key <file>', 'client key (PEM)'));
}

function natsOptions(f: NatsFlags & { nats: string }): NatsStudyOptions {
  const warning = plainTextCredentialsWarning({ url: f.nats, ...f });
  if (warning) process.stderr.write(`warning: ${warning}\n`);
  return {
    url: f.nats,
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.password !== undefined ? { password: f.password } : {}),
    ...(f.token !== undefined ? { token: f.token } : {}),
    ...(f.passwordFile !== undefined ? { passwordFile: f.passwordFile } : {}),
    ...(f.tokenFile !== undefined ? { tokenFile: f.tokenFile } : {}),
    ...(f.creds !== undefined ? { creds: f.creds } : {}),
    ...(f.jobKeyFile !== undefined ? { jobKey: readKeyFile('--job-key-file', f.jobKeyFile) } : {}),
    ...(f.tlsCa !== undefined ? { tlsCa: f.tlsCa } : {}),
    ...(f.tlsCert !== undefined ? { tlsCert: f.tlsCert } : {}),
    ...(f.tlsKey !== undefined ? { tlsKey: f.tlsKey } : {}),
  };
}

interface PlanFlags {
  iterations?: number;
  testPoints?: number;
  batchSize?: number;
  device?: DeviceChoice;
  workers?: number;
  transport: TransportName;
  calibrate: boolean;
  recalibrate?: boolean;
  report: boolean;
  json?: boolean;
}

function printStatus(s: StudyStatus, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(s) + '\n');
    return;
  }
  const lines = [
    `${s.dir}${s.name ? ` (${s.name})` : ''}: ${countsLine(s)}`,
    s.activeRun
      ? `running now: pid ${s.activeRun.pid} on ${s.activeRun.host} since ${s.activeRun.startedAt}`
      : 'no run in progress',
  ];
  if (s.deadRun) {
    const d = s.deadRun;
    lines.push(
      `the run died: pid ${d.pid} on ${d.host} is gone but its lock is left (killed, e.g. kill -9); ` +
        'study run again resumes',
    );
  }
  for (const f of s.failures) lines.push(`failed ${f.id} (attempt ${f.attempt}): ${f.error}`);
  if (s.extraResults)
    lines.push(
      `${plural(s.extraResults, 'result')} not in the plan ` +
        '(written by another or an edited study; `study report` lists them apart)',
    );
  if (s.invalidLines)
    lines.push(
      `${plural(s.invalidLines, 'unreadable result line')} ignored (a torn last line after a crash is expected)`,
    );
  process.stdout.write(lines.map(terminalSafe).join('\n') + '\n');
}

interface RunFlags {
  out: string;
  workers?: number;
  retryFailed?: boolean;
  iterations?: number;
  testPoints?: number;
  batchSize?: number;
  device?: DeviceChoice;
  extend?: boolean;
  replace?: boolean;
  yes?: boolean;
  report: boolean;
  reportInterval: number;
  json?: boolean;
  events?: boolean;
  ackWait: number;
  maxDeliver: number;
  memory?: number;
}

/** --memory: the budget jobs running at once share, by their estimated peak memory (study/admission.ts). */
function jobsMemoryOption(what: string): Option {
  return defaultText(
    new Option(
      '--memory <size>',
      `memory ${what} share, e.g. 8g: jobs run side by side while their estimates fit it`,
    ).argParser(memorySize),
    `${DEFAULT_MEMORY_SHARE * 100} % of this machine's memory or cgroup limit, ` +
      `${formatBytes(defaultMemoryBudget())} here`,
  );
}

/**
 * `--test-points N`: the smoke-run companion of --iterations, for studies
 * whose evaluation dominates at few iterations.
 */
function testPointsOption(): Option {
  return defaultText(
    new Option(
      '--test-points <n>',
      'evaluate and audit every job on this many test points ' +
        '(sets testN of every dataset; a smoke run; recorded in the plan)',
    ).argParser(positiveIntFlag('--test-points')),
    "each dataset's test set",
  );
}

function batchSizeOption(): Option {
  return defaultText(
    new Option(
      '--batch-size <n>',
      'train every job on batches of this size ' +
        '(a smoke run: paper-size batches of the 900-d and MNIST fields need GBs per job; recorded in the plan)',
    ).argParser(positiveIntFlag('--batch-size')),
    "the study file's",
  );
}

function planOverrides(o: {
  iterations?: number;
  testPoints?: number;
  batchSize?: number;
  device?: Device;
}): PlanOverrides {
  return { iterations: o.iterations, testPoints: o.testPoints, batchSize: o.batchSize, device: o.device };
}

/** --device of study plan / run: every job's device (recorded in the plan); `auto` is resolved on this machine. */
function studyDeviceOption(): Option {
  return defaultText(deviceOption("every job's sessions"), "the study file's device key (cpu when absent)");
}

async function studyDevice(o: { device?: DeviceChoice }): Promise<Device | undefined> {
  return o.device === undefined ? undefined : resolveDevice(o.device);
}

/** ", 2 iterations each (--iterations), …": the overrides of a smoke run, for the plan summary. */
function overridesText(o: PlanOverrides | undefined): string {
  if (!o) return '';
  return [
    o.iterations !== undefined ? `, ${o.iterations} iterations each (--iterations)` : '',
    o.batchSize !== undefined ? `, batches of ${o.batchSize} (--batch-size)` : '',
    o.device !== undefined ? `, on device ${o.device} (--device)` : '',
    o.testPoints !== undefined ? `, evaluated on ${o.testPoints} test points (--test-points)` : '',
  ].join('');
}

function planSize(e: WorkEstimate): string {
  return `${e.jobs} job${e.jobs === 1 ? '' : 's'} and ${e.units.toExponential(1)} multiply-adds of training`;
}

const TRANSPORT_TEXT: Record<TransportName, string> = { pool: 'the local pool', nats: 'NATS' };

/** The wall time, where it goes (serial seconds by piece), and where the transport's figures come from. */
function wallLines(e: WorkEstimate, b: WallBreakdown, tc: NonNullable<WorkEstimate['transportCost']>): string[] {
  const s = (ms: number) => fmtDuration(ms);
  const per = (ms: number) => `${(ms / e.jobs).toFixed(0)} ms`;
  const origin =
    tc.source === 'default'
      ? 'built-in figures of the 2-core development machine; ' +
        'measure this one with `npx tsx scripts/calibrate-transport.ts`'
      : `measured ${tc.measuredAt}${tc.source === 'cached' ? ', cached' : ''}`;
  const loaded = e.loaded
    ? `; at its present load (${e.loaded.load.toFixed(1)} on ${e.loaded.cores} cores) ` +
      `about ${fmtDuration(e.loaded.wallMs)}`
    : '';
  return [
    `wall time: about ${fmtDuration(e.wallMs!)} on this machine when idle, with ${plural(e.workers, 'worker')} ` +
      `on ${TRANSPORT_TEXT[e.transport]}${loaded}`,
    `  one worker's share, summed over jobs: job overhead ${s(b.overheadMs)}, graph builds ${s(b.buildMs)}, ` +
      `training ${s(b.trainMs)}, evaluation ${s(b.evalMs)}, audits ${s(b.auditMs)}, ` +
      `transport ${s(b.transportMs)} (${per(b.transportMs)} a job + ${s(tc.startupMs)} to start; ${origin})` +
      (e.reportMs !== undefined ? `; the live report adds about ${s(e.reportMs)} to the wall time` : ''),
  ];
}

/** What the plan holds, how much work it is, and how long it takes here. */
function planSummary(plan: StudyPlan, e: WorkEstimate): string {
  const methods = new Set(plan.jobs.filter((j) => j.adapt).map((j) => j.trainSolver.split(':')[0]));
  const configs = new Set(plan.jobs.filter((j) => !j.adapt).map((j) => `${j.dataset}|${j.field}|${j.trainSolver}`))
    .size;
  const seeds = plan.spec.seeds.length;
  const pairs = plan.spec.datasets.length * plan.spec.fields.length;
  const lines = [
    `${plan.name ?? 'study'}: ${plural(e.jobs, 'job')} = ${e.gridJobs} grid ` +
      `(${configs} training configurations × ${plural(seeds, 'seed')}) + ` +
      `${e.adaptationJobs} adaptation ` +
      `(${plural(methods.size, 'method')} × ${pairs} dataset×field × ${plural(seeds, 'seed')})` +
      overridesText(plan.overrides),
  ];
  lines.push(
    `work: ${e.sampleNfe.toExponential(2)} sample·NFE × field size = ` +
      `${e.units.toExponential(2)} multiply-adds of training, ` +
      `${e.evalUnits.toExponential(2)} of evaluation and audits`,
  );
  if (e.wallMs !== undefined && e.breakdown && e.transportCost)
    lines.push(...wallLines(e, e.breakdown, e.transportCost));
  const devices = e.uncalibratedDevices ?? [];
  if (devices.length > 0)
    lines.push(
      `device ${devices.join(', ')}: not calibrated for it; ` +
        "the work and wall time above are this machine's CPU figures",
    );
  if (e.needsYes) lines.push(`above the size that runs without confirmation: \`study run\` needs --yes`);
  const cached = e.groups.map((g) => g.cost).filter((c) => c?.cached);
  const when = cached[0]?.measuredAt ?? 'earlier';
  if (cached.length > 0)
    lines.push(`calibration: this machine's, measured ${when} and cached (--recalibrate measures again)`);
  return lines.join('\n');
}

export function registerStudyCommands(program: Command): Command {
  const study = program
    .command('study')
    .description('plan and run grids of training jobs, locally or on a NATS cluster');
  registerPlanCommand(study);
  registerRunCommand(study);
  registerStatusCommand(study);
  registerCleanCommand(study);
  return study;
}

/** `study plan FILE`: the jobs and the work they are. */
function registerPlanCommand(study: Command): void {
  study
    .command('plan')
    .description(
      'expand a study file into jobs with content-hash ids, ' +
        'and estimate the work (a short calibration on this machine)',
    )
    .argument('<file>', 'study file (YAML or JSON)')
    .addOption(
      defaultText(
        new Option('--iterations <n>', 'train every job this many iterations (a smoke run)').argParser(
          positiveIntFlag('--iterations'),
        ),
        "the study file's",
      ),
    )
    .addOption(testPointsOption())
    .addOption(batchSizeOption())
    .addOption(studyDeviceOption())
    .option(
      '--workers <n>',
      'parallel workers the wall-time estimate is for (default: one per core)',
      positiveIntFlag('--workers'),
    )
    .addOption(
      new Option('--transport <name>', 'the transport the wall time is for (nats: --workers NATS worker processes)')
        .choices(['pool', 'nats'])
        .default('pool'),
    )
    .option('--no-calibrate', 'skip the calibration runs (no wall-time estimate)')
    .option('--recalibrate', 'measure this machine again instead of using its cached calibration (~/.cache/odeness)')
    .option('--no-report', 'the wall time of `study run --no-report` (without the live report it writes as it runs)')
    .option('--json', 'print {"name", "studyHash", "counts", "estimate", "jobs": [...]} as one JSON document')
    .action(planAction);
}

async function planAction(file: string, o: PlanFlags): Promise<void> {
  const started = process.uptime() * 1000; // this CLI's own start: `study run` pays it too
  const plan = planStudy(file, planOverrides({ ...o, device: await studyDevice(o) }));
  for (const note of plan.notes ?? []) process.stderr.write(`odeness: note: ${note}\n`);
  const workers = o.workers ?? availableParallelism();
  const estimate = await estimateWork(plan, {
    calibrate: o.calibrate,
    recalibrate: o.recalibrate,
    workers,
    transport: o.transport,
    processStartMs: started,
    ...(o.report ? { report: liveReportMs } : {}),
  });
  if (o.json) {
    const counts = { jobs: estimate.jobs, grid: estimate.gridJobs, adaptation: estimate.adaptationJobs };
    process.stdout.write(
      JSON.stringify({
        ...(plan.name !== undefined ? { name: plan.name } : {}),
        studyHash: plan.studyHash,
        ...(plan.overrides ? { overrides: plan.overrides } : {}),
        counts,
        estimate,
        jobs: plan.jobs,
      }) + '\n',
    );
    return;
  }
  const rows = plan.jobs.map((j) => `${j.id}  ${j.dataset}  ${j.field}  ${jobSolverText(j)}  seed=${j.seed}`);
  process.stdout.write(`${planSummary(plan, estimate)}\n${rows.join('\n')}\n`);
}

/** What `study run`'s action receives: its own flags, the connection flags and the NATS-only ones. */
type StudyRunFlags = NatsFlags & RunFlags & { keepDays: number; maxBundleMb: number };

/** `study run FILE --out DIR`: run the jobs without a result, on local threads or a NATS cluster. */
function registerRunCommand(study: Command): void {
  const run = study
    .command('run')
    .description('run every job of a study that has no result yet; rerun to resume after a crash')
    .argument('<file>', 'study file (YAML or JSON)')
    .requiredOption('--out <dir>', 'output directory (results.jsonl, models/<id>/)')
    .addOption(workersOption('local worker threads, one job each'))
    .addOption(jobsMemoryOption('the local jobs running at once'))
    .option('--retry-failed', 'also rerun jobs whose last result is failed')
    .addOption(
      defaultText(
        new Option(
          '--iterations <n>',
          'train every job this many iterations (a smoke run; recorded in the plan)',
        ).argParser(positiveIntFlag('--iterations')),
        "the study file's",
      ),
    )
    .addOption(testPointsOption())
    .addOption(batchSizeOption())
    .addOption(studyDeviceOption());
  addRunOutputOptions(run);
  addNatsRunOptions(addNatsOptions(run, false)).action(runAction);
}

/** How `study run` treats --out and what it prints: binding, confirmation, live report, output format. */
function addRunOutputOptions(run: Command): Command {
  return run
    .addOption(
      new Option('--extend', "the --out directory belongs to another study: add this study's jobs to it").conflicts(
        'replace',
      ),
    )
    .option(
      '--replace',
      "the --out directory belongs to another study: make it this study's " +
        '(results already there are kept, shown as not in the plan)',
    )
    .option('--yes', 'run a plan above the size that needs confirmation (see study plan)')
    .option('--no-report', 'do not keep DIR/report.html up to date while the study runs')
    .addOption(
      new Option(
        '--report-interval <seconds>',
        'least seconds between two rewrites of the live report ' +
          '(never more than a tenth of the time: a big page takes seconds to render)',
      )
        .argParser(positiveSeconds('--report-interval'))
        .default(DEFAULT_REPORT_INTERVAL_MS / 1000),
    )
    .addOption(
      new Option(
        '--json',
        'when the run ends, print {"out", "plan", "counts", "ms", "interrupted", "results": [...], "logs", "report"} ' +
          'as one JSON document (nothing before it)',
      ).conflicts('events'),
    )
    .option(
      '--events',
      'print events as they happen as JSON Lines ' +
        '(one JSON object per line: plan, start, result, log, the last "end"), ' +
        'for dashboards and scripts that follow a run',
    );
}

/** The cluster's queue and bucket settings of `study run --nats`. */
function addNatsRunOptions(run: Command): Command {
  return run
    .addOption(
      new Option('--ack-wait <seconds>', 'NATS: seconds without a heartbeat before a job is redelivered')
        .argParser(positiveSeconds('--ack-wait'))
        .default(30),
    )
    .addOption(
      new Option('--max-deliver <n>', 'NATS: deliveries of a job before it is recorded as failed')
        .argParser(positiveIntFlag('--max-deliver'))
        .default(5),
    )
    .addOption(
      new Option(
        '--keep-days <days>',
        "NATS: days results and bundles stay in the cluster's buckets (set when they are made; one for every study)",
      )
        .argParser(positiveIntFlag('--keep-days'))
        .default(30),
    )
    .addOption(
      new Option('--max-bundle-mb <mb>', 'NATS: largest bundle downloaded from the cluster; a larger one fails its job')
        .argParser(positiveIntFlag('--max-bundle-mb'))
        .default(256),
    );
}

async function runAction(file: string, o: StudyRunFlags, cmd: Command): Promise<void> {
  checkRunFlags(o, cmd);
  const plan = planStudy(file, planOverrides({ ...o, device: await studyDevice(o) }));
  for (const note of plan.notes ?? []) process.stderr.write(`odeness: note: ${note}\n`);
  const binding: StudyBinding = o.extend ? 'extend' : o.replace ? 'replace' : 'check';
  // Before anything connects or is written: the directory must belong to this study, the plan be confirmed.
  bindStudy(o.out, readPlan(o.out), plan, binding);
  if (!o.yes) await confirmSize(file, plan);
  const live = o.report ? liveReport(o.out, o.reportInterval) : undefined;
  const format: EventFormat = o.json ? 'json' : o.events ? 'events' : 'text';
  const printer = studyEventPrinter({ format, tty: format === 'text' && !!process.stderr.isTTY });
  const stop = abortOnSignals((why) => {
    printer.stop();
    const how = why === 'EPIPE' ? ' (stdout was closed)' : '';
    process.stderr.write(
      `stopping${how}: recorded results are kept; rerun the same command to resume` +
        `${how ? '' : ' (Ctrl-C again to quit now)'}\n`,
    );
  });
  try {
    // Connect first: an unreachable cluster fails fast, before --out is touched.
    const transport = await studyTransport(o, cmd);
    const r = await runStudy(plan, {
      out: o.out,
      transport,
      retryFailed: !!o.retryFailed,
      binding,
      onEvent: (e) => {
        printer.onEvent(e);
        live?.onEvent(e);
      },
      signal: stop.signal,
    });
    if (live) {
      await live.finish();
      if (format === 'text') process.stdout.write(`report: ${join(o.out, 'report.html')}\n`);
    }
    const why = stop.reason();
    if (format === 'json')
      process.stdout.write(
        JSON.stringify(
          printer.document({
            ...r,
            ...(why ? { stoppedBy: why } : {}),
            ...(live ? { report: join(o.out, 'report.html') } : {}),
          }),
        ) + '\n',
      );
    reportRunEnd(r, o.out, why);
  } finally {
    printer.stop();
    stop.dispose();
  }
}

/** Connection flags need --nats; --workers is for local runs. */
function checkRunFlags(o: StudyRunFlags, cmd: Command): void {
  if (o.nats === undefined) {
    for (const flag of NATS_FLAGS) {
      if (o[flag] !== undefined && cmd.getOptionValueSource(flag) === 'cli')
        cmd.error(`error: option --${flag.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} needs --nats`);
    }
  } else if (o.workers !== undefined)
    cmd.error('error: --workers is for local runs; with --nats, size each machine with odeness worker --workers');
  else if (o.memory !== undefined)
    cmd.error('error: --memory is for local runs; with --nats, give each machine its budget: odeness worker --memory');
}

/** A plan above the thresholds runs only with --yes. */
async function confirmSize(file: string, plan: StudyPlan): Promise<void> {
  const estimate = await estimateWork(plan, { calibrate: false });
  if (estimate.needsYes)
    throw new OdenessError(
      `${file}: ${planSize(estimate)} is above what runs without confirmation ` +
        `(${JOB_THRESHOLD} jobs or ${WORK_THRESHOLD.toExponential(0)} multiply-adds); ` +
        `see \`odeness study plan ${file}\` for the wall time, ` +
        'then rerun with --yes (or --iterations N for a smoke run)',
    );
}

function liveReport(out: string, intervalSeconds: number): LiveReport {
  return new LiveReport(out, {
    minIntervalMs: intervalSeconds * 1000,
    onError: (e) => process.stderr.write(`warning: report not updated: ${(e as Error).message}\n`),
  });
}

/** A NATS cluster with --nats, else this machine's worker threads. */
async function studyTransport(o: StudyRunFlags, cmd: Command): Promise<NatsTransport | LocalTransport> {
  if (o.nats === undefined)
    return new LocalTransport({
      ...(o.workers !== undefined ? { threads: cappedThreads(o.workers) } : {}),
      ...(o.memory !== undefined ? { memoryBytes: o.memory } : {}),
    });
  return NatsTransport.connect({
    ...natsOptions({ ...o, nats: o.nats }),
    ackWaitMs: o.ackWait * 1000,
    maxDeliver: o.maxDeliver,
    maxBundleBytes: o.maxBundleMb * 2 ** 20,
    // The buckets' age limit is every study's: only an explicit --keep-days asks for one (refused if other).
    ...(cmd.getOptionValueSource('keepDays') === 'cli' ? { retention: { ttlMs: o.keepDays * 86_400_000 } } : {}),
  });
}

/** The last lines on stderr and the exit code: a stop (by signal or closed stdout) or failed jobs. */
function reportRunEnd(r: Awaited<ReturnType<typeof runStudy>>, out: string, why: StopReason | undefined): void {
  if (r.interrupted) {
    const left = r.counts.pending + r.counts.running;
    process.stderr.write(
      `odeness: ${why === 'EPIPE' ? 'error: stdout was closed: ' : ''}stopped with ${plural(left, 'job')} ` +
        `of ${r.counts.total} not run (${r.counts.done} done, ${r.counts.failed} failed); ` +
        `recorded results are in ${out}\n`,
    );
    process.exitCode = stopExitCode(why ?? 'SIGINT');
  } else if (r.counts.failed > 0) {
    process.stderr.write(
      `${plural(r.counts.failed, 'job')} failed; see: odeness study status ${out}   (rerun them with --retry-failed)\n`,
    );
    process.exitCode = 1;
  }
}

/** `study status DIR`: counts, the run in progress or a dead one, failures. */
function registerStatusCommand(study: Command): void {
  study
    .command('status')
    .description('count done / running / failed / pending jobs of a study output directory')
    .argument('<dir>', 'the --out directory of study run')
    .option('--json', 'print the counts as one JSON document')
    .action(async (dir: string, o: { json?: boolean }) => {
      const s = studyStatus(dir);
      // A live page left by a run that died would say "running" and reload for ever: rewrite it.
      if (s.deadRun && existsSync(join(dir, 'report.html'))) {
        const { writeStudyReport } = await import('../report/study.js');
        await writeStudyReport(dir, { allowEmpty: true });
      }
      printStatus(s, !!o.json);
    });
}

/** `study clean FILE --nats URL`: remove a study's traces from the cluster. */
function registerCleanCommand(study: Command): void {
  addNatsOptions(
    study
      .command('clean')
      .description(
        "remove a study's results, bundles and queued jobs from a NATS cluster (its --out directory is kept)",
      )
      .argument('<file>', 'study file (YAML or JSON)')
      .option('--json', 'print the counts as one JSON document'),
    true,
  ).action(async (file: string, o: NatsFlags & { nats: string; json?: boolean }) => {
    const r = await cleanStudy(planStudy(file).jobs, natsOptions(o));
    if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
    else
      process.stdout.write(
        `removed ${r.results} result(s), ${r.bundles} bundle(s) and ${r.queued} queued job message(s) ` +
          `of ${r.jobs} job(s) from ${describeNats({ url: o.nats, ...o })}\n`,
      );
  });
}

interface WorkerFlags extends NatsFlags {
  nats: string;
  workers?: number;
  json?: boolean;
  dataRoot?: string;
  maxDatasetMb: number;
  inlineBundleKb: number;
  jobTimeout: number;
  stallTimeout: number;
  jobMemory?: number;
  memory?: number;
  hostJobs?: number;
  device: DeviceChoice;
}

/** `worker --nats URL`: serve a cluster's jobs from this machine. */
export function registerWorkerCommand(program: Command): Command {
  const worker = addNatsOptions(
    addWorkerOptions(
      program
        .command('worker')
        .description('serve study jobs from a NATS cluster (run on any number of machines)')
        .addOption(workersOption('jobs at once on this machine, one child process each'))
        .addOption(jobsMemoryOption("this worker's jobs running at once"))
        .addOption(
          new Option(
            '--inline-bundle-kb <kb>',
            'bundles up to this size ride inside the result message instead of the object store (0: never)',
          )
            .argParser(inlineBundleKb)
            .default(DEFAULT_INLINE_BUNDLE_BYTES / 1024),
        )
        .option('--json', 'when stopped, print the summary as one JSON document (logs stay on stderr)'),
    ),
    true,
  ).action(workerAction);
  // One name for "how many jobs at once on this machine", as in study run.
  return renamedOption(worker, '--concurrency <n>', '--workers');
}

/** --inline-bundle-kb: 0 to 512 (a result message must stay under NATS's default 1 MiB payload). */
function inlineBundleKb(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n > 512) throw new InvalidArgumentError('--inline-bundle-kb must be 0 to 512.');
  return n;
}

/** What a worker's jobs may read, how long they may run, their memory and device. */
function addWorkerOptions(worker: Command): Command {
  return worker
    .addOption(
      defaultText(
        new Option('--data-root <dir>', 'directory file datasets (json:, cifar10:) must lie under'),
        'none: jobs reading files are refused',
      ),
    )
    .addOption(
      new Option('--max-dataset-mb <mb>', 'largest dataset file a job may read')
        .argParser(positiveIntFlag('--max-dataset-mb'))
        .default(1024),
    )
    .addOption(
      new Option(
        '--job-timeout <seconds>',
        'wall-clock limit of one job; past it the job is stopped and recorded as failed',
      )
        .argParser(positiveSeconds('--job-timeout'))
        .default(6 * 3600),
    )
    .addOption(
      new Option(
        '--stall-timeout <seconds>',
        'a job reporting no progress this long is no longer kept alive (redelivered after the ack wait)',
      )
        .argParser(positiveSeconds('--stall-timeout'))
        .default(120),
    )
    .addOption(
      defaultText(
        new Option('--job-memory <mb>', 'heap limit of each job process').argParser(positiveIntFlag('--job-memory')),
        "node's own limit",
      ),
    )
    .addOption(
      defaultText(
        new Option(
          '--host-jobs <n>',
          "jobs at once across all of this user's workers on this machine (when starting more worker processes " +
            'than cores, e.g. one per Slurm task on a shared node)',
        ).argParser(positiveIntFlag('--host-jobs')),
        'no machine-wide limit',
      ),
    )
    .addOption(
      deviceOption("jobs' sessions (CPU jobs, and jobs requiring this device; others are left for other workers)"),
    );
}

async function workerAction(o: WorkerFlags): Promise<void> {
  const stop = abortOnSignals(() =>
    process.stderr.write('worker stopping: running jobs go back to the queue (Ctrl-C again to quit now)\n'),
  );
  try {
    const opts = natsOptions(o);
    const device = await resolveDevice(o.device);
    // A worker that advertises a device it cannot open would take jobs only to fail them: refuse to start.
    const broken = device === 'cpu' ? undefined : await probeDevice(device);
    if (broken) throw new OdenessError(broken);
    const s = await runWorker({
      device,
      ...opts,
      ...(o.workers !== undefined ? { concurrency: cappedThreads(o.workers) } : {}),
      ...(o.dataRoot !== undefined ? { dataRoot: o.dataRoot } : {}),
      ...(o.jobMemory !== undefined ? { jobMemoryMb: o.jobMemory } : {}),
      ...(o.memory !== undefined ? { memoryBytes: o.memory } : {}),
      ...(o.hostJobs !== undefined ? { hostJobs: o.hostJobs } : {}),
      maxDatasetBytes: o.maxDatasetMb * 2 ** 20,
      inlineBundleBytes: o.inlineBundleKb * 1024,
      jobTimeoutMs: o.jobTimeout * 1000,
      stallTimeoutMs: o.stallTimeout * 1000,
      signal: stop.signal,
      log: (level, message) =>
        process.stderr.write(
          `${new Date().toISOString()} ${level === 'warn' ? 'warning: ' : ''}${terminalSafe(message)}\n`,
        ),
    });
    if (o.json) process.stdout.write(JSON.stringify({ nats: describeNats(opts), ...s }) + '\n');
    process.stderr.write(
      `worker stopped (${describeNats(opts)}): ${plural(s.ran, 'job')} run (${s.done} done, ${s.failed} failed), ` +
        `${s.skipped} skipped, ${s.returned} returned to the queue, ${s.refused} refused` +
        `${s.passed > 0 ? `, ${s.passed} left for workers with another device` : ''}\n`,
    );
  } finally {
    stop.dispose();
  }
}
