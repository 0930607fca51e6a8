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
  STANDARD_JUDGE_MODEL,
} from './pool-runtime.js';
import { DEFAULT_ROUNDS_MODE, type RoundsMode } from './rounds-mode.js';

/** Pairs per round as the operator plans them: about half the items, enough for every worker. */
export const roundSizeFor = (items: number, parallelism: number) =>
  Math.max(parallelism * 4, Math.ceil(items / 2));

/**
 * Comparisons per item (essays and anchors) at which the engine's convergence stop falls, by the
 * class's items, with the CRD's stopping defaults and a judge like the engine benchmark's standard
 * one (runtime/src/cj/judge-model.ts: lapse 0.05, position bias 0.15, scale 1, classes spread 1.5)
 * answering every pair "high", the surest verdict the operator records (a soft win of 0.9, not 1);
 * linear between the rows, flat beyond the last. From 64 items each row is the mean over the
 * TUNING classes of bench/estimate/converge.ts (seeds 1–6; bench/estimate/README.md) less a quarter
 * per item, as the estimate rounds up to the end of a round (half the items: half a round is a
 * quarter per item); the row at 48 lies between the converged tuning classes' means at 48 and 56
 * (11.5 and 12.8 per item, 3 classes each).
 */
export const STOP_TABLE: readonly (readonly [items: number, perItem: number])[] = [
  [48, 12.25],
  [64, 11.85],
  [72, 11.6],
  [100, 10.6],
  [150, 10.25],
  [200, 10.0],
];
/**
 * Below this many items the engine is not expected to converge before every pair is judged or the
 * budget is spent: a verdict of 0.9 caps what a comparison can tell, and the EAP reliability of a
 * small class levels off under the 0.88 target (tuning classes converged: 0 of 6 at 24 items,
 * 0 of 3 at 36, 1 of 6 at 40, 3 of 6 at 48). 44–56 items is a cliff: a class converges or runs on.
 */
export const CONVERGES_FROM_ITEMS = 44;
/** Comparisons per item at the engine's stop for a class of `items` (Infinity: no stop expected). */
export function stopPerItemFor(items: number): number {
  const t = STOP_TABLE;
  if (items < CONVERGES_FROM_ITEMS) return Number.POSITIVE_INFINITY;
  if (items <= t[0]![0]) return t[0]![1];
  for (let i = 1; i < t.length; i++) {
    const [x1, y1] = t[i]!;
    if (items <= x1) {
      const [x0, y0] = t[i - 1]!;
      return y0 + ((y1 - y0) * (items - x0)) / (x1 - x0);
    }
  }
  return t[t.length - 1]![1];
}
/**
 * The heuristic fake judge of the local stack answers close pairs with "low" confidence, a soft
 * verdict that carries little information: simulated batches of 24–52 items never converged
 * before every pair was judged or 20 per item were spent (bench/estimate/stop.ts). Its batches run
 * to the budget. The fake server's standard judge (model `fake-standard-judge`) and a real model
 * stop as STOP_TABLE says.
 */
export function stopPerItem(pool: Pick<PoolRuntimeConfig, 'provider' | 'model'>, items: number): number {
  return pool.provider === 'fake' && pool.model !== STANDARD_JUDGE_MODEL
    ? Number.POSITIVE_INFINITY
    : stopPerItemFor(items);
}
/** The share either way of the expected stop that the range (low, high) spans. */
export const STOP_SPREAD = 0.2;

/**
 * Comparisons at the end of the batch: the first of the budget, every distinct pair judged, or
 * the engine's stop near `perItem` per item, which it decides only at the end of a round and
 * never before every essay has minPerEssay comparisons.
 */
export function estimateComparisons(o: {
  items: number;
  budget: number;
  parallelism: number;
  minPerEssay: number;
  perItem: number;
}): Estimate['comparisons'] {
  const { items, budget } = o;
  const distinct = (items * (items - 1)) / 2;
  const roundSize = roundSizeFor(items, o.parallelism);
  const cap = Math.min(budget, distinct);
  // Each comparison serves two essays.
  const floor = Math.ceil((items * o.minPerEssay) / 2);
  const at = (perItem: number) => Math.min(cap, roundUp(Math.max(floor, perItem * items), roundSize));
  const expected = at(o.perItem);
  return {
    expected,
    low: at(o.perItem * (1 - STOP_SPREAD)),
    high: at(o.perItem * (1 + STOP_SPREAD)),
    budget,
    stopsBeforeBudget: expected < budget,
    endsBy: expected < cap ? 'converged' : budget <= distinct ? 'budget' : 'complete',
    rounds: Math.ceil(expected / roundSize),
    roundSize,
  };
}

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
 * seen by the operator (measured on the local stack: docs/estimate.md). A pipelined batch pays it
 * twice in all: its workers' Job starting, and the last scoring pass.
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
  /** How the batch runs its rounds (default: the operator's default, pipelined). */
  roundsMode?: RoundsMode;
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
    /** The wall time's model: a scoring pass between rounds (`rounds`) or one stream (`pipelined`). */
    roundsMode: RoundsMode;
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
  const perItem = input.assume?.stopPerItem ?? stopPerItem(pool, items);
  const comparisons = estimateComparisons({
    items,
    budget,
    parallelism,
    minPerEssay: input.minPerEssay,
    perItem,
  });
  const { expected, roundSize } = comparisons;

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

  // Wall time: the pool limiter's bucket and the in-flight calls (simulateWall), round by round or,
  // pipelined, as one stream: the workers plan ahead, so no round waits for a scoring pass.
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
  const roundsMode = input.roundsMode ?? DEFAULT_ROUNDS_MODE;
  const callsPerRound =
    roundsMode === 'pipelined'
      ? [Math.ceil(expected / Math.max(1, pairsPerCall))]
      : Array.from({ length: comparisons.rounds }, (_, r) =>
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
      roundsMode,
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
 * round and after the last (a pipelined batch is one round: its workers' start and the last pass),
 * and each round's calls through the pool limiter as it works — a bucket of `burstSeconds` of the
 * rate, refilled continuously (so it fills again while a round's Jobs start), a rate that a pool
 * idle for 10 minutes ramps up from `rampInitial` from its first grant, and at most `lanes` calls
 * of `latency` seconds in flight.
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
