import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAnthropic } from '../../../runtime/src/llm/client.js';
import { Comparer, type ComparerOptions } from '../../../runtime/src/llm/comparer.js';
import { UnlimitedRateLimiter } from '../../../runtime/src/llm/limiter/memory.js';
import type { RateLimiter } from '../../../runtime/src/llm/limiter/types.js';
import type { Assignment, PairJob, PoolRuntimeConfigInput } from '../../../runtime/src/llm/types.js';

export interface Fixture {
  assignment: Assignment;
  essays: Array<{ id: string; text: string }>;
  anchors: Array<{ id: string; grade: string; text: string }>;
}

export const fixtureDir = join(import.meta.dirname, '../../fixtures/essays');
export const fixture = JSON.parse(readFileSync(join(fixtureDir, 'essays.json'), 'utf8')) as Fixture;
export const profilePath = join(fixtureDir, 'profile.json');

/** `n` distinct pairs over the fixture essays (deterministic). */
export function makeJobs(n: number, prefix = 'cmp'): PairJob[] {
  const all = [...fixture.essays, ...fixture.anchors];
  const jobs: PairJob[] = [];
  for (let k = 0; jobs.length < n; k++) {
    const a = all[k % all.length]!;
    const b = all[(k * 7 + 3 + Math.floor(k / all.length)) % all.length]!;
    if (a.id === b.id) continue;
    jobs.push({
      comparisonId: `${prefix}-${jobs.length}`,
      pairId: `${a.id}~${b.id}`,
      essayA: { id: a.id, text: a.text },
      essayB: { id: b.id, text: b.text },
    });
  }
  return jobs;
}

export const FAST_RETRY = { maxAttempts: 5, initialBackoffMs: 5, maxBackoffMs: 40, jitter: 0.25 };

export function comparerFor(
  url: string,
  pool: Partial<PoolRuntimeConfigInput>,
  extra: Partial<ComparerOptions> & { limiter?: RateLimiter; apiKey?: string } = {},
): Comparer {
  return new Comparer({
    pool: { provider: 'fake', model: 'claude-sonnet-5-5', retry: FAST_RETRY, concurrency: 8, ...pool },
    assignment: fixture.assignment,
    anthropic: createAnthropic({ apiKey: extra.apiKey ?? 'sk-test-key', baseURL: url, timeoutMs: 10_000 }),
    limiter: extra.limiter ?? new UnlimitedRateLimiter(),
    ...extra,
  });
}
