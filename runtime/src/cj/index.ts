/** The CJ statistics engine: pure functions, no I/O. `plan()` is the one entry point. */
export { connectivity } from './connectivity.js';
export { fitMap } from './fit.js';
export { leaveOneAnchorOut, projectGrades } from './grades.js';
export { comparisonTerms, outcomeValue, winProbability } from './model.js';
export { plan, planParsed } from './plan.js';
export { eapReliability, splitHalf } from './reliability.js';
export { createRng } from './rng.js';
export { kendall, qwk, spearman } from './stats.js';
export * from './types.js';
export { laplace } from './uncertainty.js';
