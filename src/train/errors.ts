// Errors of the training layer: what was expected, what was found, and what to do about it.

import { ModelError } from '../model/errors.ts';

/** Base of the training layer's errors (same shape as the model layer's: expected, actual, hint). */
export class TrainError extends ModelError {}

/** The model and its training state would not fit in the memory available. */
export class TrainMemoryError extends TrainError {}

/** A checkpoint that cannot be resumed here (not a checkpoint, another model, damaged). */
export class CheckpointError extends TrainError {}
