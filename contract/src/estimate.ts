// What a batch will take before it runs: comparisons, tokens, cost per batching mode and wall time
// under the pool's limits. One model for `kubectl cj estimate` (and `submit --dry-run`) and the
// estimate the operator keeps in the batch's status beside the actuals; the cost is the one
// formula of cost.ts. How each figure is modelled, and how well it held against a real batch, is
// in docs/estimate.md.
import { estimateCostUsd, type TokenUsage } from './cost.js';
import {
  BATCHING_MODES,
  type BatchingMode,
  LIMITER_DEFAULTS,
  type PoolRuntimeConfig,
} from './pool-runtime.js';

/** Pairs per round as the operator plans them: about half the items, enough for every worker. */
export const roundSizeFor = (items: number, parallelism: number) =>
  Math.max(parallelism * 4, Math.ceil(items / 2));

/**
 * Comparisons per item (essays and anchors) at which the engine's convergence stop falls for a
 * judge like the engine benchmark's standard one (lapse 0.05, position bias 0.15, spread 1.5
 * logits): 5.8–7.9 per item at 72 and 212 items (bench/cj/RESULTS.grid.md, "Own stopping", seeds 2001–2018).
 * `STOP_SPREAD` is the share either way that covered those runs. Not yet checked against a real
 * model's batch (docs/estimate.md).
 */
export const STOP_PER_ITEM = 7.0;
/**
 * The fake judge of the local stack answers close pairs with "low" confidence, a soft verdict
 * that carries little information: simulated batches of 24–52 items never converged before every
 * pair was judged or 20 per item were spent (bench/estimate/stop.ts). Its batches run to the budget.
 */
export function stopPerItem(pool: Pick<PoolRuntimeConfig, 'provider'>): number {
  return pool.provider === 'fake' ? Number.POSITIVE_INFINITY : STOP_PER_ITEM;
}
export const STOP_SPREAD = 0.2;

// The prompt's shape (runtime/src/llm/prompt.ts; test/unit/contract/estimate.test.ts checks these
// against the real request builder): the static prefix around the assignment, and the frame of
// the pairs in the user message.
export const PREFIX_FIXED_CHARS = 1831;
const pairHeaderChars = (k: number) =>
  k === 1
    ? 'Judge the following pair of essays.'.length
    : `Judge each of the following ${k} pairs of essays. Answer all ${k} pairs.`.length;
/** `<pair id="Pi">`, the four essay tags, `</pair>` and their line breaks, without the essays. */
const pairFrameChars = (i: number) => 64 + `P${i}`.length;
/** Characters of the user message for k pairs, without the essays' own text. */
export function dynamicFrameChars(k: number): number {
  let n = pairHeaderChars(k) + 2 + (k - 1);
  for (let i = 1; i <= k; i++) n += pairFrameChars(i);
  return n;
}
/** Escaping (`&`, `<`, `>` as entities) lengthens an essay by these characters. */
export function escapedLength(text: string): number {
  const t = text.trim();
  let n = t.length;
  for (const ch of t) n += ch === '&' ? 4 : ch === '<' || ch === '>' ? 3 : 0;
  return n;
}
/** Framing the provider counts per message (the fake server counts 8; Anthropic a few). */
export const MESSAGE_OVERHEAD_TOKENS = 8;

/**
 * Output tokens of one verdict. The fake judge answers a fixed sentence (47–48 tokens as it counts
 * them); for a real model, the pool runtime's expectation (80: a 50-word justification in JSON).
 */
export function outputTokensPerPair(
  pool: Pick<PoolRuntimeConfig, 'provider' | 'expectedOutputTokensPerPair'>,
) {
  return pool.provider === 'fake' ? 48 : pool.expectedOutputTokensPerPair;
}

/**
 * The smallest prefix the provider caches (Anthropic: 1024 tokens for Sonnet and Opus, 2048 for
 * Haiku; shorter prefixes are sent uncached at full price). The fake server caches any prefix.
 */
