/**
 * Design targets for pair selection (select.ts lowers their posterior variance): per-essay rank
 * weights, rank contrasts and grade contrasts, and the anchor boundaries they are built on.
 */
import type { AnchorGrade } from './grades.js';
import type { Posterior } from './uncertainty.js';

/** A linear target u_tᵀθ (items with their coefficients) and its design weight. */
export interface Target {
  items: number[];
  coefs: number[];
  weight: number;
}

/** A boundary between two anchored grades as a linear form of the anchors' scores, and its value. */
export interface AnchorBoundary {
  at: number;
  items: number[];
  coefs: number[];
}

/**
 * Grade contrasts. The grade of essay i is the number of boundaries below its score, ≈ G_i =
 * Σ_k Φ((θ_i − b_k)/s_ik), so by the delta method Var G_i ≈ Var(J_iᵀθ) with J_i = Σ_k
 * φ(z_ik)/s_ik·(e_i − c_k), where b_k ≈ c_kᵀθ is boundary k as a linear form of the anchors
 * that define it, z_ik = (μ_i − b̂_k)/s_ik with b̂_k the point boundary, s_ik² = Var(θ_i − c_kᵀθ).
 * Σ_i Var G_i is the expected squared grade error that QWK charges, so the design weight of each
 * essay, and of each anchor through c_k, follows from how much its variance moves expected grade
 * accuracy, instead of a fixed weight for anchors: an essay far from every boundary gets ≈ 0, an
 * anchor that defines a boundary many undecided essays sit near gets the sum of their pulls.
 * Normalised so the mean J_ii² is 1, times `gradeFocus` (the same footing as the rank contrasts).
 */
export function gradeTargets(
  post: Posterior,
  students: number[],
  bounds: AnchorBoundary[],
  point: Float64Array,
  focus: number,
): Target[] {
  if (bounds.length === 0 || !(focus > 0)) return [];
  const rows: { items: number[]; coefs: number[]; jii: number }[] = [];
  for (const i of students) {
    const coef = new Map<number, number>([[i, 0]]);
    let jii = 0;
    bounds.forEach((b, k) => {
      let v = post.cov(i, i);
      b.items.forEach((a, r) => {
        v -= 2 * b.coefs[r]! * post.cov(i, a);
        b.items.forEach((c, q) => {
          v += b.coefs[r]! * b.coefs[q]! * post.cov(a, c);
        });
      });
      const sd = Math.sqrt(Math.max(v, 1e-12));
      const at = point[k] ?? b.at;
      const z = (post.mean[i]! - at) / sd;
      const w = Math.exp(-0.5 * z * z) / (2.5066282746310002 * sd);
      if (w < 1e-6) return;
      jii += w;
      b.items.forEach((a, r) => {
        coef.set(a, (coef.get(a) ?? 0) - w * b.coefs[r]!);
      });
    });
    coef.set(i, jii);
    if (jii > 0) rows.push({ items: [...coef.keys()], coefs: [...coef.values()], jii });
  }
  let m = 0;
  for (const r of rows) m += r.jii ** 2;
  m /= Math.max(1, rows.length);
  return rows.map((r) => ({ items: r.items, coefs: r.coefs, weight: m > 0 ? focus / m : 0 }));
}

/** Boundaries between consecutive anchored grades: midpoint of the grade centres, as a linear form. */
export function anchorBoundaries(anchors: AnchorGrade[], mean: ArrayLike<number>): AnchorBoundary[] {
  const byGrade = new Map<number, number[]>();
  for (const a of anchors) byGrade.set(a.grade, [...(byGrade.get(a.grade) ?? []), a.item]);
  const grades = [...byGrade.keys()].sort((x, y) => x - y);
  const out: AnchorBoundary[] = [];
  for (let t = 0; t + 1 < grades.length; t++) {
    const lo = byGrade.get(grades[t]!)!;
    const hi = byGrade.get(grades[t + 1]!)!;
    const items = [...lo, ...hi];
    const coefs = [...lo.map(() => 1 / (2 * lo.length)), ...hi.map(() => 1 / (2 * hi.length))];
    let at = 0;
    items.forEach((it, r) => {
      at += coefs[r]! * mean[it]!;
    });
    out.push({ at, items, coefs });
  }
  return out;
}

