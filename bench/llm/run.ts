/**
 * LLM runtime benchmark: `node --import tsx bench/llm/run.ts` (writes bench/llm/RESULTS.md).
 *
 * 1. Pool-wide limiter: 4 `runtime compare` processes sharing one PostgresRateLimiter against the
 *    fake server at 600 rpm (sustained rate, overshoot 429s, settle time after the server's limit
 *    is halved). Baseline, same run: per-replica limiting (LiteLLM's failure mode) — 4 clients,
 *    each with its own in-memory limiter set to the pool's 600 rpm.
 * 2. Input tokens per comparison: serial_bundle k=8 vs the per_request baseline (64 pairs on the
 *    sample essays, caching off and on), and whether the verdicts are the same.
 * 3. batch_api: 64 pairs through Message Batches with the Postgres batch store, the worker
 *    "killed" right after submitting and restarted; batches created, pairs submitted, estimated
 *    cost per comparison vs the per_request baseline.
 */
import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { estimateCostUsd } from '../../contract/src/cost.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { MemoryRateLimiter } from '../../runtime/src/llm/limiter/memory.js';
import { AbortedError } from '../../runtime/src/llm/modes/context.js';
import type { ComparisonOutcome, Pricing, TokenUsage } from '../../runtime/src/llm/types.js';
import { PostgresBatchStore } from '../../runtime/src/store/provider-batches.js';
import { comparerFor, makeJobs, profilePath } from '../../test/unit/llm/helpers.js';
import { startTestDb } from '../../test/unit/worker/pg.js';
import { runLimiterScenario } from './limiter-scenario.js';

const PRICING: Pricing = { inputPerMTok: 2, outputPerMTok: 10, batchMultiplier: 0.5 }; // claude-sonnet-5-5
const HALVE_AFTER_MS = 20_000;
const NO_CACHE = { enabled: false, ttl: '5m' as const };
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const r2 = (n: number) => Math.round(n * 100) / 100;

/** Per-replica limiting: 4 clients, each with its own limiter at the pool's full limit. */
async function perReplicaBaseline(rpm: number, durationMs: number) {
  const srv = await startFakeAnthropic({
    profilePath,
    seed: 9,
    latencyMs: 100,
    limits: { rpm, itpm: 100_000_000, otpm: 10_000_000 },
  });
  try {
    const ac = new AbortController();
    setMaxListeners(200, ac.signal);
    const t0 = Date.now();
    const runs = [0, 1, 2, 3].map((i) =>
      comparerFor(
        srv.url,
        { mode: 'per_request', concurrency: 4, promptCaching: NO_CACHE },
        {
          limiter: new MemoryRateLimiter({
            requestsPerMinute: rpm,
            inputTokensPerMinute: 100_000_000,
            outputTokensPerMinute: 10_000_000,
            safetyFactor: 0.95,
            burstSeconds: 5,
          }),
        },
      )
        .compare(makeJobs(4000, `r${i}`), { signal: ac.signal })
        .catch((e) => {
          if (!(e instanceof AbortedError)) throw e;
        }),
    );
    await new Promise((r) => setTimeout(r, durationMs));
    ac.abort();
    await Promise.all(runs);
    const s = srv.stats();
    const secs = (Date.now() - t0) / 1000;
    return {
      requests: s.messages.total,
      ok: s.messages.ok,
      overshoot429: s.rateLimited,
      overshootFraction: s.rateLimited / Math.max(1, s.messages.total),
      attemptedRpm: (s.messages.total / secs) * 60,
      okRpm: (s.messages.ok / secs) * 60,
      durationS: secs,
    };
  } finally {
    await srv.close();
  }
}

const totalInput = (u: TokenUsage) => u.input + u.cacheRead + u.cacheWrite;
const perCmp = (os: ComparisonOutcome[], f: (u: TokenUsage) => number) =>
  os.reduce((a, o) => a + f(o.usage), 0) / os.length;
const winners = (os: ComparisonOutcome[]) => os.map((o) => (o.status === 'succeeded' ? o.winner : null));

