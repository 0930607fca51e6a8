import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  CJBatchSpecSchema,
  defaultMaxComparisons,
  effectiveLimits,
  LLMProviderPoolSpecSchema,
  lowestTierAdmitting,
  parseDuration,
} from '../../../operator/src/api/index.js';

const sample = (f: string) => YAML.parse(readFileSync(`config/samples/${f}`, 'utf8'));
const messages = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  r.success ? [] : r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

describe('LLMProviderPool spec schema', () => {
  it('accepts the sample and fills defaults', () => {
    const spec = LLMProviderPoolSpecSchema.parse({
      provider: 'fake',
      model: 'm',
      apiKeySecretRef: { name: 's', key: 'k' },
    });
    expect(spec.tier).toBe('start');
    expect(spec.retry).toEqual({ maxAttempts: 5, initialBackoff: '500ms', maxBackoff: '60s' });
    expect(spec.batching).toEqual({ mode: 'per_request', bundleSize: 1, batchPollInterval: '30s' });
    expect(spec.promptCaching).toEqual({ enabled: true, ttl: '5m' });
    expect(LLMProviderPoolSpecSchema.safeParse(sample('llmproviderpool.yaml').spec).success).toBe(true);
    // The anthropic sample: the real API, no baseURL override.
    const anthropic = LLMProviderPoolSpecSchema.parse(sample('anthropic/llmproviderpool.yaml').spec);
    expect(anthropic.provider).toBe('anthropic');
    expect(anthropic.baseURL).toBeUndefined();
  });

  it('refuses limits above the tier ceiling with the same message as the CEL rule', () => {
    const r = LLMProviderPoolSpecSchema.safeParse({
      ...sample('llmproviderpool.yaml').spec,
      tier: 'start',
      limits: { requestsPerMinute: 2000 },
    });
    expect(messages(r)).toEqual([
      'limits.requestsPerMinute: requestsPerMinute 2000 exceeds the start tier ceiling of 1000; lower spec.limits.requestsPerMinute or choose a higher spec.tier',
    ]);
  });

  it('requires all limits for tier custom, and batch_api only for anthropic', () => {
    const base = sample('llmproviderpool.yaml').spec;
    expect(messages(LLMProviderPoolSpecSchema.safeParse({ ...base, tier: 'custom' }))).toEqual([
      'limits: tier custom has no ceiling to fall back on; set all of spec.limits.requestsPerMinute, inputTokensPerMinute, outputTokensPerMinute, maxConcurrency or choose tier start, build or scale',
    ]);
    expect(
      messages(LLMProviderPoolSpecSchema.safeParse({ ...base, batching: { mode: 'batch_api' } })),
    ).toEqual([
      'batching.mode: batching mode batch_api needs a provider with a batch API (anthropic) but provider is fake; use mode per_request or serial_bundle',
    ]);
    expect(
      LLMProviderPoolSpecSchema.safeParse({ ...base, provider: 'anthropic', batching: { mode: 'batch_api' } })
        .success,
    ).toBe(true);
  });

  it('bounds the bundle size and orders the backoffs', () => {
    const base = sample('llmproviderpool.yaml').spec;
    expect(messages(LLMProviderPoolSpecSchema.safeParse({ ...base, batching: { bundleSize: 65 } }))).toEqual([
      'batching.bundleSize: bundleSize 65 is out of range; set spec.batching.bundleSize between 1 and 64',
    ]);
    expect(
      messages(
        LLMProviderPoolSpecSchema.safeParse({ ...base, retry: { initialBackoff: '2m', maxBackoff: '30s' } }),
      ),
    ).toEqual([
      'retry.initialBackoff: initialBackoff 2m is longer than maxBackoff 30s; lower spec.retry.initialBackoff or raise spec.retry.maxBackoff',
    ]);
  });

  it('accepts prices as decimal strings or integers, never floats', () => {
    const base = sample('llmproviderpool.yaml').spec;
    const ok = (p: unknown) =>
      LLMProviderPoolSpecSchema.safeParse({ ...base, pricing: { inputPerMTok: p, outputPerMTok: 15 } })
        .success;
    expect(ok('3.00')).toBe(true);
    expect(ok(3)).toBe(true);
    expect(ok(3.5)).toBe(false);
    expect(ok('3,00')).toBe(false);
  });
});

