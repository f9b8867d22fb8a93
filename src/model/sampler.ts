// Next-token sampling over a logits vector, as llama.cpp's default sampler chain does it
// (common/sampling.cpp with src/llama-sampler.cpp):
//
//   penalties -> top-k -> top-p -> min-p -> temperature -> dist
//
// Each step narrows or reshapes the candidate list (sampler-candidates.ts); `dist` draws from the softmax of
// what is left with llama.cpp's RNG (sampler-rng.ts). Note the order: top-p and min-p see the logits
// *before* temperature, exactly as in llama.cpp. Temperature <= 0 means greedy: the highest logit after
// penalties wins (the first on ties). Arithmetic on logits is rounded to float32 like llama.cpp's.
//
// The defaults are llama.cpp's `common_params_sampling` defaults.
import { Candidates } from './sampler-candidates.ts';
import { Mt19937 } from './sampler-rng.ts';
import { ModelError } from './errors.ts';

export interface SamplerOptions {
  /** Divides the logits before the draw; <= 0 samples greedily. Default 0.8. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens; <= 0 disables. Default 40. */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability adds up to p; >= 1 disables. Default 0.95. */
  readonly topP?: number;
  /** Drop tokens less likely than minP times the most likely one; <= 0 disables. Default 0.05. */
  readonly minP?: number;
  /** Repetition penalty for tokens in the recent history (divides positive logits); 1 disables. Default 1. */
  readonly repeatPenalty?: number;
  /** Subtracted once from the logit of every token present in the recent history. Default 0. */
  readonly presencePenalty?: number;
  /** Subtracted from a token's logit once per occurrence in the recent history. Default 0. */
  readonly frequencyPenalty?: number;
  /** How many of the last history tokens the penalties look at; 0 disables, -1 means all. Default 64. */
  readonly penaltyLastN?: number;
  /** top-p and min-p keep at least this many tokens. Default 0. */
  readonly minKeep?: number;
  /** Seed of the random draws (32-bit unsigned); the same seed gives the same choices. Default: random. */
  readonly seed?: number;
  /**
   * Called after each choice with the logits as given (before penalties and temperature: the model's own
   * distribution) and the token chosen; the API computes logprobs here. Must not modify the logits.
   */
  readonly onSample?: (logits: Float32Array, token: number) => void;
  /** Limits the tokens that may be chosen (grammar-constrained sampling, e.g. sampler-json.ts). */
  readonly constraint?: TokenConstraint;
}

/**
 * A grammar over tokens: `allows` says whether a token may come next, `accept` records the one chosen.
 * The sampler asks about the token it would pick anyway first, and masks the whole vocabulary only when
 * that one is refused (llama.cpp's order: most steps cost one check).
 */
export interface TokenConstraint {
  allows(token: number): boolean;
  accept(token: number): void;
}

/** The options that are numbers. */
type NumericSamplerOptions = Omit<SamplerOptions, 'onSample' | 'constraint'>;
/** The numeric options, all of them set (the `options` a sampler reports). */
export type ResolvedSamplerOptions = Readonly<Required<NumericSamplerOptions>>;

export interface Sampler {
  /** The options in effect, defaults filled in, with the seed actually used. */
  readonly options: ResolvedSamplerOptions;
  /**
   * Picks the next token from `logits` (one float per vocabulary entry). `history` holds the tokens so far
   * (prompt and generated, as the caller wants them penalised); only its tail is read. Does not modify logits.
   */
  sample(logits: Float32Array, history?: readonly number[]): number;
  /** Restarts the random sequence from the seed. */
  reset(): void;
}

/** Bad sampler options or input. */
export class SamplerError extends ModelError {}

export const DEFAULT_SAMPLER_OPTIONS = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
  minKeep: 0,
} as const;

const f32 = Math.fround;

