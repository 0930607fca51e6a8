// LLMProviderPool: one provider account (model, key, rate limits) that many CJBatches share.
// The zod schemas below are the single source of truth: hack/gen-crds.ts turns them into the
// CRD, the TypeScript types are inferred from them, and the validation module parses with them.

import { z } from 'zod';
import {
  BATCHING_MODES,
  CACHE_TTLS,
  MAX_BUNDLE_SIZE,
  POOL_DEFAULTS,
} from '../../../contract/src/pool-runtime.js';
import {
  ABSOLUTE_MAX,
  LIMIT_FIELDS,
  type LimitField,
  TIER_CEILINGS,
  TIER_NAMES,
} from '../../../contract/src/tiers.js';
import type { ObjectMeta } from '../kube/rest.js';
import {
  type API_VERSION,
  conditions,
  configMapKey,
  counter,
  DURATION_PATTERN,
  decimal,
  duration,
  objectName,
  parseDuration,
  type TwinRule,
  time,
  withRules,
} from './common.js';
import {
  DEFAULT_CONTEXT_WINDOW_TOKENS,
  MAX_CONTEXT_WINDOW_TOKENS,
  MIN_CONTEXT_WINDOW_TOKENS,
} from './essay-size.js';

export const PROVIDERS = ['anthropic', 'fake'] as const;
/** Providers with an asynchronous batch API (batching.mode batch_api). */
export const PROVIDERS_WITH_BATCH_API = ['anthropic'] as const;
export { BATCHING_MODES, MAX_BUNDLE_SIZE };

const LIMIT_DESCRIPTIONS: Record<LimitField, string> = {
  requestsPerMinute:
    'Requests per minute the pool may send (the provider counts RPM per organisation and model).',
  inputTokensPerMinute:
    'Input tokens per minute (uncached input plus cache writes; cache reads do not count at Anthropic).',
  outputTokensPerMinute: 'Output tokens per minute.',
  maxConcurrency: 'Maximum requests in flight at once across all workers of all batches using the pool.',
};

const limitField = (f: LimitField) =>
  z.number().int().min(1).max(ABSOLUTE_MAX[f]).optional().describe(LIMIT_DESCRIPTIONS[f]);

function ceilingSummary(): string {
  const fmt = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : `${n}`);
  return Object.entries(TIER_CEILINGS)
    .map(
      ([t, c]) =>
        `${t}: ${fmt(c.requestsPerMinute)} requests, ${fmt(c.inputTokensPerMinute)} input and ` +
        `${fmt(c.outputTokensPerMinute)} output tokens per minute, ${c.maxConcurrency} concurrent`,
    )
    .join('; ');
}

export const LimitsSchema = z
  .object({
    requestsPerMinute: limitField('requestsPerMinute'),
    inputTokensPerMinute: limitField('inputTokensPerMinute'),
    outputTokensPerMinute: limitField('outputTokensPerMinute'),
    maxConcurrency: limitField('maxConcurrency'),
  })
  .describe(
    'Rate limits shared by every batch on the pool. Each must be within the ceiling of spec.tier ' +
      `(${ceilingSummary()}). A limit left out runs at the tier ceiling; tier custom needs all four.`,
  );
export type Limits = z.infer<typeof LimitsSchema>;

export const RetrySchema = z
  .object({
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(POOL_DEFAULTS.retry.maxAttempts)
      .describe('Attempts per comparison, including the first, before it is recorded as failed.'),
    initialBackoff: duration(
      'Backoff before the first retry; doubles per attempt with jitter (e.g. 500ms).',
    ).default(POOL_DEFAULTS.retry.initialBackoff),
    maxBackoff: duration(
      'Upper bound for the backoff between attempts (e.g. 60s). Retry-After always wins.',
    ).default(POOL_DEFAULTS.retry.maxBackoff),
  })
  .describe(
    'Retries of failed provider calls (429, 5xx, timeouts). A Retry-After header is always honoured.',
  );