async function tokensPerComparison() {
  const out: Array<Record<string, number | string | boolean>> = [];
  for (const caching of [false, true]) {
    const srv: FakeAnthropic = await startFakeAnthropic({ profilePath, seed: 11, lapse: 0.05, bias: 0.2 });
    try {
      const jobs = makeJobs(64);
      const pc = { enabled: caching, ttl: '5m' as const };
      const single = await comparerFor(srv.url, { mode: 'per_request', promptCaching: pc }).compare(jobs);
      const bundle = await comparerFor(srv.url, {
        mode: 'serial_bundle',
        bundleSize: 8,
        promptCaching: pc,
      }).compare(jobs);
      const cost = (os: ComparisonOutcome[], mode: 'per_request' | 'serial_bundle') =>
        os.reduce((a, o) => a + estimateCostUsd(o.usage, PRICING, mode), 0) / os.length;
      out.push({
        caching: caching ? 'on (5m)' : 'off',
        perRequestInput: r2(perCmp(single, totalInput)),
        bundleInput: r2(perCmp(bundle, totalInput)),
        inputRatio: r2(perCmp(bundle, totalInput) / perCmp(single, totalInput)),
        perRequestUncached: r2(perCmp(single, (u) => u.input + u.cacheWrite)),
        bundleUncached: r2(perCmp(bundle, (u) => u.input + u.cacheWrite)),
        costRatio: r2(cost(bundle, 'serial_bundle') / cost(single, 'per_request')),
        sameVerdicts: JSON.stringify(winners(single)) === JSON.stringify(winners(bundle)),
        allSucceeded: [...single, ...bundle].every((o) => o.status === 'succeeded'),
      });
    } finally {
      await srv.close();
    }
  }
  return out;
}

async function batchApi(db: Awaited<ReturnType<typeof startTestDb>>) {
  const srv = await startFakeAnthropic({
    profilePath,
    seed: 11,
    lapse: 0.05,
    bias: 0.2,
    batchLatencyMs: 1500,
  });
  try {
    const jobs = makeJobs(64, 'bb');
    const BATCH = {
      mode: 'batch_api' as const,
      batchPollIntervalMs: 100,
      promptCaching: { enabled: true, ttl: '1h' as const },
    };
    const scope = 'bench/r1/s0';
    const ac = new AbortController();
    const t0 = Date.now();
    const first = comparerFor(srv.url, BATCH, {
      batchStore: new PostgresBatchStore(db.sql, scope),
      batchKeyPrefix: scope,
      onBatchSubmitted: () => ac.abort(), // "killed" right after the id is stored
    });
    await first.compare(jobs, { signal: ac.signal }).catch((e) => {
      if (!(e instanceof AbortedError)) throw e;
    });
    let resubmitted = 0;
    const second = comparerFor(srv.url, BATCH, {
      batchStore: new PostgresBatchStore(db.sql, scope),
      batchKeyPrefix: scope,
      onBatchSubmitted: () => {
        resubmitted++;
      },
    });
    const outcomes = await second.compare(jobs);
    const wallS = (Date.now() - t0) / 1000;
    const s = srv.stats();
    const single = await comparerFor(srv.url, { mode: 'per_request', promptCaching: NO_CACHE }).compare(jobs);
    const batchCost =
      outcomes.reduce((a, o) => a + estimateCostUsd(o.usage, PRICING, 'batch_api', '1h'), 0) / 64;
    const reqCost = single.reduce((a, o) => a + estimateCostUsd(o.usage, PRICING, 'per_request'), 0) / 64;
    return {
      pairs: 64,
      batchesCreated: s.batches.created,
      requestsSubmitted: s.batches.requestsSubmitted,
      resubmittedAfterRestart: resubmitted,
      succeeded: outcomes.filter((o) => o.status === 'succeeded').length,
      wallS: r2(wallS),
      costPerCmpUsd: batchCost,
      perRequestCostPerCmpUsd: reqCost,
      costRatio: r2(batchCost / reqCost),
      sameVerdicts: JSON.stringify(winners(single)) === JSON.stringify(winners(outcomes)),
    };
  } finally {
    await srv.close();
  }
}

