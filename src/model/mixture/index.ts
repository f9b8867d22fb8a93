// The mixture of specialists: combiner math (ggml), weights bookkeeping and the router. See weights.ts for
// the formulas.
export { MixtureGenerator, type MixtureOptions, type MixtureResult } from './generator.ts';
export { LocalSpecialist, MixtureUnavailableError, type Specialist, type SpecialistSequence, TokenizerMismatchError, checkCompatible } from './specialist.ts';
export type { MixtureTrail, ModelShare, ModelWeight, TrailDrop, TrailToken } from './trail.ts';
export { Combiner, type MixedDistribution, type TokenAttribution, mixStep } from './combine.ts';
export { LIKELIHOOD_CONFIG, promptLogLikelihood, tokenLogLikelihoods } from './likelihood.ts';
export { type ScoreOptions, type ScoredText, scoreMixture, specialistLogLikelihoods } from './score.ts';
export { type Route, type RouteOptions, route } from './router.ts';
export {
  MIXTURE_DEFAULTS, MIXTURE_MODES, MixtureError, type MixtureMode, argmax, bayesUpdate, dropSpecialist, mixingWeights,
  normalise, promptPosterior, selectTop, tokenShares, uniformWeights,
} from './weights.ts';