export const SlowStartSchema = z
  .object({
    duration: duration(
      'Time from the first call of an idle pool to its full rate (e.g. 60s); 0s turns the slow start off.',
    ).default(POOL_DEFAULTS.slowStart.duration),
    initialPercent: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(POOL_DEFAULTS.slowStart.initialPercent)
      .describe('Percent of the rate limits the pool starts at.'),
  })
  .describe(
    'Slow start: a pool that was idle (its first call, or none for 10 minutes) starts at initialPercent ' +
      "of its limits and ramps linearly to all of them, so a new class does not jump the organisation's " +
      'traffic (providers may answer a sharp rise with 429s, "acceleration limits"). Turn it off (0s) ' +
      'when the key already carries steady traffic or the provider has no such limit.',
  );

export const BatchingSchema = z
  .object({
    mode: z
      .enum(BATCHING_MODES)
      .default(POOL_DEFAULTS.batching.mode)
      .describe(
        'per_request: one API call per comparison. serial_bundle: bundleSize comparisons in one call. ' +
          'batch_api: the provider asynchronous batch API (50% cheaper, minutes to hours; anthropic only).',
      ),
    bundleSize: z
      .number()
      .int()
      // Bounds as a refinement (not .min/.max) so the CRD reports the CEL rule's message below.
      .refine((n) => n >= 1 && n <= MAX_BUNDLE_SIZE, {
        error: (iss) =>
          `bundleSize ${String(iss.input)} is out of range; set spec.batching.bundleSize between 1 and ${MAX_BUNDLE_SIZE}`,
      })
      .default(POOL_DEFAULTS.batching.bundleSize)
      .describe('Comparisons per call in serial_bundle mode, 1..64.'),
    batchPollInterval: duration(
      'How often a submitted provider batch is polled in batch_api mode (e.g. 30s).',
    ).default(POOL_DEFAULTS.batching.batchPollInterval),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: `!has(self.bundleSize) || (self.bundleSize >= 1 && self.bundleSize <= ${MAX_BUNDLE_SIZE})`,
        messageExpression: `'bundleSize %d is out of range; set spec.batching.bundleSize between 1 and ${MAX_BUNDLE_SIZE}'.format([self.bundleSize])`,
        fieldPath: '.bundleSize',
        reason: 'FieldValueInvalid',
      },
    ],
  })
  .describe('How comparisons are packed into provider calls.');

export const PromptCachingSchema = z
  .object({
    enabled: z
      .boolean()
      .default(POOL_DEFAULTS.promptCaching.enabled)
      .describe('Cache the assignment and rubric prefix (cache reads cost ~10% of input).'),
    ttl: z
      .enum(CACHE_TTLS)
      .default(POOL_DEFAULTS.promptCaching.ttl)
      .describe('Cache lifetime: 5m (write cost 1.25x input) or 1h (write cost 2x input).'),
  })
  .describe('Prompt caching of the shared prompt prefix.');

// Prices: a decimal string ("3.00") or a whole number of dollars (3); never a float.
const price = (description: string) =>
  z.union([z.number().int().min(0).max(1_000_000), decimal(description)]).describe(description);

export const PricingSchema = z
  .object({
    inputPerMTok: price('USD per million uncached input tokens: a decimal string ("3.00") or an integer.'),
    outputPerMTok: price('USD per million output tokens, as a decimal string (e.g. "15.00").'),
    cacheReadPerMTok: price('USD per million cache-read tokens (default 10% of input).').optional(),
    cacheWritePerMTok: price(
      'USD per million cache-write tokens (default 1.25x input for 5m, 2x for 1h).',
    ).optional(),
  })
  .describe(
    'Prices for cost reporting in status.cost. Decimal strings or integers, never floats (API conventions).',
  );

const tierMap = (f: LimitField) =>
  `{${Object.entries(TIER_CEILINGS)
    .map(([t, c]) => `'${t}': ${c[f]}`)
    .join(', ')}}`;

type PoolSpecShape = {
  provider: string;
  tier: string;
  limits?: Partial<Record<LimitField, number>> | undefined;
  batching: { mode: string };
  retry: { initialBackoff: string; maxBackoff: string };
};