export function cacheMinTokens(pool: Pick<PoolRuntimeConfig, 'provider' | 'model'>): number {
  if (pool.provider === 'fake') return 0;
  return /haiku/i.test(pool.model) ? 2048 : 1024;
}

/** Seconds one call takes at the provider when nothing waits (the tier table's 3 s; the fake: none). */
export function callLatencySeconds(pool: Pick<PoolRuntimeConfig, 'provider'>): number {
  return pool.provider === 'fake' ? 0.05 : 3;
}

/**
 * Seconds each round adds besides the calls: a scoring Job and a comparison Job start, run and are
 * seen by the operator (measured on the local stack: docs/estimate.md).
 */
export const ROUND_OVERHEAD_SECONDS = 7;
/** Serial bundles assumed when the pool is not in serial_bundle mode (for the mode comparison). */
export const DEFAULT_BUNDLE_FOR_COMPARISON = 10;

export interface EstimateInput {
  /** Student essays' texts. */
  essays: readonly string[];
  /** Anchor essays' texts. */
  anchors: readonly string[];
  assignment: { title: string; instructions: string; rubric: string };
  /** The budget in force (spec or the operator's default). */
  budget: number;
  /** Comparison workers per round (spec.workers.parallelism, default 2). */
  parallelism: number;
  /** spec.stopping.minComparisonsPerEssay. */
  minPerEssay: number;
  /** The pool's runtime config (contract/src/pool-runtime.ts resolvePoolRuntimeConfig). */
  pool: PoolRuntimeConfig;
  /** Overrides of the model's assumptions. */
  assume?: {
    stopPerItem?: number;
    outputTokensPerPair?: number;
    latencySeconds?: number;
    roundOverheadSeconds?: number;
    /** The pool granted a call in the last 10 minutes: no slow start. */
    warmPool?: boolean;
  };
}

export interface ModeEstimate {
  mode: BatchingMode;
  calls: number;
  tokens: TokenUsage;
  /** Undefined without pricing in the pool. */
  costUsd?: number;
}

export interface Estimate {
  comparisons: {
    expected: number;
    low: number;
    high: number;
    budget: number;
    /** Whether the batch is expected to end before its budget is spent. */
    stopsBeforeBudget: boolean;
    /** What is expected to end it: the engine's convergence, the budget, or every distinct pair judged. */
    endsBy: 'converged' | 'budget' | 'complete';
    rounds: number;
    roundSize: number;
  };
  /** The pool's own mode first, then the others. */
  modes: ModeEstimate[];
  wall: {
    seconds: number;
    /** Comparisons per minute the pool's limits allow, and which limit binds. */
    perMinute: number;
    limitedBy: 'requests per minute' | 'input tokens per minute' | 'output tokens per minute' | 'concurrency';
    /** batch_api: the provider's batch processing time comes on top (minutes to 24 h). */
    providerDependent: boolean;
  };
  assumptions: {
    stopPerItem: number | null;
    outputTokensPerPair: number;
    latencySeconds: number;
    roundOverheadSeconds: number;
    /** Added by the limiter's slow start of a pool that was idle (10 min or more). */
    rampSeconds: number;
    prefixTokens: number;
    prefixCached: boolean;
    meanPairInputTokens: number;
  };
}

const roundUp = (x: number, step: number) => Math.ceil(x / step) * step;

