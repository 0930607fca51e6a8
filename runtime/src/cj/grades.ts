/**
 * Grade projection from posterior draws (notes §6.2).
 *
 * Grades are K ordered bands on the score scale separated by boundaries b_0 < … < b_{K−2}. The
 * anchors' known grades say where the boundaries are, but only up to the gap between the anchors:
 * boundary b_k lies between L_k = max{θ_a : grade(a) ≤ k} and U_k = min{θ_a : grade(a) ≥ k+1}.
 * With anchors spread through their bands and a flat prior on the boundary, its posterior given
 * those order statistics is uniform on [L_k, U_k]. So, per posterior draw s (which moves the
 * anchors' scores too, so their uncertainty and correlation with the essays are included):
 *
 *   b_k^(s) ~ Uniform(min(L_k, U_k), max(L_k, U_k)),  then sorted to keep bands ordered,
 *   grade_i^(s) = #{k : b_k^(s) < θ_i^(s)}.
 *
 * P(grade_i = g) is the frequency over draws. When anchors overlap (L_k > U_k) the boundary is
 * uniform over the zone where anchors disagree. Grades with no anchor below (above) the lowest
 * (highest) anchored grade get boundaries one estimated band width w apart, w = spread of the
 * anchor grade means per grade step. Probabilities are never one-hot by construction: they are
 * only as sharp as the essays' and anchors' posteriors and the anchor gaps allow.
 */
import type { Rng } from './rng.js';
import { qwk } from './stats.js';

export interface AnchorGrade {
  item: number;
  grade: number;
}

/** Draws one set of K−1 sorted boundaries from one posterior draw of the scores. */
export function drawBoundaries(
  draw: ArrayLike<number>,
  anchors: AnchorGrade[],
  k: number,
  rng: Rng,
): Float64Array {
  const b = new Float64Array(Math.max(0, k - 1));
  if (anchors.length === 0) return b;
  let gMin = Number.POSITIVE_INFINITY;
  let gMax = Number.NEGATIVE_INFINITY;
  const sum = new Float64Array(k);
  const cnt = new Float64Array(k);
  for (const a of anchors) {
    gMin = Math.min(gMin, a.grade);
    gMax = Math.max(gMax, a.grade);
    sum[a.grade] = sum[a.grade]! + draw[a.item]!;
    cnt[a.grade] = cnt[a.grade]! + 1;
  }
  const width =
    gMax > gMin ? Math.max(0.1, (sum[gMax]! / cnt[gMax]! - sum[gMin]! / cnt[gMin]!) / (gMax - gMin)) : 1;
  for (let j = 0; j < k - 1; j++) {
    let lo = Number.NEGATIVE_INFINITY;
    let hi = Number.POSITIVE_INFINITY;
    for (const a of anchors) {
      const t = draw[a.item]!;
      if (a.grade <= j) lo = Math.max(lo, t);
      else hi = Math.min(hi, t);
    }
    let x: number;
    let y: number;
    if (lo === Number.NEGATIVE_INFINITY) {
      const steps = gMin - j;
      x = hi - steps * width;
      y = hi - (steps - 1) * width;
    } else if (hi === Number.POSITIVE_INFINITY) {
      const steps = j + 1 - gMax;
      x = lo + (steps - 1) * width;
      y = lo + steps * width;
    } else {
      x = Math.min(lo, hi);
      y = Math.max(lo, hi);
    }
    b[j] = x + (y - x) * rng.next();
  }
  return b.sort();
}

function gradeOf(theta: number, boundaries: Float64Array): number {
  let g = 0;
  while (g < boundaries.length && boundaries[g]! < theta) g++;
  return g;
}

export interface GradeSummary {
  probabilities: number[];
  modal: number;
  modalProbability: number;
  /** Σ_g g·P(g), on the 0-based grade index scale. */
  expected: number;
  /** Central 80% interval [lo, hi]: lo = first g with P(≤g) ≥ 0.1, hi = first g with P(≤g) ≥ 0.9. */
  interval: [number, number];
}

export function summarize(probabilities: number[]): GradeSummary {
  let modal = 0;
  let expected = 0;
  for (let g = 0; g < probabilities.length; g++) {
    if (probabilities[g]! > probabilities[modal]!) modal = g;
    expected += g * probabilities[g]!;
  }
  let cdf = 0;
  let lo = -1;
  let hi = probabilities.length - 1;
  for (let g = 0; g < probabilities.length; g++) {
    cdf += probabilities[g]!;
    if (lo < 0 && cdf >= 0.1 - 1e-12) lo = g;
    if (cdf >= 0.9 - 1e-12) {
      hi = g;
      break;
    }
  }
  return {
    probabilities,
    modal,
    modalProbability: probabilities[modal]!,
    expected,
    interval: [Math.max(lo, 0), hi],
  };
}

/** Grade probabilities for `items` from draws, with boundaries re-drawn per posterior draw. */
export function projectGrades(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  items: number[],
  rng: Rng,
): GradeSummary[] {
  const counts = items.map(() => new Float64Array(k));
  for (const draw of draws) {
    const b = drawBoundaries(draw, anchors, k, rng);
    for (let t = 0; t < items.length; t++) {
      const c = counts[t]!;
      const g = gradeOf(draw[items[t]!]!, b);
      c[g] = c[g]! + 1;
    }
  }
  return counts.map((c) => summarize(Array.from(c, (v) => v / draws.length)));
}

export interface CalibrationReport {
  /** Anchors that could be held out (at least two distinct grades must remain). */
  heldOut: number;
  exact: number;
  adjacent: number;
  qwk: number;
  /** Share of held-out anchors whose true grade lies in the 80% interval. */
  coverage80: number;
  /** Mean Brier score of the grade probabilities. */
  brier: number;
  anchors: { item: number; grade: number; predicted: GradeSummary }[];
}

/**
 * Leave-one-anchor-out calibration: each anchor's grade is predicted from its own posterior draws
 * and boundaries drawn from the other anchors, then compared with its known grade.
 */
export function leaveOneAnchorOut(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  rng: Rng,
): CalibrationReport {
  const rows: CalibrationReport['anchors'] = [];
  for (const held of anchors) {
    const rest = anchors.filter((a) => a !== held);
    if (new Set(rest.map((a) => a.grade)).size < 2) continue;
    const [predicted] = projectGrades(draws, rest, k, [held.item], rng);
    rows.push({ item: held.item, grade: held.grade, predicted: predicted! });
  }
  const n = rows.length;
  const mean = (f: (r: (typeof rows)[number]) => number): number =>
    n === 0 ? Number.NaN : rows.reduce((s, r) => s + f(r), 0) / n;
  return {
    heldOut: n,
    exact: mean((r) => (r.predicted.modal === r.grade ? 1 : 0)),
    adjacent: mean((r) => (Math.abs(r.predicted.modal - r.grade) <= 1 ? 1 : 0)),
    qwk:
      n === 0
        ? Number.NaN
        : qwk(
            rows.map((r) => r.grade),
            rows.map((r) => r.predicted.modal),
            k,
          ),
    coverage80: mean((r) =>
      r.grade >= r.predicted.interval[0] && r.grade <= r.predicted.interval[1] ? 1 : 0,
    ),
    brier: mean((r) =>
      r.predicted.probabilities.reduce((s, p, g) => s + (p - (g === r.grade ? 1 : 0)) ** 2, 0),
    ),
    anchors: rows,
  };
}
