// The contract: types, zod schemas and pure rules that the operator, the worker and the CLI share.
// No I/O here, and nothing from operator/ or runtime/: they import the contract, never the reverse.
export * from './chunk.js';
export * from './cost.js';
export * from './duration.js';
export * from './egress.js';
export * from './events.js';
export * from './injection.js';
export * from './job.js';
export * from './outcome.js';
export * from './pool-runtime.js';
export * from './provider-batch.js';
export * from './results.js';
export * from './round.js';
export * from './sleep.js';
export * from './tiers.js';
export * from './tokens.js';