export function createSampler(options: SamplerOptions = {}): Sampler {
  const { onSample, constraint, ...numeric } = options;
  const resolved = resolveOptions(numeric);
  const { temperature, topK, topP, minP, minKeep } = resolved;
  const penaltiesOn =
    resolved.penaltyLastN !== 0 &&
    !(resolved.repeatPenalty === 1 && resolved.frequencyPenalty === 0 && resolved.presencePenalty === 0);

  const rng = new Mt19937(resolved.seed);
  const cur = new Candidates();
  const counts = new Map<number, number>();

  function applyTopK(): void {
    if (topK <= 0) return;
    const k = Math.min(topK, cur.size);
    if (!cur.sorted) cur.sortTop(k);
    cur.size = k;
    cur.sorted = true;
  }

  /** Keep the most likely tokens until their probability reaches topP (llama.cpp's adaptive sort). */
  function applyTopP(): void {
    if (topP >= 1) return;
    const max = cur.maxLogit();
    let sum = 0;
    for (let i = 0; i < cur.size; i++) sum = f32(sum + f32(Math.exp(cur.logits[i]! - max)));
    // Sorting everything is rarely needed: try the best 256 first, like llama.cpp.
    let sortedUpTo = cur.size;
    if (!cur.sorted) {
      sortedUpTo = cur.size > 1024 ? 256 : cur.size;
      cur.sortTop(sortedUpTo);
    }
    let cumulative = 0;
    let last = cur.size;
    for (let i = 0; i < cur.size; i++) {
      cumulative = f32(cumulative + f32(f32(Math.exp(cur.logits[i]! - max)) / sum));
      if (cumulative >= topP && i + 1 >= minKeep) {
        last = i + 1;
        break;
      }
      if (i === sortedUpTo - 1 && sortedUpTo < cur.size) {
        cur.sortTop(cur.size); // the top 256 were not enough: sort the rest too
        sortedUpTo = cur.size;
      }
    }
    cur.size = last;
    cur.sorted = true;
  }

  /** Drop tokens whose probability is below minP times the best one's. */
  function applyMinP(): void {
    if (minP <= 0 || cur.size === 0) return;
    const logMinP = f32(Math.log(minP));
    if (!cur.sorted) {
      // Unsorted: filter in vocabulary order, unless that would keep fewer than minKeep.
      const threshold = f32(cur.maxLogit() + logMinP);
      let kept = 0;
      for (let i = 0; i < cur.size; i++) if (cur.logits[i]! >= threshold) kept++;
      if (kept > 0 && kept >= minKeep) {
        cur.compact((i) => cur.logits[i]! >= threshold);
        return;
      }
      cur.sortTop(cur.size);
    }
    const threshold = f32(cur.logits[0]! + logMinP);
    let i = 1; // the best token always stays
    while (i < cur.size && !(cur.logits[i]! < threshold && i >= minKeep)) i++;
    cur.size = i;
  }

  /** Draw from the softmax of the remaining candidates (llama.cpp's `dist`: one uniform draw, one pass). */
  function draw(): number {
    if (cur.size === 1) {
      rng.nextDouble(); // llama.cpp draws even then; keep the sequence aligned
      return cur.ids[0]!;
    }
    const max = cur.maxLogit();
    let sum = 0; // double, as in llama.cpp
    for (let i = 0; i < cur.size; i++) {
      const p = f32(Math.exp(cur.logits[i]! - max));
      cur.probs[i] = p;
      sum += p;
    }
    const target = sum * rng.nextDouble();
    let running = 0;
    for (let i = 0; i < cur.size; i++) {
      running += cur.probs[i]!;
      if (running >= target) return cur.ids[i]!;
    }
    return cur.ids[cur.size - 1]!;
  }

  function choose(logits: Float32Array, history: readonly number[]): number {
    cur.fill(logits); // candidates in vocabulary order: index = token id until top-k reorders them
    if (penaltiesOn && history.length > 0) applyPenalties(cur.logits, history, resolved, counts);
    if (temperature <= 0) return cur.ids[cur.argmax()]!;
    applyTopK();
    applyTopP();
    applyMinP();
    if (temperature !== 1) {
      for (let i = 0; i < cur.size; i++) cur.logits[i] = f32(cur.logits[i]! / temperature);
    }
    return draw();
  }

  return {
    options: resolved,
    sample(logits: Float32Array, history: readonly number[] = []): number {
      if (logits.length === 0) {
        throw new SamplerError(
          'no logits to sample from',
          'one logit per vocabulary entry',
          'an empty array',
          'Pass the output row of the model head.',
        );
      }
      let token = choose(logits, history);
      if (constraint !== undefined && !constraint.allows(token)) token = choose(masked(logits, constraint), history);
      constraint?.accept(token);
      onSample?.(logits, token);
      return token;
    },
    reset(): void {
      rng.seed(resolved.seed);
    },
  };
}