describe('CJBatch spec schema', () => {
  it('accepts the sample and fills defaults', () => {
    const spec = CJBatchSpecSchema.parse(sample('cjbatch-small.yaml').spec);
    expect(spec.essays.inline).toHaveLength(8);
    expect(spec.anchors).toHaveLength(4);
    expect(spec.stopping).toEqual({
      minComparisonsPerEssay: 4,
      // The engine's tuned defaults (docs/cj-engine.md), in basis points.
      rankStability: 9900,
      gradeStability: 7500,
      gradeConfidence: 5500,
      reliabilityTarget: 8800,
      stableRounds: 2,
    });
    expect(spec.retention.policy).toBe('Delete');
    expect(spec.suspend).toBe(false);
    expect(spec.timeouts.round).toBe('10m');
  });

  it('refuses two essay sources, a missing source, and anchor grades outside the scale', () => {
    const base = sample('cjbatch-small.yaml').spec;
    expect(
      messages(
        CJBatchSpecSchema.safeParse({ ...base, essays: { ...base.essays, configMapRefs: [{ name: 'x' }] } }),
      ),
    ).toEqual(['essays: essays has both inline and configMapRefs; keep exactly one source']);
    expect(messages(CJBatchSpecSchema.safeParse({ ...base, essays: {} }))).toEqual([
      'essays: essays has no source; set spec.essays.inline or spec.essays.configMapRefs',
    ]);
    const anchors = [...base.anchors, { id: 'anchor-x', grade: 'A+', text: 'x' }];
    expect(messages(CJBatchSpecSchema.safeParse({ ...base, anchors }))).toEqual([
      'anchors: anchor anchor-x has grade A+ which is not in spec.gradeScale.grades [F, E, D, C, B, A]; use one of those grades or add it to the scale',
    ]);
  });

  it('refuses inconsistent budgets', () => {
    const base = sample('cjbatch-small.yaml').spec;
    expect(
      messages(
        CJBatchSpecSchema.safeParse({ ...base, budget: { maxComparisons: 5, maxComparisonsPerEssay: 6 } }),
      ),
    ).toEqual([
      'budget.maxComparisonsPerEssay: maxComparisonsPerEssay 6 exceeds maxComparisons 5; lower spec.budget.maxComparisonsPerEssay',
      'budget.maxComparisons: maxComparisons 5 cannot include each of the 12 essays and anchors even once; set spec.budget.maxComparisons to at least 6',
    ]);
  });
});

describe('helpers', () => {
  it('parses Go-style durations and refuses others', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(() => parseDuration('1.5h')).toThrow(/invalid duration/);
    expect(() => parseDuration('')).toThrow(/invalid duration/);
  });

  it('computes effective limits from the tier table', () => {
    expect(effectiveLimits('start', { requestsPerMinute: 100 })).toEqual({
      requestsPerMinute: 100,
      inputTokensPerMinute: 2_000_000,
      outputTokensPerMinute: 400_000,
      maxConcurrency: 50,
    });
    expect(effectiveLimits('custom', { requestsPerMinute: 100 })).toBeUndefined();
    expect(lowestTierAdmitting('requestsPerMinute', 4000)).toBe('build');
    expect(lowestTierAdmitting('requestsPerMinute', 40_000)).toBeUndefined();
  });

  it('caps the default budget at the number of distinct pairs', () => {
    expect(defaultMaxComparisons(4)).toBe(6);
    expect(defaultMaxComparisons(100)).toBe(600);
  });
});
