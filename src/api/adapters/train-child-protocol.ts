/**
 * The wire between the primary and a training process (train-child.ts): the job on the command line, one
 * JSON line per event on the child's stdout. Both sides validate with these schemas.
 */
import { z } from 'zod';
import { ADAPTER_KINDS } from '../../train/adapter/index.ts';

export const TrainChildJobSchema = z.object({
  modelPath: z.string(),
  outPath: z.string(),
  kind: z.enum(ADAPTER_KINDS),
  rank: z.number().int().positive().optional(),
  steps: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  threads: z.number().int().positive().optional(),
});
export type TrainChildJob = z.infer<typeof TrainChildJobSchema>;

export const TrainChildLineSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('progress'), step: z.number(), total: z.number(), loss: z.number().nullable() }),
  z.object({ event: z.literal('done'), loss: z.number().nullable() }),
  z.object({ event: z.literal('error'), message: z.string() }),
]);
export type TrainChildLine = z.infer<typeof TrainChildLineSchema>;
