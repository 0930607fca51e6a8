/** Public surface of the LLM comparison runtime. */
export { type BatchRecord, type BatchStore, FileBatchStore, MemoryBatchStore } from './batch-store.js';
export {
  backoffMs,
  classifyError,
  createAnthropic,
  type ErrorClassification,
  LlmClient,
  type SendResult,
} from './client.js';
export { type CompareOptions, Comparer, type ComparerOptions } from './comparer.js';
export { type MemoryLimiterOptions, MemoryRateLimiter, UnlimitedRateLimiter } from './limiter/memory.js';
export * from './limiter/types.js';
export { LlmMetrics } from './metrics.js';
export { BatchPollError, customIdFor } from './modes/batch-api.js';
export { AbortedError } from './modes/context.js';
export {
  buildRequest,
  injectionFlagsFor,
  PROMPT_VERSION,
  type RequestMeta,
} from './prompt.js';
export * from './types.js';
export { parseVerdictResponse, type Verdict, VerdictSchema } from './verdict.js';
