/**
 * Per-essay misfit (Rasch infit/outfit, as sirt::btm, RM Compare and No More Marking report it).
 * For comparison k of essay i with outcome y_k and model probability P_k (bias and lapse
 * included, from the essay's side), the residual is r_k = y_k − P_k with variance W_k = P_k(1 − P_k):
 *
 *   outfit_i = mean_k r_k²/W_k        (unweighted: sensitive to surprises far from the essay)
 *   infit_i  = Σ_k r_k² / Σ_k W_k      (information-weighted: surprises between close essays)
 *
 * Both are ≈ 1 when the judge agrees with itself about the essay. An essay the judge is
 * *inconsistent* about (wins against strong essays, loses against weak ones) has infit well above
 * 1. A *consistent* misperception fits exactly and does not show here (see the held-out-anchor
 * extra SD in grades.ts). Flag rule (Pollitt 2012): infit above the mean + 2 SD of all essays'
 * infit, with at least MIN_MISFIT_COMPARISONS comparisons.
 */
import { type Observations, winProbability } from './model.js';

export const MIN_MISFIT_COMPARISONS = 6;

export interface Misfit {
  infit: Float64Array;
  outfit: Float64Array;
  flagged: boolean[];
  /** The infit value above which an essay is flagged (NaN when too few essays qualify). */
  threshold: number;
}

export function misfit(theta: ArrayLike<number>, bias: number, lapse: number, obs: Observations): Misfit {
  const n = theta.length;
  const rw = new Float64Array(n);
  const w = new Float64Array(n);
  const ro = new Float64Array(n);
  const cnt = new Int32Array(n);
  for (let k = 0; k < obs.a.length; k++) {
    const a = obs.a[k]!;
    const b = obs.b[k]!;
    const p = winProbability(theta[a]! - theta[b]! + bias, lapse);
    const v = Math.max(p * (1 - p), 1e-9);
    const r2 = (obs.y[k]! - p) ** 2;
    for (const i of [a, b]) {
      rw[i] = rw[i]! + r2;
      w[i] = w[i]! + v;
      ro[i] = ro[i]! + r2 / v;
      cnt[i] = cnt[i]! + 1;
    }
  }
  const infit = new Float64Array(n).fill(Number.NaN);
  const outfit = new Float64Array(n).fill(Number.NaN);
  const qualified: number[] = [];
  for (let i = 0; i < n; i++) {
    if (cnt[i]! === 0) continue;
    infit[i] = rw[i]! / w[i]!;
    outfit[i] = ro[i]! / cnt[i]!;
    if (cnt[i]! >= MIN_MISFIT_COMPARISONS) qualified.push(i);
  }
  let threshold = Number.NaN;
  if (qualified.length >= 5) {
    const m = qualified.reduce((s, i) => s + infit[i]!, 0) / qualified.length;
    const sd = Math.sqrt(qualified.reduce((s, i) => s + (infit[i]! - m) ** 2, 0) / (qualified.length - 1));
    threshold = m + 2 * sd;
  }
  const flagged = Array.from(
    { length: n },
    (_, i) => cnt[i]! >= MIN_MISFIT_COMPARISONS && Number.isFinite(threshold) && infit[i]! > threshold,
  );
  return { infit, outfit, flagged, threshold };
}