async function main() {
  const date = '2026-11-22';
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, shared with other work`;
  log('starting Postgres');
  const db = await startTestDb();
  try {
    log('1/4 shared limiter: 4 worker processes at 600 rpm (~60 s)');
    const shared = await runLimiterScenario({
      db,
      processes: 4,
      rpm: 600,
      rows: 260,
      halveAfterMs: HALVE_AFTER_MS,
    });
    log(JSON.stringify(shared));
    log('2/4 baseline: per-replica limiters (45 s)');
    const base = await perReplicaBaseline(600, 45_000);
    log(JSON.stringify(base));
    log('3/4 tokens per comparison');
    const tokens = await tokensPerComparison();
    log(JSON.stringify(tokens));
    log('4/4 batch_api with restart');
    const batch = await batchApi(db);
    log(JSON.stringify(batch));

    const pct = (x: number) => `${r2(x * 100)}%`;
    const md = `# LLM runtime benchmark

Date: ${date}. Machine: ${machine}. Command: \`node --import tsx bench/llm/run.ts\`.
Every provider call goes to the fake Anthropic server (\`runtime fake-anthropic\`) on loopback; every
baseline below was measured in the same run as the figure it is compared with.

## 1. Pool-wide limiter (4 worker processes, one pool, fake server at 600 requests/min)

Four \`runtime compare\` processes (one shard each, 4 lanes each) share one \`PostgresRateLimiter\`
row; safety factor 0.95, burst 5 s, ramp 25% → 100% over 3 s; fake latency 100 ms. ${shared.rows}
comparisons, ${r2(shared.durationS)} s of work. ${HALVE_AFTER_MS / 1000} s after the first request the server's limit was
halved to 300/min through \`POST /_admin/limits\`; the workers only learn it from the
\`anthropic-ratelimit-*\` headers. Rates are counted by the server.

| measure | shared Postgres limiter (ours) | baseline: per-replica limiters | target |
| --- | --- | --- | --- |
| sustained rate before halving | ${Math.round(shared.sustainedRpm)}/min = **${pct(shared.sustainedFraction)}** of 600 (window ${r2(shared.steadyWindowS)} s) | ${Math.round(base.okRpm)}/min accepted, ${Math.round(base.attemptedRpm)}/min attempted | ≥ 90% |
| 429s caused by our overshoot | **${shared.overshoot429} / ${shared.requests} = ${pct(shared.overshootFraction)}** | ${base.overshoot429} / ${base.requests} = ${pct(base.overshootFraction)} | ≤ 1% |
| settle under 300/min after halving | **${shared.settleS === null ? 'never' : `${shared.settleS} s`}** (every 6 s window ≤ the new limit from then on) | — | ≤ 10 s |
| rate from 10 s after halving to the end | ${Math.round(shared.afterHalvingRpm)}/min | — | ≤ 300 |
| comparisons lost / failed | ${shared.lost} / ${shared.failed} (exit codes ${shared.exitCodes.join(', ')}) | — | 0 |

Ratio of overshoot 429s, ours vs per-replica: ${base.overshootFraction > 0 ? r2(shared.overshootFraction / base.overshootFraction) : 'n/a (baseline had none)'}.
The baseline ran ${r2(base.durationS)} s: each replica believes it has the whole 600/min, so the four
together attempt ~4× the limit; the fake server's bucket holds one minute of requests, so the 429s
start once it is drained (~20 s in) — Anthropic enforces shorter intervals and would refuse sooner.
Its "accepted" rate exceeds 600/min only because the fake server's bucket starts full (one minute
of requests): 600 + 45 s × 10/s ≈ 1,050 accepted.

## 2. Input tokens per comparison (64 pairs, sample essays, deterministic judge)

Baseline: \`per_request\`. "Input" = \`input_tokens + cache_creation + cache_read\`; "uncached" is what
counts toward ITPM (\`input + cache_creation\`).

| prompt caching | per_request input/cmp | serial_bundle k=8 input/cmp | **ratio** (target ≤ 0.40) | uncached per_request / k=8 | cost ratio | same verdicts |
| --- | --- | --- | --- | --- | --- | --- |
${tokens
  .map(
    (t) =>
      `| ${t.caching} | ${t.perRequestInput} | ${t.bundleInput} | **${t.inputRatio}** | ${t.perRequestUncached} / ${t.bundleUncached} | ${t.costRatio} | ${t.sameVerdicts ? 'yes' : 'NO'} |`,
  )
  .join('\n')}

## 3. batch_api with a restart (64 pairs, Postgres batch store)

The first worker is aborted right after the provider batch id is stored; a second one with the same
store resumes it. Baseline for cost: \`per_request\` without caching on the same pairs.

| measure | value |
| --- | --- |
| provider batches created | ${batch.batchesCreated} |
| requests submitted (pairs: ${batch.pairs}) | ${batch.requestsSubmitted} |
| batches submitted again after the restart | ${batch.resubmittedAfterRestart} |
| succeeded | ${batch.succeeded} / ${batch.pairs} |
| wall time (fake batch latency 1.5 s, poll 100 ms) | ${batch.wallS} s |
| estimated cost per comparison (sonnet-5-5 prices, batch ×0.5, 1h cache) | $${batch.costPerCmpUsd.toFixed(6)} vs per_request $${batch.perRequestCostPerCmpUsd.toFixed(6)}: **ratio ${batch.costRatio}** |
| same verdicts as per_request | ${batch.sameVerdicts ? 'yes' : 'NO'} |

## Raw

\`\`\`json
${JSON.stringify({ shared, perReplicaBaseline: base, tokens, batch }, null, 2)}
\`\`\`
`;
    writeFileSync(join(import.meta.dirname, 'RESULTS.md'), md);
    log('wrote bench/llm/RESULTS.md');
  } finally {
    await db.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