/**
 * Rank weights. An essay's rank moves with its score at the rate ∂rank_i/∂θ_i = Σ_j φ(d_ij/s_ij)/s_ij
 * (d_ij = μ_i − μ_j, s_ij² = Var θ_i + Var θ_j: the local density of competitors, smoothed by
 * the posterior), so its rank variance is ≈ (∂rank_i/∂θ_i)²·Var θ_i. Weighting Var θ_i by that
 * slope to the power `power` (2 = rank variance, which is what Spearman counts) spends comparisons
 * where essays are crowded and a score error costs many ranks. Normalised to mean 1.
 */
export function rankWeights(
  mean: Float64Array,
  sd: Float64Array,
  items: number[],
  power: number,
): Float64Array {
  const w = new Float64Array(items.length);
  if (items.length > 400) {
    // Large batches: density from score neighbours only (sorted window), O(n·window).
    const order = items.map((_, t) => t).sort((x, y) => mean[items[x]!]! - mean[items[y]!]!);
    const win = 30;
    for (let r = 0; r < order.length; r++) {
      const i = items[order[r]!]!;
      let slope = 0;
      for (let q = Math.max(0, r - win); q <= Math.min(order.length - 1, r + win); q++) {
        if (q === r) continue;
        const j = items[order[q]!]!;
        const s = Math.sqrt(sd[i]! ** 2 + sd[j]! ** 2) || 1;
        const z = (mean[i]! - mean[j]!) / s;
        slope += Math.exp(-0.5 * z * z) / (2.5066282746310002 * s);
      }
      w[order[r]!] = slope ** power;
    }
  } else {
    items.forEach((i, t) => {
      let slope = 0;
      for (const j of items) {
        if (j === i) continue;
        const s = Math.sqrt(sd[i]! ** 2 + sd[j]! ** 2) || 1;
        const z = (mean[i]! - mean[j]!) / s;
        slope += Math.exp(-0.5 * z * z) / (2.5066282746310002 * s);
      }
      w[t] = slope ** power;
    });
  }
  let m = 0;
  for (const x of w) m += x;
  m /= Math.max(1, w.length);
  if (m > 0) for (let t = 0; t < w.length; t++) w[t] = w[t]! / m;
  return w;
}

/**
 * Rank contrasts. The rank of essay k among `items` is ≈ R_k = Σ_l Φ((θ_k − θ_l)/s_kl), so by the
 * delta method Var R_k ≈ Var(J_k·θ) with J_kk = Σ_l φ(z_kl)/s_kl and J_kl = −φ(z_kl)/s_kl
 * (z_kl = (μ_k − μ_l)/s_kl, s_kl² = Var θ_k + Var θ_l). Each row sums to zero: moving an essay
 * together with its neighbours does not change its rank, which a weight on Var θ_k alone
 * (rankWeights) cannot express. Σ_k Var R_k is what Spearman counts. Returned as linear targets
 * (normalised so the mean of J_kk² is 1); coefficients below 1e-3 of J_kk are dropped and J_kk
 * is re-summed so each row stays a contrast.
 */
export function rankTargets(mean: Float64Array, sd: Float64Array, items: number[]): Target[] {
  const rows = items.map((k) => {
    const its: number[] = [k];
    const cs: number[] = [0];
    let jkk = 0;
    for (const l of items) {
      if (l === k) continue;
      const s = Math.sqrt(sd[k]! ** 2 + sd[l]! ** 2) || 1;
      const z = (mean[k]! - mean[l]!) / s;
      const v = Math.exp(-0.5 * z * z) / (2.5066282746310002 * s);
      jkk += v;
      its.push(l);
      cs.push(-v);
    }
    cs[0] = jkk;
    // Keep the row a contrast (sum zero) after dropping the negligible coefficients.
    const keepItems: number[] = [k];
    const keepCoefs: number[] = [0];
    its.forEach((it, r) => {
      if (r > 0 && Math.abs(cs[r]!) > 1e-3 * jkk) {
        keepItems.push(it);
        keepCoefs.push(cs[r]!);
        keepCoefs[0] = keepCoefs[0]! - cs[r]!;
      }
    });
    return { items: keepItems, coefs: keepCoefs, jkk };
  });
  let m = 0;
  for (const r of rows) m += r.jkk ** 2;
  m /= Math.max(1, rows.length);
  return rows.map((r) => ({ items: r.items, coefs: r.coefs, weight: m > 0 ? 1 / m : 0 }));
}
