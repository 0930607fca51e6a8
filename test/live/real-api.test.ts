// Smoke test against the real Anthropic API: one comparison through the Comparer (our retry loop,
// prompt, JSON output, verdict parsing). Its own opt-in tier (`npm run test:live`), outside
// `npm test`: CI has no key and no internet. Without ANTHROPIC_API_KEY it fails and says so,
// rather than reporting a skip that reads like a pass. Model: CJ_SMOKE_MODEL (default
// claude-haiku-5-5, the cheapest current model). Costs well under a cent.
import { describe, expect, it } from 'vitest';
import { createAnthropic } from '../../runtime/src/llm/client.js';
import { Comparer } from '../../runtime/src/llm/comparer.js';
import { MemoryRateLimiter } from '../../runtime/src/llm/limiter/memory.js';
import { fixture, makeJobs } from '../unit/llm/helpers.js';

const apiKey = process.env.ANTHROPIC_API_KEY?.trim();
const model = process.env.CJ_SMOKE_MODEL ?? 'claude-haiku-5-5';

describe('real Anthropic API', () => {
  it(`one comparison on the real API (${model})`, async () => {
    if (!apiKey) {
      throw new Error(
        'ANTHROPIC_API_KEY is not set: the live tier needs a real key (export it, then npm run test:live)',
      );
    }
    const comparer = new Comparer({
      pool: {
        provider: 'anthropic',
        model,
        mode: 'per_request',
        retry: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 10_000, jitter: 0.25 },
        promptCaching: { enabled: false, ttl: '5m' },
      },
      assignment: fixture.assignment,
      anthropic: createAnthropic({ apiKey, timeoutMs: 60_000 }),
      limiter: new MemoryRateLimiter({
        requestsPerMinute: 50,
        inputTokensPerMinute: 30_000,
        outputTokensPerMinute: 8_000,
      }),
    });
    const [o] = await comparer.compare(makeJobs(1, 'smoke'));
    expect(o!.status, o!.status === 'failed' ? `${o!.failureReason}: ${o!.failureDetail}` : '').toBe(
      'succeeded',
    );
    if (o!.status === 'succeeded') {
      expect(['A', 'B']).toContain(o!.winner);
      expect(o!.justification.split(/\s+/).length).toBeLessThanOrEqual(50);
      expect(o!.usage.input + o!.usage.cacheRead + o!.usage.cacheWrite).toBeGreaterThan(0);
    }
  }, 120_000);
});
