// The operator's thin controller runtime on top of node:https and client-node's KubeConfig.
// See docs/controller-runtime.md for the design and the guarantees.
export * from './controller.js';
export * from './events.js';
export * from './finalizer.js';
export * from './health.js';
export * from './informer.js';
export * from './leader.js';
export * from './log.js';
export * from './metrics.js';
export * from './queue.js';
export * from './rest.js';
export * from './status.js';
