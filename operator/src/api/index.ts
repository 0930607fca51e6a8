// The cj.huleedu.io/v1alpha1 API: schemas (the source of truth), inferred types and helpers.

export * from '../../../contract/src/tiers.js';
export * from './batch.js';
export * from './common.js';
export * from './essay-size.js';
export * from './estimate.js';
export * from './pool.js';

import { CJBatchSpecSchema, CJBatchStatusSchema } from './batch.js';
import { LLMProviderPoolSpecSchema, LLMProviderPoolStatusSchema } from './pool.js';

/** Everything the CRD generator needs to know about each kind. */
export const KINDS = {
  CJBatch: {
    plural: 'cjbatches',
    singular: 'cjbatch',
    shortNames: ['cjb'],
    spec: CJBatchSpecSchema,
    status: CJBatchStatusSchema,
    description:
      'A comparative-judgement run: essays ranked by pairwise LLM judgements and graded through anchors.',
  },
  LLMProviderPool: {
    plural: 'llmproviderpools',
    singular: 'llmproviderpool',
    shortNames: ['llmpool'],
    spec: LLMProviderPoolSpecSchema,
    status: LLMProviderPoolStatusSchema,
    description:
      'An LLM provider account (model, API key, rate limits) shared by CJBatches in the namespace.',
  },
} as const;
export * from './resources.js';
