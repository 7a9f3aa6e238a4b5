/**
 * Seeded pseudo-random numbers that give the same stream on every machine
 * (a leaf module: data generation, initialisation, batch order and PCA use it).
 *
 * Generator: xoshiro128** (Blackman & Vigna), 32-bit integer arithmetic only
 * (Math.imul, shifts), so the integer stream is bit-identical everywhere.
 * Seeding: the seed (number or string) is turned into a key string, hashed to
 * 128 bits (cyrb128) and each word is passed through the splitmix32 finaliser.
 *
 * Streams are named: `fork(label)` derives a child generator from the parent's
 * *key* (root seed plus the path of labels), not from its state. A fork is
 * therefore a pure function of (seed, label path): it does not advance the
 * parent and does not depend on how many numbers the parent has drawn. Use
 * distinct labels for independent streams (data, init, batch order, ...).
 *
 * normal() uses Box–Muller (Math.log / Math.sqrt / Math.cos / Math.sin). V8
 * implements these in software (fdlibm port), so values match across machines
 * running Node; the integer and uniform streams need no such caveat.
 */

/** Anything Fisher–Yates can shuffle in place. */
export interface MutableArrayLike<T> {
  length: number;
  [index: number]: T;
}

export type Seed = number | string;

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

function seedKey(seed: Seed): string {
  if (typeof seed === 'number') {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
    return String(seed === 0 ? 0 : seed); // -0 → "0"
  }
  if (typeof seed !== 'string') throw new TypeError(`Rng seed must be a number or a string, got ${typeof seed}`);
  return seed;
}

/** cyrb128 over the UTF-8 bytes of a string: four 32-bit words. */
function hash128(text: string): [number, number, number, number] {
  const bytes = new TextEncoder().encode(text);
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < bytes.length; i++) {
    const k = bytes[i]!;
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** splitmix32 finaliser (one step from state `x`). */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seeded xoshiro128** generator. */
export class Rng {
  /** The stream's identity: root seed plus fork labels. Two Rngs with equal keys give equal streams. */
  readonly key: string;
  private readonly s = new Uint32Array(4);
  private spare: number | undefined;

  constructor(seed: Seed) {
    this.key = seedKey(seed);
    const h = hash128(this.key);
    for (let i = 0; i < 4; i++) this.s[i] = splitmix32((h[i]! + Math.imul(i, 0x632be5ab)) | 0);
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1; // all-zero state is a fixed point
  }

  /**
   * A generator with an explicit xoshiro128** state (four uint32 words, not all
   * zero), e.g. to check the core against published reference outputs.
   */
  static fromState(state: ArrayLike<number>, key = 'state'): Rng {
    if (state.length !== 4) throw new RangeError(`Rng.fromState needs 4 words, got ${state.length}`);
    const rng = new Rng(key);
    for (let i = 0; i < 4; i++) rng.s[i] = state[i]! >>> 0;
    if ((rng.s[0]! | rng.s[1]! | rng.s[2]! | rng.s[3]!) === 0)
      throw new RangeError('Rng.fromState: the all-zero state is not allowed');
    return rng;
  }

  /** A child stream named `label`; a pure function of (this.key, label). Does not advance this stream. */
  fork(label: string | number): Rng {
    return new Rng(`${this.key}/${encodeURIComponent(String(label))}`);
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits, or in [lo, hi) when bounds are given. */
  uniform(lo = 0, hi = 1): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    const u = (a * 67108864 + b) / TWO_POW_53;
    return lo === 0 && hi === 1 ? u : lo + (hi - lo) * u;
  }

  /** Gaussian sample (Box–Muller; the second value of each pair is kept for the next call). */
  normal(mean = 0, std = 1): number {
    let z: number;
    if (this.spare !== undefined) {
      z = this.spare;
      this.spare = undefined;
    } else {
      const u1 = 1 - this.uniform(); // (0, 1]: log is finite
      const u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      z = r * Math.cos(theta);
      this.spare = r * Math.sin(theta);
    }
    return mean + std * z;
  }

  /** Fill `out` with Gaussian samples (e.g. Kaiming-normal weights); returns `out`. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean = 0, std = 1): T {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int(n) needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // largest multiple of n ≤ 2^32
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<A extends MutableArrayLike<unknown>>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A random permutation of 0 … n−1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

/** Convenience: `new Rng(seed)`. */
export function createRng(seed: Seed): Rng {
  return new Rng(seed);
}
