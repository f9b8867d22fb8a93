// Settings of DiLoCo's aggregation and delta encoding, one comment each (numbers live here, not in code).
import { DILOCO_OUTER, type OuterOptions } from './outer.ts';

export const AGGREGATORS = ['mean', 'median', 'trimmed-mean', 'centered-clip', 'krum'] as const;
export type AggregatorName = (typeof AGGREGATORS)[number];

export const COMPRESSIONS = ['f32', 'f16', 'int8'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface DilocoConfig {
  outer: OuterOptions;
  aggregator: AggregatorName;
  /**
   * Byzantine participants the robust aggregators assume (trimmed mean trims this many from each end of
   * every coordinate; Krum scores against the n - f - 2 nearest). Median and mean ignore it.
   */
  assumedByzantine: number;
  /** Centered clipping: clipping iterations per round (Karimireddy et al. 2021 use 1 to 3). */
  clipIterations: number;
  /**
   * Centered clipping radius tau in the pseudo-gradient's L2 norm; 0 = adaptive: the median distance of the
   * participants from the current centre (the scale of a DiLoCo delta is not known in advance).
   */
  clipRadius: number;
  /** Multi-Krum: average the m best-scored deltas (1 = Krum as published). */
  krumSelect: number;
  /** How deltas travel. */
  compression: Compression;
}

/** The paper's outer step, plain mean, f32 deltas. */
export function defaultDilocoConfig(): DilocoConfig {
  return { outer: { ...DILOCO_OUTER }, aggregator: 'mean', assumedByzantine: 0, clipIterations: 3, clipRadius: 0, krumSelect: 1, compression: 'f32' };
}

/** Values per int8 block sharing one f32 scale: 64 values = 64 + 4 bytes, 1.06 bytes a value. */
export const INT8_BLOCK = 64;
