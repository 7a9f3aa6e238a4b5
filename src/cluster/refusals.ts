/**
 * Refusals: a worker that will not run a job for a reason of its own (it
 * speaks another protocol version, holds another job key, or the job does
 * not fit it) leaves the job on the queue for another worker and says so on
 * `odeness.refusals.<id>`. The notice is JSON with a fixed shape that does
 * not depend on the protocol version (a coordinator must read it from a
 * worker of any version). The coordinator (RefusalTracker) names refusing
 * workers at once and, once no other worker shows signs of life for a grace
 * period, reports the jobs every worker refused instead of waiting for ever.
 * Signs of life are a worker's job events and, from a worker with an idle
 * slot, a notice on `odeness.workers.alive` every ALIVE_EVERY_MS (an idle
 * bigger worker is what a job too big for the others waits for).
 *
 * A refusal is a delivery that was no run: workers hear every notice
 * (RefusedDeliveries) and do not count refused deliveries of a message
 * against the coordinator's --max-deliver.
 */
import { z } from 'zod';

export const REFUSAL_SUBJECT_PREFIX = 'odeness.refusals.';

/** Why a worker left a job for another: the kinds a coordinator groups its report by. */
export const REFUSAL_KINDS = ['version', 'signature', 'size', 'memory'] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

/** Stable across protocol versions: never change these fields, only add optional ones. */
export const RefusalNoticeSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  /** The refusing worker process: `nats/<host>/<pid>`. */
  worker: z.string().min(1).max(500),
  /** The refusing worker's protocol version. */
  v: z.number().int().min(0).max(1_000_000),
  kind: z.string().max(32),
  reason: z.string().max(1000),
  /** Kind `memory`: the job's estimated peak memory and this worker's whole budget, bytes. */
  needs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  offers: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  /** The refused message's stream sequence: its deliveries that were refusals are told apart from runs. */
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
});
export type RefusalNotice = z.infer<typeof RefusalNoticeSchema>;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export const encodeRefusal = (n: RefusalNotice): Uint8Array => new TextEncoder().encode(JSON.stringify(n));