export function estimateBatch(input: EstimateInput): Estimate {
  const { pool, budget, parallelism } = input;
  const items = input.essays.length + input.anchors.length;
  const distinct = (items * (items - 1)) / 2;
  const roundSize = roundSizeFor(items, parallelism);
  const cap = Math.min(budget, distinct);
  const perItem = input.assume?.stopPerItem ?? stopPerItem(pool);
  // The engine never stops before every essay has minPerEssay comparisons (each comparison
  // serves two), and it decides only at the end of a round.
  const floor = Math.ceil((items * input.minPerEssay) / 2);
  const at = (perItem: number) => Math.min(cap, roundUp(Math.max(floor, perItem * items), roundSize));
  const expected = at(perItem);
  const comparisons: Estimate['comparisons'] = {
    expected,
    low: at(perItem * (1 - STOP_SPREAD)),
    high: at(perItem * (1 + STOP_SPREAD)),
    budget,
    stopsBeforeBudget: expected < budget,
    endsBy: expected < cap ? 'converged' : budget <= distinct ? 'budget' : 'complete',
    rounds: Math.ceil(expected / roundSize),
    roundSize,
  };

  // Tokens: the cached prefix (instructions, assignment, rubric) and each pair's essays.
  const a = input.assignment;
  const prefixTokens = Math.ceil(
    (PREFIX_FIXED_CHARS + a.title.length + a.instructions.trim().length + a.rubric.trim().length) / 4,
  );
  const texts = [...input.essays, ...input.anchors];
  const meanEssayChars = texts.reduce((s, t) => s + escapedLength(t), 0) / Math.max(1, texts.length);
  const outPerPair = input.assume?.outputTokensPerPair ?? outputTokensPerPair(pool);
  const cached = pool.promptCaching.enabled && prefixTokens >= cacheMinTokens(pool);
  const perCall = (k: number) => ({
    dynamic: Math.ceil((dynamicFrameChars(k) + 2 * k * meanEssayChars) / 4) + MESSAGE_OVERHEAD_TOKENS,
    output: k === 1 ? outPerPair : Math.ceil(outPerPair * k + 4),
  });
  const modeEstimate = (mode: BatchingMode): ModeEstimate => {
    const k =
      mode === 'serial_bundle'
        ? pool.mode === 'serial_bundle'
          ? pool.bundleSize
          : DEFAULT_BUNDLE_FOR_COMPARISON
        : 1;
    const calls = Math.ceil(expected / k);
    const c = perCall(k);
    // One cache write per worker of the first round (they start together), reads after that.
    const writes = cached ? Math.min(calls, parallelism) : 0;
    const tokens: TokenUsage = {
      input: calls * c.dynamic + (cached ? 0 : calls * prefixTokens),
      output: calls * c.output,
      cacheRead: cached ? (calls - writes) * prefixTokens : 0,
      cacheWrite: writes * prefixTokens,
    };
    return {
      mode,
      calls,
      tokens,
      ...(pool.pricing
        ? { costUsd: estimateCostUsd(tokens, pool.pricing, mode, pool.promptCaching.ttl) }
        : {}),
    };
  };
  const modes = [pool.mode, ...BATCHING_MODES.filter((m) => m !== pool.mode)].map(modeEstimate);

  // Wall time: the pool limiter's bucket and the in-flight calls, round by round (simulateWall).
  // The limiter counts uncached input and cache writes against ITPM; `limitedBy` and `perMinute`
  // describe the steady state.
  const own = modes[0]!;
  const safety = pool.limiter.safetyFactor ?? LIMITER_DEFAULTS.safetyFactor;
  const l = pool.limits;
  const latency = input.assume?.latencySeconds ?? callLatencySeconds(pool);
  const pairsPerCall = expected / Math.max(1, own.calls);
  const inPerCall = (own.tokens.input + own.tokens.cacheWrite) / Math.max(1, own.calls);
  const outPerCall = own.tokens.output / Math.max(1, own.calls);
  const lanes = Math.min(l.maxConcurrency, parallelism * (pool.mode === 'batch_api' ? 1 : pool.concurrency));
  const callsPerMinute: [Estimate['wall']['limitedBy'], number][] = [
    ['requests per minute', l.requestsPerMinute * safety],
    ['input tokens per minute', (l.inputTokensPerMinute * safety) / Math.max(1, inPerCall)],
    ['output tokens per minute', (l.outputTokensPerMinute * safety) / Math.max(1, outPerCall)],
    ['concurrency', (lanes * 60) / Math.max(0.001, latency)],
  ];
  const [limitedBy, calls] = callsPerMinute.reduce((m, x) => (x[1] < m[1] ? x : m));
  const perMinute = calls * pairsPerCall;
  const overhead = input.assume?.roundOverheadSeconds ?? ROUND_OVERHEAD_SECONDS;
  const ramp = pool.limiter.rampUp ?? LIMITER_DEFAULTS.rampUp;
  const callsPerRound = Array.from({ length: comparisons.rounds }, (_, r) =>
    Math.ceil(Math.min(roundSize, expected - r * roundSize) / Math.max(1, pairsPerCall)),
  );
  const rates = callsPerMinute.filter(([why]) => why !== 'concurrency').map(([, v]) => v);
  const sim = (withRamp: boolean) =>
    simulateWall({
      callsPerRound,
      callsPerSecond: Math.min(...rates) / 60,
      lanes,
      latency,
      burstSeconds: pool.limiter.burstSeconds ?? LIMITER_DEFAULTS.burstSeconds,
      rampInitial: withRamp && ramp.durationMs > 0 ? ramp.initialFraction : 1,
      rampSeconds: ramp.durationMs / 1000,
      overhead,
    });
  const seconds = sim(!input.assume?.warmPool);
  const rampSeconds = seconds - sim(false);
  return {
    comparisons,
    modes,
    wall: {
      seconds: Math.round(seconds),
      perMinute,
      limitedBy,
      providerDependent: pool.mode === 'batch_api',
    },
    assumptions: {
      // JSON has no Infinity: null when the judge is not expected to converge.
      stopPerItem: Number.isFinite(perItem) ? perItem : null,
      outputTokensPerPair: outPerPair,
      latencySeconds: latency,
      roundOverheadSeconds: overhead,
      rampSeconds: Math.round(rampSeconds),
      prefixTokens,
      prefixCached: cached,
      meanPairInputTokens: perCall(1).dynamic,
    },
  };
}