// Limits within the tier's ceiling: one rule per limit, generated from tiers.ts.
const tierRules: TwinRule<PoolSpecShape>[] = LIMIT_FIELDS.map((f) => ({
  field: `limits.${f}`,
  cel: {
    rule: `self.tier == 'custom' || !has(self.limits) || !has(self.limits.${f}) || self.limits.${f} <= ${tierMap(f)}[self.tier]`,
    // format() rather than string(int) + '...': the apiserver cannot bound the size of a
    // concatenated string(int) and rejects the rule as too expensive.
    messageExpression: `'${f} %d exceeds the %s tier ceiling of %d; lower spec.limits.${f} or choose a higher spec.tier'.format([self.limits.${f}, self.tier, ${tierMap(f)}[self.tier]])`,
    fieldPath: `.limits.${f}`,
    reason: 'FieldValueInvalid',
  },
  check: (s) => {
    const v = s.limits?.[f];
    if (s.tier === 'custom' || v === undefined) return undefined;
    const ceiling = TIER_CEILINGS[s.tier as keyof typeof TIER_CEILINGS]?.[f];
    if (ceiling === undefined || v <= ceiling) return undefined;
    return `${f} ${v} exceeds the ${s.tier} tier ceiling of ${ceiling}; lower spec.limits.${f} or choose a higher spec.tier`;
  },
}));

export const POOL_SPEC_RULES: TwinRule<PoolSpecShape>[] = [
  ...tierRules,
  {
    field: 'limits',
    cel: {
      rule: `self.tier != 'custom' || (has(self.limits) && ${LIMIT_FIELDS.map((f) => `has(self.limits.${f})`).join(' && ')})`,
      message: `tier custom has no ceiling to fall back on; set all of spec.limits.${LIMIT_FIELDS.join(', ')} or choose tier start, build or scale`,
      fieldPath: '.limits',
      reason: 'FieldValueRequired',
    },
    check: (s) =>
      s.tier === 'custom' && !LIMIT_FIELDS.every((f) => s.limits?.[f] !== undefined)
        ? `tier custom has no ceiling to fall back on; set all of spec.limits.${LIMIT_FIELDS.join(', ')} or choose tier start, build or scale`
        : undefined,
  },
  {
    field: 'batching.mode',
    cel: {
      rule: `self.batching.mode != 'batch_api' || self.provider in [${PROVIDERS_WITH_BATCH_API.map((p) => `'${p}'`).join(', ')}]`,
      messageExpression: `'batching mode batch_api needs a provider with a batch API (${PROVIDERS_WITH_BATCH_API.join(', ')}) but provider is ' + self.provider + '; use mode per_request or serial_bundle'`,
      fieldPath: '.batching.mode',
      reason: 'FieldValueForbidden',
    },
    check: (s) =>
      s.batching.mode === 'batch_api' && !(PROVIDERS_WITH_BATCH_API as readonly string[]).includes(s.provider)
        ? `batching mode batch_api needs a provider with a batch API (${PROVIDERS_WITH_BATCH_API.join(', ')}) but provider is ${s.provider}; use mode per_request or serial_bundle`
        : undefined,
  },
  {
    field: 'retry.initialBackoff',
    cel: {
      // The pattern guard keeps a malformed duration from failing this rule with a conversion
      // error on top of the pattern error the schema already reports.
      rule: `!self.retry.initialBackoff.matches('${DURATION_PATTERN}') || !self.retry.maxBackoff.matches('${DURATION_PATTERN}') || duration(self.retry.initialBackoff) <= duration(self.retry.maxBackoff)`,
      messageExpression:
        "'initialBackoff ' + self.retry.initialBackoff + ' is longer than maxBackoff ' + self.retry.maxBackoff + '; lower spec.retry.initialBackoff or raise spec.retry.maxBackoff'",
      fieldPath: '.retry.initialBackoff',
      reason: 'FieldValueInvalid',
    },
    check: (s) =>
      parseDuration(s.retry.initialBackoff) > parseDuration(s.retry.maxBackoff)
        ? `initialBackoff ${s.retry.initialBackoff} is longer than maxBackoff ${s.retry.maxBackoff}; lower spec.retry.initialBackoff or raise spec.retry.maxBackoff`
        : undefined,
  },
];

