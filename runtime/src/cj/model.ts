/**
 * The comparison model: Bradley–Terry with a first-position bias and a lapse rate.
 *
 *   d_k = θ_a − θ_b + β                      (a is the essay shown first, in slot A)
 *   P(a judged better) = ε/2 + (1 − ε)·σ(d_k)
 *
 * θ are essay scores in logits, β the judge's first-position ("home") advantage (sirt::btm `eta`,
 * BradleyTerry2 order effect) and ε the lapse rate: with probability ε the judge answers at
 * random (pairwiseLLM `btl_e_b`). The lapse bounds every probability away from 0 and 1, so a
 * single surprising verdict cannot drag a score arbitrarily far.
 *
 * Outcomes are fractional, y ∈ [0, 1] = how strongly the verdict says "a is better": 1 or 0 for a
 * hard win, 0.5 for a tie, the judge's confidence for a soft win. They enter through the
 * Bernoulli quasi-likelihood ℓ = y·log P + (1 − y)·log(1 − P) (Liusie et al. 2024 use soft LLM
 * probabilities the same way), which equals the ordinary likelihood for hard outcomes.
 */

/** Comparisons in structure-of-arrays form over item indices. */
export interface Observations {
  /** Index of the essay in slot A (shown first). */
  a: Int32Array;
  /** Index of the essay in slot B. */
  b: Int32Array;
  /** Outcome in [0, 1]: 1 = a better, 0 = b better, 0.5 = tie. */
  y: Float64Array;
}

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** P(a judged better) for a score difference d (bias already included) and lapse ε. */
export function winProbability(d: number, lapse: number): number {
  return lapse / 2 + (1 - lapse) * sigmoid(d);
}

/**
 * Per-comparison terms of the quasi-likelihood at difference d:
 * - `score` = ∂ℓ/∂d = (y − P)·P′ / (P(1 − P)), with P′ = (1 − ε)·σ(d)(1 − σ(d));
 * - `weight` = the expected (Fisher) information about d, P′² / (P(1 − P)).
 * Fisher scoring uses the expected information because the lapse makes ℓ non-concave in d;
 * the expected information is always positive, so every Newton system stays positive definite.
 */
export function comparisonTerms(y: number, d: number, lapse: number): { score: number; weight: number } {
  const s = sigmoid(d);
  const p = lapse / 2 + (1 - lapse) * s;
  const dp = (1 - lapse) * s * (1 - s);
  const v = Math.max(p * (1 - p), 1e-300);
  return { score: ((y - p) * dp) / v, weight: (dp * dp) / v };
}

/** ℓ = y·log P + (1 − y)·log(1 − P). */
export function logLikelihood(y: number, d: number, lapse: number): number {
  const p = winProbability(d, lapse);
  return y * Math.log(Math.max(p, 1e-300)) + (1 - y) * Math.log(Math.max(1 - p, 1e-300));
}

/**
 * Turns a verdict into y. `confidence` is the judge's probability that its chosen essay is the
 * better one, in [0.5, 1]; without it a win counts as 1. A tie is 0.5 whatever the confidence.
 */
export function outcomeValue(winner: 'a' | 'b' | 'tie', confidence?: number): number {
  if (winner === 'tie') return 0.5;
  const c = confidence === undefined ? 1 : Math.min(1, Math.max(0.5, confidence));
  return winner === 'a' ? c : 1 - c;
}
