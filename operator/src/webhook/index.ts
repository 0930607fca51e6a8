// The validating admission webhook for CJBatch and LLMProviderPool.
export * from './certs.js';
export * from './config.js';
export * from './kube-store.js';
export * from './review.js';
export * from './rotation.js';
export * from './server.js';
