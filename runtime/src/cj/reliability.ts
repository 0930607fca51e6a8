/**
 * Reliability and judge-quality figures that adaptive pairing cannot inflate.
 *
 * - EAP reliability (Bock & Mislevy 1982; pairwiseLLM's stopping figure):
 *     R = Var(θ̄) / (Var(θ̄) + mean_i SD_i²)
 *   from posterior means θ̄ and posterior SDs under a proper prior. Unlike SSR computed from MLE
 *   scores and Fisher SEs, the posterior is not stretched by choosing close pairs (Bramley 2015):
 *   the prior-shrunk means cannot outgrow the data, and the SDs include the prior.
 * - Split-half: comparisons are split at random into two halves, each half is fitted on its own,
 *   and the Spearman correlation r of the two score vectors is stepped up with Spearman–Brown,
 *   2r / (1 + r). It needs no model-based SDs at all, so it is the cross-check on R.
 * - Position: share of soft wins for slot A, and the consistency of verdicts on pairs judged in
 *   both orders (pairwiseLLM `compute_reverse_consistency`).
 */
import { type FitProblem, fitMap } from './fit.js';
import type { Observations } from './model.js';
import type { Rng } from './rng.js';
import { spearman } from './stats.js';

export function eapReliability(mean: ArrayLike<number>, sd: ArrayLike<number>, items: number[]): number {
  if (items.length < 2) return Number.NaN;
  let m = 0;
  for (const i of items) m += mean[i]!;
  m /= items.length;
  let v = 0;
  let e = 0;
  for (const i of items) {
    v += (mean[i]! - m) ** 2;
    e += sd[i]! ** 2;
  }
  v /= items.length - 1;
  e /= items.length;
  return v + e > 0 ? v / (v + e) : Number.NaN;
}

function subset(obs: Observations, keep: boolean[], flag: boolean): Observations {
  const idx: number[] = [];
  keep.forEach((k, i) => {
    if (k === flag) idx.push(i);
  });
  return {
    a: Int32Array.from(idx, (i) => obs.a[i]!),
    b: Int32Array.from(idx, (i) => obs.b[i]!),
    y: Float64Array.from(idx, (i) => obs.y[i]!),
  };
}

/** Split-half reliability (Spearman–Brown stepped-up Spearman correlation) over `items`. */
export function splitHalf(problem: FitProblem, lapse: number, items: number[], rng: Rng): number {
  const m = problem.obs.a.length;
  if (m < 4 || items.length < 3) return Number.NaN;
  const keep = Array.from({ length: m }, () => rng.next() < 0.5);
  const fitHalf = (flag: boolean) =>
    fitMap({
      ...problem,
      obs: subset(problem.obs, keep, flag),
      lapsePrior: { ...problem.lapsePrior, fixed: lapse },
    });
  const x = fitHalf(true).theta;
  const y = fitHalf(false).theta;
  const r = spearman(
    items.map((i) => x[i]!),
    items.map((i) => y[i]!),
  );
  return Number.isNaN(r) ? r : (2 * r) / (1 + Math.abs(r));
}

export interface PositionReport {
  /** Mean outcome for slot A (0.5 = no raw lean; it is confounded with which essays sat in A). */
  aWinShare: number;
  /** Pairs judged in both orders. */
  reversedPairs: number;
  /** Share of reversed pairs whose verdicts agree (same essay preferred both times); NaN if none. */
  consistency: number;
}

export function positionReport(obs: Observations): PositionReport {
  const m = obs.a.length;
  let ySum = 0;
  const byPair = new Map<string, { forward: number[]; backward: number[] }>();
  for (let k = 0; k < m; k++) {
    const a = obs.a[k]!;
    const b = obs.b[k]!;
    ySum += obs.y[k]!;
    const key = a < b ? `${a}:${b}` : `${b}:${a}`;
    let e = byPair.get(key);
    if (!e) {
      e = { forward: [], backward: [] };
      byPair.set(key, e);
    }
    // Store "lower index preferred" so both orientations are comparable.
    if (a < b) e.forward.push(obs.y[k]!);
    else e.backward.push(1 - obs.y[k]!);
  }
  let reversed = 0;
  let agree = 0;
  for (const e of byPair.values()) {
    if (e.forward.length === 0 || e.backward.length === 0) continue;
    reversed++;
    const f = e.forward.reduce((s, v) => s + v, 0) / e.forward.length;
    const bk = e.backward.reduce((s, v) => s + v, 0) / e.backward.length;
    if ((f - 0.5) * (bk - 0.5) > 0) agree++;
  }
  return {
    aWinShare: m > 0 ? ySum / m : Number.NaN,
    reversedPairs: reversed,
    consistency: reversed > 0 ? agree / reversed : Number.NaN,
  };
}
