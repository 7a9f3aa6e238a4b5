/**
 * A keyed cache of built sessions (or anything holding them) with an explicit policy: the caller creates
 * the cache, decides how many idle entries it keeps (`maxIdle`, `trim`) and when everything goes
 * (`clear`). Entries in use are never evicted: `acquire` counts a reference, `release` gives it back.
 * A training engine, a study worker thread or a benchmark each owns its own cache; none is process-wide.
 */

export interface Releasable {
  release(): Promise<void>;
}

/** An entry taken from the cache; give it back with SessionCache.release. */
export interface Lease<T> {
  readonly key: string;
  readonly value: T;
}

interface Slot<T> extends Lease<T> {
  refs: number;
  lastUsed: number;
}

export class SessionCache<T extends Releasable> {
  private readonly slots = new Map<string, Promise<Slot<T>>>();
  private uses = 0;

  /** `maxIdle`: idle entries kept after each new build (least recently used go first). */
  constructor(readonly maxIdle = 8) {
    if (!Number.isInteger(maxIdle) || maxIdle < 0) {
      throw new TypeError(`SessionCache: maxIdle must be a non-negative integer, got ${maxIdle}`);
    }
  }

  /** Entries built or being built. */
  get size(): number {
    return this.slots.size;
  }

  /** The entry under `key`, built by `build` when absent (a failed build is forgotten). */
  async acquire(key: string, build: () => Promise<T>): Promise<{ lease: Lease<T>; cached: boolean }> {
    let p = this.slots.get(key);
    const cached = p !== undefined;
    if (!p) {
      p = build().then((value) => ({ key, value, refs: 0, lastUsed: 0 }));
      this.slots.set(key, p);
      p.catch(() => this.slots.get(key) === p && this.slots.delete(key));
    }
    const slot = await p;
    slot.refs++;
    slot.lastUsed = ++this.uses;
    if (!cached) await this.trim(this.maxIdle);
    return { lease: slot, cached };
  }

  release(lease: Lease<T>): void {
    const slot = lease as Slot<T>;
    slot.refs = Math.max(0, slot.refs - 1);
  }

  /**
   * Keep only the `keep` most recently used idle entries. A session holds onnxruntime's memory arena at
   * the size of its largest run (GBs for the paper's image field), so a study worker trims after every
   * job: 8 idle sessions per thread grew a MNIST smoke run by ~1 GB per job until the machine swapped.
   */
  async trim(keep: number): Promise<void> {
    const idle: Slot<T>[] = [];
    for (const p of [...this.slots.values()]) {
      const s = await p.catch(() => undefined);
      if (s && s.refs === 0) idle.push(s);
    }
    idle.sort((a, b) => a.lastUsed - b.lastUsed);
    let excess = idle.length - keep;
    for (const s of idle) {
      if (excess <= 0) break;
      // Checked again here: a user may have taken the entry while we waited.
      if (s.refs !== 0 || this.slots.get(s.key) === undefined) continue;
      this.slots.delete(s.key);
      excess--;
      await s.value.release();
    }
  }

  /** Release every idle entry (the end of an engine, a worker or a test). */
  clear(): Promise<void> {
    return this.trim(0);
  }
}