/** A notice, or undefined for anything unreadable (notices are best-effort, like events). */
function decodeNotice<T>(schema: z.ZodType<T>, bytes: Uint8Array): T | undefined {
  try {
    const r = schema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export const decodeRefusal = (bytes: Uint8Array): RefusalNotice | undefined => decodeNotice(RefusalNoticeSchema, bytes);

/**
 * How long a refused job waits before it is offered again (nak delay): it
 * grows with the deliveries, so a job nobody here runs costs little, and a
 * fitting worker that becomes free soon sees it.
 */
export function refusalDelayMs(deliveries: number, kind?: RefusalKind): number {
  // A job too big for this worker is what a bigger one that is idle takes at once (its standing pull is older
  // than this worker's fresh one, nats-worker.ts): offer it again soon.
  if (kind === 'memory') return Math.min(5_000, 250 * Math.max(1, deliveries));
  return Math.min(30_000, 500 * Math.max(1, deliveries));
}

/** Deliveries after which a refused message is dropped for good (its coordinator has long reported it). */
export const REFUSAL_MAX_DELIVERIES = 200;

/**
 * Worker side: how many deliveries of each message (job id and stream sequence) were refusals, from every
 * worker's notices (this one's included). Forged notices can lift a job's limit by at most
 * REFUSAL_MAX_DELIVERIES runs; the oldest messages are forgotten past MAX_TRACKED.
 */
export class RefusedDeliveries {
  private static readonly MAX_TRACKED = 20_000;
  private readonly counts = new Map<string, number>();

  heard(n: RefusalNotice): void {
    if (n.seq === undefined) return;
    const key = `${n.id}.${n.seq}`;
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.delete(key); // re-inserted last: the least recently refused go first
    this.counts.set(key, count);
    if (this.counts.size > RefusedDeliveries.MAX_TRACKED) this.counts.delete(this.counts.keys().next().value!);
  }

  /** Deliveries of message `seq` of job `id` that a worker refused (at most REFUSAL_MAX_DELIVERIES). */
  of(id: string, seq: number): number {
    return Math.min(REFUSAL_MAX_DELIVERIES, this.counts.get(`${id}.${seq}`) ?? 0);
  }
}

/** Grace periods after a job's first refusal during which idle workers' alive notices hold it (RefusalTracker). */
const ALIVE_PATIENCE = 3;

/** A worker with an idle slot says so this often (a sign of life for RefusalTracker). */
export const ALIVE_EVERY_MS = 2_000;
export const ALIVE_SUBJECT = 'odeness.workers.alive';

/** Stable across protocol versions, like a refusal notice; `mac` seals it when the cluster has a job key. */
export const AliveNoticeSchema = z.object({
  worker: z.string().min(1).max(500),
  /** Send time, ms since the epoch: with a job key each worker's times must increase (no replays). */
  at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  mac: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type AliveNotice = z.infer<typeof AliveNoticeSchema>;

export const encodeAlive = (n: AliveNotice): Uint8Array => new TextEncoder().encode(JSON.stringify(n));

export const decodeAlive = (bytes: Uint8Array): AliveNotice | undefined => decodeNotice(AliveNoticeSchema, bytes);

/** The worker process of a per-run worker name (`nats/host/pid/abcd` → `nats/host/pid`). */
export const workerProcess = (worker: string): string => worker.split('/').slice(0, 3).join('/');

/**
 * Coordinator side: which workers refused which wanted jobs, and which jobs
 * every worker that shows signs of life refused for `graceMs`.
 */
export class RefusalTracker {
  private readonly byJob = new Map<string, Map<string, RefusalNotice>>();
  private readonly lastSeen = new Map<string, number>();
  /** Alive notices of idle workers: they count for a job only ALIVE_PATIENCE grace periods after its first refusal. */
  private readonly lastAlive = new Map<string, number>();
  private readonly named = new Set<string>();
  private readonly firstRefusal = new Map<string, number>();
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly graceMs: number,
    private readonly version: number,
  ) {}

  /** Record a notice; returns a line naming the worker the first time it refuses for a version mismatch. */
  refused(n: RefusalNotice, now = Date.now()): string | undefined {
    const m = this.byJob.get(n.id) ?? new Map<string, RefusalNotice>();
    if (!m.has(n.worker)) m.set(n.worker, n);
    this.byJob.set(n.id, m);
    this.counts.set(n.id, (this.counts.get(n.id) ?? 0) + 1);
    if (!this.firstRefusal.has(n.id)) this.firstRefusal.set(n.id, now);
    const key = `${n.worker}:${n.kind}:${n.v}`;
    if (this.named.has(key)) return undefined;
    this.named.add(key);
    if (n.v !== this.version) {
      return (
        `worker ${n.worker} speaks protocol version ${n.v}, this coordinator ${this.version}: ` +
        "it leaves this study's jobs to others (run coordinator and workers of the same odeness version)"
      );
    }
    return `worker ${n.worker} refuses jobs of this study (${n.kind}): ${n.reason}`;
  }

  /** A start or progress event from a worker: it is alive and takes jobs. */
  active(worker: string, now = Date.now()): void {
    this.lastSeen.set(workerProcess(worker), now);
  }

  /**
   * An alive notice of a worker with an idle slot. An idle worker that is never offered a job (another worker
   * pulls it each time) must not hold the job for ever: it counts for ALIVE_PATIENCE grace periods only.
   */
  alive(worker: string, now = Date.now()): void {
    this.lastAlive.set(workerProcess(worker), now);
  }

  /** A job started or got a result: its refusals no longer matter. */
  forget(id: string): void {
    this.byJob.delete(id);
    this.firstRefusal.delete(id);
  }

  has(id: string): boolean {
    return this.byJob.has(id);
  }

  /** Refusal notices received for a job so far (each one a delivery that was no run). */
  count(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  /**
   * Jobs refused for `graceMs` since their first refusal while no worker
   * outside their refusers showed signs of life (started or progressed any
   * job): every worker there is refuses them.
   */
  refusedByAll(now = Date.now()): string[] {
    const out: string[] = [];
    for (const [id, m] of this.byJob) {
      if (now - (this.firstRefusal.get(id) ?? now) < this.graceMs) continue;
      const alive = ([w, t]: [string, number]) => !m.has(w) && now - t < this.graceMs;
      const patient = now - (this.firstRefusal.get(id) ?? now) < ALIVE_PATIENCE * this.graceMs;
      const otherAlive = [...this.lastSeen].some(alive) || (patient && [...this.lastAlive].some(alive));
      if (!otherAlive) out.push(id);
    }
    return out;
  }

  /** One line per reason for the given jobs: `3 job(s): wrong signature … (workers a, b)`. */
  describe(ids: readonly string[]): string[] {
    const groups = new Map<string, { jobs: number; workers: Set<string> }>();
    for (const id of ids) {
      const notices = [...(this.byJob.get(id)?.values() ?? [])];
      const reason = (n: RefusalNotice) => this.reasonOf(n, notices);
      for (const what of new Set(notices.map(reason))) {
        const g = groups.get(what) ?? { jobs: 0, workers: new Set<string>() };
        g.jobs++;
        for (const n of notices) if (reason(n) === what) g.workers.add(n.worker);
        groups.set(what, g);
      }
    }
    return [...groups].map(([what, g]) => {
      const workers = `worker${g.workers.size === 1 ? '' : 's'} ${[...g.workers].join(', ')}`;
      return `${g.jobs} job(s): ${what} (${workers})`;
    });
  }

  /** A job's refusals for memory say what it needs against the most any of its refusers offers. */
  private reasonOf(n: RefusalNotice, all: readonly RefusalNotice[]): string {
    if (n.v !== this.version) return `protocol version ${n.v} (this coordinator speaks ${this.version})`;
    if (n.kind === 'memory' && n.needs !== undefined && n.offers !== undefined) {
      const offers = Math.max(...all.flatMap((o) => (o.kind === 'memory' && o.offers ? [o.offers] : [])));
      return `memory: needs ${gib(n.needs)}, largest worker offers ${gib(offers)} (odeness worker --memory)`;
    }
    return n.reason;
  }
}