/**
 * Seconds from start to finish: a scoring pass (`overhead`, the Jobs of the round) before every
 * round and after the last, and each round's calls through the pool limiter as it works — a
 * bucket of `burstSeconds` of the rate, refilled continuously (so it fills again while a round's
 * Jobs start), a rate that a pool idle for 10 minutes ramps up from `rampInitial` from its first
 * grant, and at most `lanes` calls of `latency` seconds in flight.
 */
export function simulateWall(o: {
  callsPerRound: readonly number[];
  callsPerSecond: number;
  lanes: number;
  latency: number;
  burstSeconds: number;
  rampInitial: number;
  rampSeconds: number;
  overhead: number;
}): number {
  const r = Math.max(1e-9, o.callsPerSecond);
  let first: number | undefined;
  const f = (t: number) =>
    first === undefined || o.rampSeconds <= 0
      ? o.rampInitial
      : Math.min(1, o.rampInitial + ((1 - o.rampInitial) * (t - first)) / o.rampSeconds);
  const cap = (t: number) => Math.max(1, o.burstSeconds * r * f(t));
  let t = o.overhead; // round 0 plans the first pairs
  let level = cap(0);
  let at = t; // time of the level
  const refill = (to: number) => {
    level = Math.min(cap(to), level + (to - at) * r * f(to));
    at = to;
  };
  for (const calls of o.callsPerRound) {
    const inFlight: number[] = []; // finish times of the calls in flight
    let end = t;
    for (let i = 0; i < calls; i++) {
      refill(t);
      if (level < 1) {
        t += (1 - level) / (r * f(t));
        refill(t);
      }
      if (inFlight.length >= o.lanes) {
        inFlight.sort((a, b) => a - b);
        t = Math.max(t, inFlight.shift()!);
        refill(t);
      }
      first ??= t;
      level -= 1;
      inFlight.push(t + o.latency);
      end = Math.max(end, t + o.latency);
    }
    t = end + o.overhead; // the round's scoring pass
  }
  return t;
}
