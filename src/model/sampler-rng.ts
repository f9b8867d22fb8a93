// The random numbers llama.cpp samples with: `std::mt19937` seeded with the sampler seed, drawn through
// `std::uniform_real_distribution<double>(0, 1)` as libstdc++ computes it. With the same seed and the same
// candidates, our sampler draws the same numbers as llama.cpp's `dist` sampler.

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_POW_32 = 4294967296;
const TWO_POW_64 = 18446744073709551616;
const LARGEST_BELOW_ONE = 1 - 2 ** -53; // nextafter(1.0, 0.0)

/** The 32-bit Mersenne Twister, bit-identical to C++'s `std::mt19937`. */
export class Mt19937 {
  readonly #state = new Uint32Array(N);
  #index = N;

  constructor(seed: number) {
    this.seed(seed);
  }

  /** Restarts the sequence from a 32-bit seed (as `std::mt19937::seed`). */
  seed(seed: number): void {
    const mt = this.#state;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ?? 0;
      mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
    this.#index = N;
  }

  /** The next 32-bit output. */
  nextUint32(): number {
    if (this.#index >= N) this.#twist();
    let y = this.#state[this.#index++] ?? 0;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * A double in [0, 1): libstdc++'s `generate_canonical<double, 53>` takes two 32-bit draws,
   * low word first, and divides by 2^64.
   */
  nextDouble(): number {
    const low = this.nextUint32();
    const high = this.nextUint32();
    const r = (low + high * TWO_POW_32) / TWO_POW_64;
    return r >= 1 ? LARGEST_BELOW_ONE : r;
  }

  #twist(): void {
    const mt = this.#state;
    for (let i = 0; i < N; i++) {
      const y = ((mt[i] ?? 0) & UPPER_MASK) | ((mt[(i + 1) % N] ?? 0) & LOWER_MASK);
      mt[i] = ((mt[(i + M) % N] ?? 0) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)) >>> 0;
    }
    this.#index = 0;
  }
}
