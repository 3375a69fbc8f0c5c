/**
 * A small seeded pseudo-random generator for training (shuffling, augmentation, mixup, PGD random
 * starts): sfc32 (Chris Doty-Humphrey's "small fast counting" generator, 128-bit state, passes
 * PractRand) seeded through splitmix32. No dependency, the same stream on every platform for the
 * same seed, and a state that is four plain numbers, so it can be checkpointed or handed to a
 * worker and resumed exactly.
 */

/** The whole state of an {@link Rng}: four uint32 words and the cached second normal deviate. */
export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

/** splitmix32 step: a well-mixed uint32 from a counter, used only to spread the seed. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const TWO_POW_32 = 4294967296;

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** Box–Muller gives deviates in pairs; the second waits here. */
  private spare: number | null = null;

  /**
   * @param seed any finite number; integers in [0, 2^53) give distinct streams (the seed's low and
   *   high 32-bit halves both feed the state).
   */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed ${seed} is not a finite number`);
    const lo = seed >>> 0;
    const hi = Math.floor(Math.abs(seed) / TWO_POW_32) >>> 0;
    // splitmix32 is a bijection of its input, so a depends on lo alone and b on hi alone: distinct
    // seeds give distinct states, and sfc32's step is a bijection of the state too.
    this.a = splitmix32(lo) | 0;
    this.b = splitmix32(hi ^ 0x6a09e667) | 0;
    this.c = splitmix32(lo ^ hi ^ 0xbb67ae85) | 0;
    this.d = 1; // sfc32's counter
    // Warm up so that nearby seeds decorrelate.
    for (let i = 0; i < 15; i++) this.nextU32();
  }

  /** A generator resumed from {@link Rng.state}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** The next uint32 of the stream. */
  nextU32(): number {
    const a = this.a,
      b = this.b,
      c = this.c,
      d = this.d;
    const t = (((a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1), with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n) (unbiased, by rejection), for integer 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32)
      throw new RangeError(`Rng.int: n = ${n} must be an integer in [1, 2^32]`);
    if (n === TWO_POW_32) return this.nextU32();
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** A standard normal deviate (Box–Muller, both deviates used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * v;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Gamma(shape, 1) by Marsaglia & Tsang (2000), with the usual boost for shape < 1. */
  gamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape))
      throw new RangeError(`Rng.gamma: shape ${shape} must be a positive number`);
    if (shape < 1) {
      let u = 0;
      while (u === 0) u = this.uniform();
      return this.gamma(shape + 1) * Math.pow(u, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (mixup's λ with a = b = α). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    const s = x + y;
    // Both underflowing to 0 is possible only for tiny shapes; fall back to a fair coin.
    return s > 0 ? x / s : this.uniform() < a / (a + b) ? 1 : 0;
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** An independent generator derived from this one (advances this one by two words). */
  fork(): Rng {
    return new Rng(this.nextU32() * TWO_POW_32 + this.nextU32());
  }

  /** The full state, as plain numbers (JSON- and structured-clone-safe). */
  state(): RngState {
    return { s: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0], spare: this.spare };
  }

  setState(state: RngState): void {
    const [a, b, c, d] = state.s;
    for (const w of state.s)
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32)
        throw new RangeError(`Rng.setState: ${w} is not a uint32 word`);
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    this.d = d | 0;
    this.spare = state.spare;
  }
}
