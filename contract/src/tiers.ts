// The one tier table. Ceilings are per-minute limits an organisation on that Anthropic usage tier
// gets for the Sonnet/Opus/Haiku 4.x+ model class (the highest per-model limits of the tier, from
// the mid-2026 rate-limits page; see docs/api.md). A pool may ask for less, never for more: the
// limiter would otherwise plan for throughput the provider refuses with 429s.
// `maxConcurrency` is ours (in-flight requests per pool), sized so the ceiling on requests per
// minute is reachable with ~3 s median latency. `custom` has no ceiling and needs explicit limits.
// hack/gen-crds.ts generates the CRD's CEL rules from this table, so a change here is one edit.

export const TIER_NAMES = ['start', 'build', 'scale', 'custom'] as const;
export type TierName = (typeof TIER_NAMES)[number];

export const LIMIT_FIELDS = [
  'requestsPerMinute',
  'inputTokensPerMinute',
  'outputTokensPerMinute',
  'maxConcurrency',
] as const;
export type LimitField = (typeof LIMIT_FIELDS)[number];

export type TierLimits = Record<LimitField, number>;

export const TIER_CEILINGS: Record<Exclude<TierName, 'custom'>, TierLimits> = {
  start: {
    requestsPerMinute: 1_000,
    inputTokensPerMinute: 2_000_000,
    outputTokensPerMinute: 400_000,
    maxConcurrency: 50,
  },
  build: {
    requestsPerMinute: 5_000,
    inputTokensPerMinute: 5_000_000,
    outputTokensPerMinute: 1_000_000,
    maxConcurrency: 250,
  },
  scale: {
    requestsPerMinute: 10_000,
    inputTokensPerMinute: 10_000_000,
    outputTokensPerMinute: 2_000_000,
    maxConcurrency: 500,
  },
};

/** Absolute schema bounds for any tier (including custom): a typo guard, not a provider limit. */
export const ABSOLUTE_MAX: TierLimits = {
  requestsPerMinute: 1_000_000,
  inputTokensPerMinute: 1_000_000_000,
  outputTokensPerMinute: 200_000_000,
  maxConcurrency: 10_000,
};

/** The standard tiers in ascending order, for "choose a higher tier" hints. */
export const STANDARD_TIERS = ['start', 'build', 'scale'] as const;

/**
 * The limits a pool runs with: explicit limits win, the tier's ceiling fills the rest.
 * Returns undefined for `custom` when a limit is missing (admission refuses such a pool).
 */
export function effectiveLimits(
  tier: TierName,
  limits: Partial<TierLimits> | undefined,
): TierLimits | undefined {
  if (tier === 'custom') {
    const l = limits ?? {};
    return LIMIT_FIELDS.every((f) => typeof l[f] === 'number') ? (l as TierLimits) : undefined;
  }
  return { ...TIER_CEILINGS[tier], ...stripUndefined(limits ?? {}) };
}

/** The lowest standard tier whose ceiling admits `value` for `field`, if any. */
export function lowestTierAdmitting(field: LimitField, value: number): string | undefined {
  return STANDARD_TIERS.find((t) => TIER_CEILINGS[t][field] >= value);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