export const LLMProviderPoolSpecSchema = withRules(
  z
    .object({
      provider: z
        .enum(PROVIDERS)
        .describe(
          'LLM provider: anthropic (the real API) or fake (the bundled fake server, for demos and tests).',
        ),
      baseURL: z
        .string()
        .max(2048)
        .regex(/^https?:\/\/[^\s]+$/)
        .optional()
        .describe(
          'Override of the provider endpoint (a proxy or the fake server), e.g. http://127.0.0.1:8089.',
        ),
      model: z.string().min(1).max(128).describe('Model name sent to the provider, e.g. claude-sonnet-5-5.'),
      contextWindowTokens: z
        .number()
        .int()
        .min(MIN_CONTEXT_WINDOW_TOKENS)
        .max(MAX_CONTEXT_WINDOW_TOKENS)
        .optional()
        .describe(
          `Context window of the model in tokens (default ${DEFAULT_CONTEXT_WINDOW_TOKENS}, every current Claude model). ` +
            'Admission refuses a batch with an essay whose estimated tokens could not fit one comparison prompt ' +
            '(see docs/admission.md, "Essay size").',
        ),
      apiKeySecretRef: z
        .object({
          name: objectName('Name of the Secret in the pool namespace.'),
          key: configMapKey('Key in the Secret that holds the API key.'),
        })
        .describe(
          'The Secret key holding the provider API key. Workers mount it; the operator never logs it.',
        ),
      tier: z
        .enum(TIER_NAMES)
        .default(POOL_DEFAULTS.tier)
        .describe(
          'Provider usage tier: start, build or scale cap spec.limits at the tier ceiling; custom ' +
            '(negotiated limits) has no ceiling and requires every field of spec.limits.',
        ),
      limits: LimitsSchema.optional(),
      retry: RetrySchema.prefault({}),
      slowStart: SlowStartSchema.prefault({}),
      batching: BatchingSchema.prefault({}),
      promptCaching: PromptCachingSchema.prefault({}),
      pricing: PricingSchema.optional(),
    })
    .describe('Desired state of the pool.'),
  POOL_SPEC_RULES,
);
export type LLMProviderPoolSpec = z.infer<typeof LLMProviderPoolSpecSchema>;
export type LLMProviderPoolSpecInput = z.input<typeof LLMProviderPoolSpecSchema>;

export const POOL_CONDITION_TYPES = ['Ready', 'Degraded', 'Reconciling', 'Stalled'] as const;

export const LLMProviderPoolStatusSchema = z
  .object({
    observedGeneration: counter('The metadata.generation the status describes.').optional(),
    conditions: conditions(POOL_CONDITION_TYPES),
    usage: z
      .object({
        requestsLastMinute: counter('Requests sent in the last minute.').optional(),
        inputTokensLastMinute: counter(
          'Input tokens (uncached input plus cache writes) in the last minute.',
        ).optional(),
        outputTokensLastMinute: counter('Output tokens in the last minute.').optional(),
        throttled: counter('Cumulative count of provider 429 responses.').optional(),
        last429Time: time('When the provider last answered 429.').optional(),
        blockedUntil: time('The pool sends nothing before this time (from Retry-After).').optional(),
      })
      .optional()
      .describe('Live usage from the shared rate limiter.'),
    batches: z
      .object({
        count: counter('Number of CJBatches using the pool that have not finished.').optional(),
        names: z
          .array(z.string().max(253))
          .max(50)
          .optional()
          .describe('Names of up to 50 of those batches.'),
      })
      .optional()
      .describe('Batches using the pool.'),
  })
  .describe('Observed state of the pool, written by the operator.');
export type LLMProviderPoolStatus = z.infer<typeof LLMProviderPoolStatusSchema>;

export interface LLMProviderPool {
  apiVersion: typeof API_VERSION;
  kind: 'LLMProviderPool';
  /** As the apiserver sends it (timestamps are RFC 3339 strings). */
  metadata: ObjectMeta;
  spec: LLMProviderPoolSpec;
  status?: LLMProviderPoolStatus;
}