/** A copy of `logits` with every token the constraint refuses at -Infinity; throws if it refuses them all. */
function masked(logits: Float32Array, constraint: TokenConstraint): Float32Array {
  const out = new Float32Array(logits.length).fill(-Infinity);
  let allowed = 0;
  for (let i = 0; i < logits.length; i++) {
    if (constraint.allows(i)) {
      out[i] = logits[i]!;
      allowed++;
    }
  }
  if (allowed === 0) {
    throw new SamplerError('the grammar allows no token here', 'at least one allowed token', 'none', 'raise max_tokens, or check the grammar');
  }
  return out;
}

export interface PenaltyOptions {
  readonly repeatPenalty: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly penaltyLastN: number;
}

/**
 * llama.cpp's penalties sampler, in place on a logits vector indexed by token id: for every token among
 * the last `penaltyLastN` of `history` (all of it for -1), divide a positive logit by repeatPenalty (multiply
 * a negative one: dividing would make it more likely), then subtract count * frequencyPenalty + presencePenalty.
 */
export function applyPenalties(
  logits: Float32Array,
  history: readonly number[],
  options: PenaltyOptions,
  counts: Map<number, number> = new Map(),
): void {
  const repeat = f32(options.repeatPenalty);
  const frequency = f32(options.frequencyPenalty);
  const presence = f32(options.presencePenalty);
  const n = options.penaltyLastN < 0 ? history.length : Math.min(options.penaltyLastN, history.length);
  counts.clear();
  for (let i = history.length - n; i < history.length; i++) {
    const token = history[i]!;
    counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  for (const [token, count] of counts) {
    if (!Number.isInteger(token) || token < 0 || token >= logits.length) continue;
    const logit = logits[token]!;
    const repeated = logit <= 0 ? f32(logit * repeat) : f32(logit / repeat);
    logits[token] = f32(repeated - f32(f32(count * frequency) + presence));
  }
}

function resolveOptions(options: NumericSamplerOptions): Required<NumericSamplerOptions> {
  const o = { ...DEFAULT_SAMPLER_OPTIONS, ...dropUndefined(options) };
  const finite = (name: keyof SamplerOptions, value: number): void => {
    if (!Number.isFinite(value)) {
      throw new SamplerError(
        `sampler option ${name} is not a number`,
        'a finite number',
        String(value),
        'Fix the request parameters.',
      );
    }
  };
  for (const [name, value] of Object.entries(o)) finite(name as keyof NumericSamplerOptions, value);
  const integer = (name: keyof SamplerOptions, value: number, min: number): void => {
    if (!Number.isInteger(value) || value < min) {
      throw new SamplerError(
        `sampler option ${name} is out of range`,
        `an integer >= ${min}`,
        String(value),
        'Fix the request parameters.',
      );
    }
  };
  integer('topK', o.topK, Number.MIN_SAFE_INTEGER);
  integer('penaltyLastN', o.penaltyLastN, -1);
  integer('minKeep', o.minKeep, 0);
  if (o.repeatPenalty <= 0) {
    throw new SamplerError(
      'repeatPenalty must be positive',
      'a number > 0 (1 disables it)',
      String(o.repeatPenalty),
      'Use 1 for no penalty.',
    );
  }
  const seed = options.seed ?? randomSeed();
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new SamplerError(
      'sampler seed is out of range',
      'an integer in [0, 2^32)',
      String(seed),
      'Pick a 32-bit unsigned seed.',
    );
  }
  return { ...o, temperature: f32(o.temperature), topP: f32(o.topP), minP: f32(o.minP), seed };
}

function dropUndefined(options: NumericSamplerOptions): Partial<NumericSamplerOptions> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
