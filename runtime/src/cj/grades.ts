/**
 * Grade projection from posterior draws.
 *
 * Grades are K ordered bands on the score scale separated by boundaries b_0 < … < b_{K−2}, and the
 * anchors' known grades say where the boundaries are. Per posterior draw s (which moves the
 * anchors' scores too, so their uncertainty and their correlation with the essays are included):
 *
 *   μ_g^(s) = mean score of the grade-g anchors in draw s, made monotone in g by weighted
 *             isotonic regression (PAV, weights = anchors per grade);
 *   b_k^(s) = (μ_k^(s) + μ_{k+1}^(s))/2 + τ_k·z,   z ~ N(0, 1),
 *   grade_i^(s) = #{k : b_k^(s) < θ_i^(s)}.
 *
 * The midpoint of adjacent grade centres is the seed system's boundary (HuleEdu isotonic centres,
 * midpoint boundaries), but here it is recomputed in every draw, so its uncertainty comes from
 * the joint posterior instead of being ignored. The jitter τ_k adds what the draws cannot know:
 * where inside their bands the anchors happen to sit. With within-grade variance v_k of the anchor
 * scores (of the two grades boundary k separates, partially pooled over grades), a grade centre is
 * known to ±√(v_k/n_g), so τ_k² = (v_k/n_k + v_k/n_{k+1})/4, and the jittered boundary is
 * truncated to the gap between the highest anchor graded ≤ k and the lowest anchor graded > k in
 * that draw (a boundary that misgrades an anchor contradicts the data). (The previous rule, a boundary uniform between the highest anchor
 * below and the lowest anchor above, let one noisy anchor widen a boundary zone across a whole
 * band: its probabilities were honest but diffuse and its modal grades less accurate.)
 *
 * Grades with no anchors below the lowest (above the highest) anchored grade get centres one
 * estimated band width w apart, w = (μ_max − μ_min)/(g_max − g_min). P(grade_i = g) is the
 * frequency over draws: never one-hot unless the data say so.
 */
import { cholesky, forwardSolve } from './linalg.js';
import type { Rng } from './rng.js';
import { normCdf, normInv, qwk } from './stats.js';

export interface AnchorGrade {
  item: number;
  grade: number;
}

/** Weighted isotonic regression (pool adjacent violators), non-decreasing, in input order. */
export function isotonic(y: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const v: number[] = [];
  const wt: number[] = [];
  const len: number[] = [];
  for (let i = 0; i < y.length; i++) {
    v.push(y[i]!);
    wt.push(w[i]!);
    len.push(1);
    while (v.length > 1 && v[v.length - 2]! > v[v.length - 1]!) {
      const b = v.pop()!;
      const bw = wt.pop()!;
      const bl = len.pop()!;
      const a = v.length - 1;
      v[a] = (v[a]! * wt[a]! + b * bw) / (wt[a]! + bw);
      wt[a] = wt[a]! + bw;
      len[a] = len[a]! + bl;
    }
  }
  const out = new Float64Array(y.length);
  let t = 0;
  for (let blk = 0; blk < v.length; blk++) for (let r = 0; r < len[blk]!; r++) out[t++] = v[blk]!;
  return out;
}

/**
 * Boundary jitter τ_k per boundary. v is the posterior expectation of the pooled within-grade
 * variance of the anchors' true scores, E[Σ_a (θ_a − θ̄_{g(a)})²] / Σ_g (n_g − 1), averaged over
 * the draws (so it is not understated when shrunk posterior means sit close together early on).
 * Boundary k uses the within-grade variance of the two grades it separates, shrunk toward v with
 * the weight of `pool` degrees of freedom: bands differ in width (the outer bands of a bell-shaped
 * population are much wider), and a variance pooled over all grades made the inner boundaries as
 * uncertain as the outer ones, so 80% intervals over-covered (0.88–0.93 of held-out anchors).
 */
export function boundaryJitter(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  pool = 1,
): Float64Array {
  const cnt = new Float64Array(k);
  for (const a of anchors) cnt[a.grade] = cnt[a.grade]! + 1;
  let df = 0;
  for (let g = 0; g < k; g++) if (cnt[g]! >= 2) df += cnt[g]! - 1;
  // Posterior expected within-grade sum of squares per grade.
  const ssg = new Float64Array(k);
  let v = 0;
  const sum = new Float64Array(k);
  for (const d of draws) {
    sum.fill(0);
    for (const a of anchors) sum[a.grade] = sum[a.grade]! + d[a.item]!;
    if (df > 0) {
      let ss = 0;
      for (const a of anchors)
        if (cnt[a.grade]! >= 2) {
          const e = (d[a.item]! - sum[a.grade]! / cnt[a.grade]!) ** 2;
          ss += e;
          ssg[a.grade] = ssg[a.grade]! + e / draws.length;
        }
      v += ss / df / draws.length;
    } else {
      // No replicated grade: a quarter of the mean centre spacing as the within-grade SD.
      const present = [...new Set(anchors.map((a) => a.grade))].sort((x, y) => x - y);
      const lo = present[0]!;
      const hi = present[present.length - 1]!;
      const spacing = hi > lo ? (sum[hi]! / cnt[hi]! - sum[lo]! / cnt[lo]!) / (hi - lo) : 1;
      v += (spacing / 4) ** 2 / draws.length;
    }
  }
  const tau = new Float64Array(Math.max(0, k - 1));
  for (let j = 0; j < k - 1; j++) {
    const nl = Math.max(1, cnt[j]!);
    const nu = Math.max(1, cnt[j + 1]!);
    // Within-grade variance of the two grades the boundary separates, shrunk toward the pooled
    // value with the weight of `pool` degrees of freedom (Infinity = pooled over all grades).
    let vj = v;
    if (df > 0 && Number.isFinite(pool)) {
      const dfj = Math.max(0, cnt[j]! - 1) + Math.max(0, cnt[j + 1]! - 1);
      vj = (ssg[j]! + ssg[j + 1]! + pool * v) / (dfj + pool);
    }
    tau[j] = Math.sqrt((vj / nl + vj / nu) / 4);
  }
  return tau;
}

/**
 * The population's distribution function in one draw: piecewise linear through the sorted
 * scores of the population essays at plotting positions (i + ½)/n, extended linearly beyond the
 * ends with the mean spacing of the outer five gaps. Grades are bands of the population, so
 * anchors placed anywhere inside their band are spread evenly over it on this scale (not on the
 * score scale, where the outer bands of a bell-shaped population are much wider).
 */
export interface PopulationScale {
  toRank(x: number): number;
  fromRank(r: number): number;
}

export function populationScale(draw: ArrayLike<number>, population: ArrayLike<number>): PopulationScale {
  const v = Float64Array.from({ length: population.length }, (_, t) => draw[population[t]!]!).sort();
  const n = v.length;
  const tail = Math.min(5, n - 1);
  const lowSlope = Math.max(1e-9, (v[tail]! - v[0]!) / tail) * n; // score per unit rank
  const highSlope = Math.max(1e-9, (v[n - 1]! - v[n - 1 - tail]!) / tail) * n;
  const p0 = 0.5 / n;
  const p1 = (n - 0.5) / n;
  return {
    toRank(x) {
      if (x <= v[0]!) return p0 - (v[0]! - x) / lowSlope;
      if (x >= v[n - 1]!) return p1 + (x - v[n - 1]!) / highSlope;
      let lo = 0;
      let hi = n - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (v[mid]! <= x) lo = mid;
        else hi = mid;
      }
      const gap = v[hi]! - v[lo]!;
      return (lo + 0.5 + (gap > 0 ? (x - v[lo]!) / gap : 0)) / n;
    },
    fromRank(r) {
      if (r <= p0) return v[0]! - (p0 - r) * lowSlope;
      if (r >= p1) return v[n - 1]! + (r - p1) * highSlope;
      const pos = r * n - 0.5;
      const lo = Math.floor(pos);
      return v[lo]! + (pos - lo) * (v[Math.min(n - 1, lo + 1)]! - v[lo]!);
    },
  };
}

/** Fewest population essays for which boundaries are placed on the population scale. */
export const MIN_POPULATION = 10;

/** One population scale per draw (sorted once, shared by every boundary draw of that draw). */
export function populationScales(
  draws: Float64Array[],
  population: ArrayLike<number>,
): PopulationScale[] | undefined {
  if (population.length < MIN_POPULATION) return undefined;
  return draws.map((d) => populationScale(d, population));
}

/**
 * Draws one set of K−1 sorted boundaries from one posterior draw of the scores. With
 * `population` (the draw's populationScale over the non-anchor essays), grade centres and their
 * midpoints are taken on the population scale and mapped back to scores; otherwise on the score
 * scale.
 */
export function drawBoundaries(
  draw: ArrayLike<number>,
  anchors: AnchorGrade[],
  k: number,
  rng: Rng,
  tau?: ArrayLike<number>,
  population?: PopulationScale,
): Float64Array {
  const b = new Float64Array(Math.max(0, k - 1));
  if (anchors.length === 0) return b;
  const scale = population ?? { toRank: (x: number) => x, fromRank: (r: number) => r };
  const sum = new Float64Array(k);
  const cnt = new Float64Array(k);
  for (const a of anchors) {
    sum[a.grade] = sum[a.grade]! + scale.toRank(draw[a.item]!);
    cnt[a.grade] = cnt[a.grade]! + 1;
  }
  const present: number[] = [];
  for (let g = 0; g < k; g++) if (cnt[g]! > 0) present.push(g);
  // Per draw the centres are only sorted, not pooled: pooling adjacent violators in noisy draws
  // merges inner centres and squeezes the inner bands, which pushed early grades to the extremes.
  const fitted = Float64Array.from(present, (g) => sum[g]! / cnt[g]!).sort();
  const gMin = present[0]!;
  const gMax = present[present.length - 1]!;
  const minWidth = population ? 1e-3 : 0.1;
  const width =
    gMax > gMin
      ? Math.max(minWidth, (fitted[fitted.length - 1]! - fitted[0]!) / (gMax - gMin))
      : population
        ? 1 / k
        : 1;
  // Centre of every grade: anchored grades from the sorted means, others interpolated/extrapolated.
  const centre = new Float64Array(k);
  for (let g = 0; g < k; g++) {
    if (g <= gMin) centre[g] = fitted[0]! - (gMin - g) * width;
    else if (g >= gMax) centre[g] = fitted[fitted.length - 1]! + (g - gMax) * width;
    else {
      let t = 0;
      while (present[t + 1]! < g) t++;
      const g0 = present[t]!;
      const g1 = present[t + 1]!;
      centre[g] = fitted[t]! + ((g - g0) / (g1 - g0)) * (fitted[t + 1]! - fitted[t]!);
    }
  }
  // The boundary between grades j and j+1 lies above every anchor graded ≤ j and below every
  // anchor graded ≥ j+1 (in this draw): the jitter is truncated to that gap when it is open.
  const below = new Float64Array(Math.max(0, k - 1)).fill(Number.NEGATIVE_INFINITY);
  const above = new Float64Array(Math.max(0, k - 1)).fill(Number.POSITIVE_INFINITY);
  for (const a of anchors) {
    const x = draw[a.item]!;
    for (let j = a.grade; j < k - 1; j++) if (x > below[j]!) below[j] = x;
    for (let j = 0; j < a.grade; j++) if (x < above[j]!) above[j] = x;
  }
  for (let j = 0; j < k - 1; j++) {
    const mid = scale.fromRank((centre[j]! + centre[j + 1]!) / 2);
    const t = tau ? tau[j]! : 0;
    const lo = below[j]!;
    const hi = above[j]!;
    if (t > 0 && lo < hi) b[j] = truncatedNormal(mid, t, lo, hi, rng);
    else if (lo < hi) b[j] = Math.min(hi, Math.max(lo, mid));
    else b[j] = mid + t * rng.normal();
  }
  return b.sort();
}

/** A draw of N(mean, sd²) restricted to (lo, hi) (lo < hi; either may be infinite), by inversion. */
export function truncatedNormal(mean: number, sd: number, lo: number, hi: number, rng: Rng): number {
  const a = normCdf((lo - mean) / sd);
  const b = normCdf((hi - mean) / sd);
  if (!(b - a > 1e-12)) {
    // The gap lies far in one tail: its end nearest the mean.
    return Math.abs(lo - mean) < Math.abs(hi - mean) ? lo : hi;
  }
  const u = a + (b - a) * rng.next();
  return Math.min(hi, Math.max(lo, mean + sd * normInv(u)));
}

/**
 * The draws with the anchors' values rearranged into grade order: per draw the anchors' drawn
 * scores are sorted and handed out lowest grade first (within a grade in item order), so every
 * anchor of a higher grade scores above every anchor of a lower one; the other items are
 * unchanged. The anchors' known grades say their true scores are in this order, but the posterior
 * the draws come from ignores the grades; an anchor with few comparisons is then drawn near the
 * middle whatever its grade, the grade centres of a draw sit closer together than the truth
 * (sorting only the centres, as drawBoundaries does, undoes little of it), and the outer bands,
 * unbounded, take the essays' spread: too much probability on the outer grades, most with few
 * comparisons per anchor. Sorting a sequence whose truth is sorted never moves it further from
 * the truth in any Lp norm (monotone rearrangement; Chernozhukov, Fernández-Val & Galichon 2009),
 * and it changes nothing in a draw that already has the anchors in order.
 */
export function rearrangeAnchors(draws: Float64Array[], anchors: AnchorGrade[]): Float64Array[] {
  const byGrade = [...anchors].sort((x, y) => x.grade - y.grade || x.item - y.item);
  const values = new Float64Array(byGrade.length);
  return draws.map((d) => {
    for (let t = 0; t < byGrade.length; t++) values[t] = d[byGrade[t]!.item]!;
    values.sort();
    let ordered = true;
    for (let t = 0; t < byGrade.length; t++) if (d[byGrade[t]!.item]! !== values[t]) ordered = false;
    if (ordered) return d;
    const out = Float64Array.from(d);
    for (let t = 0; t < byGrade.length; t++) out[byGrade[t]!.item] = values[t]!;
    return out;
  });
}

export function gradeOf(theta: number, boundaries: ArrayLike<number>): number {
  let g = 0;
  while (g < boundaries.length && boundaries[g]! < theta) g++;
  return g;
}

/**
 * How the reported (assigned) grade is decided from the grade probabilities:
 * - `modal`: the most probable grade (maximises expected exact agreement);
 * - `median`: the posterior median, the lowest grade whose cumulative probability reaches 0.5
 *   (minimises the expected absolute error in grades);
 * - `mean`: the posterior mean rounded to the nearest grade (minimises the expected squared error,
 *   the loss quadratic weighted kappa charges; halves round up);
 * - `exact`: for one essay the modal grade; for a batch the monotone assignment with the most
 *   expected exact agreements (exactGrades).
 */
export type GradeDecision = 'modal' | 'median' | 'mean' | 'exact';

/** The grade index `rule` assigns to these probabilities (lowest grade = 0). */
export function decideGrade(probabilities: ArrayLike<number>, rule: GradeDecision): number {
  const k = probabilities.length;
  if (rule === 'median') {
    let c = 0;
    for (let g = 0; g < k; g++) {
      c += probabilities[g]!;
      if (c >= 0.5 - 1e-9) return g;
    }
    return k - 1;
  }
  if (rule === 'mean') {
    let m = 0;
    let total = 0;
    for (let g = 0; g < k; g++) {
      m += g * probabilities[g]!;
      total += probabilities[g]!;
    }
    return Math.min(k - 1, Math.max(0, Math.floor(m / (total > 0 ? total : 1) + 0.5 + 1e-9)));
  }
  // `modal`, and `exact` for one essay (the grade of most expected agreement).
  let modal = 0;
  for (let g = 1; g < k; g++) if (probabilities[g]! > probabilities[modal]!) modal = g;
  return modal;
}

export interface GradeSummary {
  probabilities: number[];
  /** The grade chosen by the decision rule (`settings.gradeDecision`); the headline grade. */
  assigned: number;
  modal: number;
  modalProbability: number;
  /** Σ_g g·P(g), on the 0-based grade index scale. */
  expected: number;
  /** Nominal 80% interval [lo, hi]: contiguous set around `assigned` whose probability is nearest 0.8. */
  interval: [number, number];
}

export function summarize(
  probabilities: number[],
  decision: GradeDecision = 'modal',
  assignedGrade?: number,
): GradeSummary {
  let modal = 0;
  let expected = 0;
  for (let g = 0; g < probabilities.length; g++) {
    if (probabilities[g]! > probabilities[modal]!) modal = g;
    expected += g * probabilities[g]!;
  }
  // Nominal-80% set: grow a contiguous set from the assigned grade toward the more probable
  // neighbour while that brings its probability closer to 0.8 (ties: grow). The central 10%–90%
  // interval of a discrete distribution, or the smallest set holding ≥ 0.8, holds 0.85–0.95 on
  // average and so over-covers (0.9–0.99 in the benchmark); this set holds 0.8 on average, so
  // with calibrated probabilities it covers ≈ 80%.
  // The set grows from the assigned grade, so it always contains the grade that is reported.
  const assigned = assignedGrade ?? decideGrade(probabilities, decision);
  let lo = assigned;
  let hi = assigned;
  let mass = probabilities[assigned]!;
  while (lo > 0 || hi < probabilities.length - 1) {
    const left = lo > 0 ? probabilities[lo - 1]! : -1;
    const right = hi < probabilities.length - 1 ? probabilities[hi + 1]! : -1;
    const next = Math.max(left, right);
    if (!(next > 0)) break;
    if (Math.abs(mass + next - 0.8) > Math.abs(mass - 0.8) + 1e-12) break;
    mass += next;
    if (left >= right) lo--;
    else hi++;
  }
  return {
    probabilities,
    assigned,
    modal,
    modalProbability: probabilities[modal]!,
    expected,
    interval: [lo, hi],
  };
}

export interface GradeProjection {
  rows: GradeSummary[];
  /**
   * Point boundaries on the score scale: per boundary the median of its posterior draws. The
   * draws' boundaries are sorted in every draw, so these medians are sorted too.
   */
  boundaries: Float64Array;
}

/** Median of a sample (sorted copy). */
function median(xs: Float64Array): number {
  if (xs.length === 0) return Number.NaN;
  const s = Float64Array.from(xs).sort();
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * The assigned (headline) grades as a monotone function of the reported scores, so a higher
 * score never gets a lower grade (a teacher who sees a lower-ranked essay with a higher grade
 * stops trusting the table). `median`: the grade of the score against the point boundaries (each
 * boundary's posterior median), one set of boundaries for every essay: the score-scale version of
 * the per-essay posterior median, which, computed essay by essay, inverted the ranking when two
 * close essays had different posterior spreads or correlations with the anchors. `modal`/`mean`:
 * the per-essay rule made monotone in the score by isotonic regression (PAV), rounded.
 */
export function monotoneGrades(
  probabilities: number[][],
  scores: ArrayLike<number>,
  boundaries: ArrayLike<number>,
  decision: GradeDecision,
): number[] {
  const n = probabilities.length;
  const byBoundaries = (): number[] =>
    Array.from({ length: n }, (_, t) => {
      let g = 0;
      while (g < boundaries.length && boundaries[g]! < scores[t]!) g++;
      return g;
    });
  if (decision === 'median') return byBoundaries();
  if (decision === 'exact') return exactGrades(probabilities, scores, { reference: byBoundaries() });
  const order = Array.from({ length: n }, (_, t) => t).sort((x, y) => scores[x]! - scores[y]!);
  const raw = order.map((t) => decideGrade(probabilities[t]!, decision));
  const fitted = isotonic(raw, new Float64Array(n).fill(1));
  const out = new Array<number>(n);
  const k = probabilities[0]?.length ?? 1;
  order.forEach((t, r) => {
    out[t] = Math.min(k - 1, Math.max(0, Math.floor(fitted[r]! + 0.5 + 1e-9)));
  });
  return out;
}

/** Expected agreements within which two assignments count as tied (sums of draw frequencies). */
const AGREEMENT_TIE = 1e-9;

/**
 * The monotone assignment with the most expected exact agreements: grades g_1 ≤ … ≤ g_n in score
 * order maximising Σ_t U_t(g_t), U_t(g) = P_t(g) − λ·E_t[(g − G)²] (λ = `squaredPenalty`, default
 * 0: the expected number of essays graded exactly right). The objective is a sum over essays of
 * their own marginal probabilities, so the draws' joint distribution is not needed, and a dynamic
 * programme over (essay in score order, grade) solves it exactly in O(n·k): best[g] = the best
 * total of the essays so far with the last one graded ≤ g. Per-essay modal grades made monotone by
 * PAV (`modal`) are one feasible assignment among these, so they never agree more in expectation.
 * Ties in the objective (frequent: probabilities are draw counts) go to the assignment nearest to
 * `reference` (Σ|g_t − ref_t|; plan() passes the median rule's grades, so the rule departs from the
 * default only where agreement gains), then to lower grades. Essays with equal scores may get
 * different grades (assertMonotone allows it), in input order.
 */
export function exactGrades(
  probabilities: number[][],
  scores: ArrayLike<number>,
  opts: { reference?: ArrayLike<number>; squaredPenalty?: number } = {},
): number[] {
  const n = probabilities.length;
  if (n === 0) return [];
  const k = probabilities[0]!.length;
  const lambda = opts.squaredPenalty ?? 0;
  const ref = opts.reference;
  const order = Array.from({ length: n }, (_, t) => t).sort((x, y) => scores[x]! - scores[y]! || x - y);
  // (value, distance to the reference) of the best prefix whose last grade is ≤ g, and that grade.
  let bestVal = new Float64Array(k);
  let bestDist = new Float64Array(k);
  const arg: Int32Array[] = [];
  const utility = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    const p = probabilities[order[r]!]!;
    for (let g = 0; g < k; g++) {
      let u = p[g]!;
      if (lambda > 0) for (let h = 0; h < k; h++) u -= lambda * p[h]! * (g - h) ** 2;
      utility[g] = u;
    }
    const val = new Float64Array(k);
    const dist = new Float64Array(k);
    const a = new Int32Array(k);
    for (let g = 0; g < k; g++) {
      // Ending exactly at g: the best prefix ending ≤ g, plus this essay at g.
      const v = (r > 0 ? bestVal[g]! : 0) + utility[g]!;
      const d = (r > 0 ? bestDist[g]! : 0) + (ref ? Math.abs(g - ref[order[r]!]!) : 0);
      // Best ending ≤ g: this one replaces the best ending ≤ g − 1 only when strictly better.
      if (
        g === 0 ||
        v > val[g - 1]! + AGREEMENT_TIE ||
        (Math.abs(v - val[g - 1]!) <= AGREEMENT_TIE && d < dist[g - 1]!)
      ) {
        val[g] = v;
        dist[g] = d;
        a[g] = g;
      } else {
        val[g] = val[g - 1]!;
        dist[g] = dist[g - 1]!;
        a[g] = a[g - 1]!;
      }
    }
    arg.push(a);
    bestVal = val;
    bestDist = dist;
  }
  // Backtrack: the last essay's grade is the best overall; each earlier one the best ≤ the next.
  const out = new Array<number>(n);
  let g = k - 1;
  for (let r = n - 1; r >= 0; r--) {
    g = arg[r]![g]!;
    out[order[r]!] = g;
  }
  return out;
}

/** Throws when a higher score has a lower assigned grade (an internal invariant of plan()). */
export function assertMonotone(scores: ArrayLike<number>, assigned: ArrayLike<number>): void {
  const order = Array.from({ length: assigned.length }, (_, t) => t).sort((x, y) => scores[x]! - scores[y]!);
  let best = Number.NEGATIVE_INFINITY;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const t of order) {
    const g = assigned[t]!;
    // Only a strictly higher score must not have a lower grade.
    if (g < best && scores[t]! > bestScore)
      throw new Error(
        `internal: grade inversion (score ${scores[t]} graded ${g} below a lower score's ${best})`,
      );
    if (g > best) {
      best = g;
      bestScore = scores[t]!;
    }
  }
}

/** Grade probabilities for `items` from draws, with boundaries re-drawn per posterior draw. */
export function projectGrades(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  items: number[],
  rng: Rng,
  decision: GradeDecision = 'modal',
): GradeSummary[] {
  return gradeProjection(draws, anchors, k, items, rng, { decision }).rows;
}

/**
 * Grade probabilities for `items` (draw frequencies) and point boundaries. With `scores` (the
 * reported score of each item), the assigned grade is monotone in the score (monotoneGrades);
 * without, it is the per-essay decision rule.
 */
export function gradeProjection(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  items: number[],
  rng: Rng,
  opts: {
    decision?: GradeDecision;
    scores?: ArrayLike<number>;
    scales?: PopulationScale[];
    /** Extra per-essay SD (judge misperception) integrated out analytically. */
    extraSd?: number;
    /** Boundaries from the draws with the anchors rearranged into grade order (rearrangeAnchors). */
    rearrange?: boolean;
  } = {},
): GradeProjection {
  const decision = opts.decision ?? 'modal';
  const scores = opts.scores;
  const extra = opts.extraSd ?? 0;
  const counts = items.map(() => new Float64Array(k));
  const tau = boundaryJitter(draws, anchors, k);
  const bDraws = opts.rearrange ? rearrangeAnchors(draws, anchors) : draws;
  const drawn = Array.from({ length: Math.max(0, k - 1) }, () => new Float64Array(draws.length));
  draws.forEach((draw, s) => {
    const b = drawBoundaries(bDraws[s]!, anchors, k, rng, tau, opts.scales?.[s]);
    for (let j = 0; j < b.length; j++) drawn[j]![s] = b[j]!;
    for (let t = 0; t < items.length; t++) addGrade(counts[t]!, draw[items[t]!]!, b, extra);
  });
  const boundaries = Float64Array.from(drawn, median);
  const probabilities = counts.map((c) => Array.from(c, (v) => v / draws.length));
  const assigned = scores ? monotoneGrades(probabilities, scores, boundaries, decision) : undefined;
  return {
    rows: probabilities.map((p, t) => summarize(p, decision, assigned?.[t])),
    boundaries,
  };
}

/**
 * Adds one draw's grade to `counts`: the grade of x among the boundaries, or, with an extra SD,
 * the probability of each grade when x carries extra N(0, extra²) noise (integrated exactly).
 */
export function addGrade(counts: Float64Array, x: number, b: ArrayLike<number>, extra: number): void {
  if (!(extra > 0)) {
    const g = gradeOf(x, b);
    counts[g] = counts[g]! + 1;
    return;
  }
  let below = 0;
  for (let g = 0; g < counts.length; g++) {
    const upTo = g < b.length ? normCdf((b[g]! - x) / extra) : 1;
    counts[g] = counts[g]! + Math.max(0, upTo - below);
    below = upTo;
  }
}

/**
 * Anchor spread: what a persistent misperception does to the anchors' known grades. Anchors of
 * one grade sit somewhere inside their band, so their true scores spread like a draw across it:
 * within-grade variance ≈ w²/12 for a band of width w (uniform placement), w ≈ the spacing of the
 * neighbouring grade centres. A judge that perceives each essay with a persistent offset δ ~
 * N(0, τ²) adds τ² to that spread, and no fit statistic of its own comparisons can see it (the
 * offsets fit Bradley–Terry exactly). Over the inner grades (≥ 2 anchors, both neighbours
 * anchored), per posterior draw: SS = Σ within-grade sum of squares, EX = Σ (n_g − 1)·sp_g²/12 with
 * sp_g = (centre_{g+1} − centre_{g−1})/2, SS corrected for the posterior variance. ratio = SS/E[EX]
 * (≈ 1 without misperception, larger with it); extra variance per essay = (SS − E[EX])/Σ(n_g − 1).
 */
export const MIN_SPREAD_DF = 3;

export function anchorSpread(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
): { ratio: number; extraVar: number; df: number; z: number } {
  const cnt = new Float64Array(k);
  for (const a of anchors) cnt[a.grade] = cnt[a.grade]! + 1;
  const inner: number[] = [];
  for (let g = 1; g < k - 1; g++) if (cnt[g]! >= 2 && cnt[g - 1]! > 0 && cnt[g + 1]! > 0) inner.push(g);
  const df = inner.reduce((t, g) => t + cnt[g]! - 1, 0);
  // Fewer than MIN_SPREAD_DF degrees of freedom say too little (one inner grade of two anchors
  // gave spurious ratios early in a consistent judge's run): the caller falls back.
  if (df < MIN_SPREAD_DF || draws.length === 0) return { ratio: Number.NaN, extraVar: 0, df, z: Number.NaN };
  let ss = 0;
  let ex = 0;
  const sum = new Float64Array(k);
  const meanOf = new Float64Array(draws[0]!.length);
  for (const d of draws) {
    for (const a of anchors) meanOf[a.item] = meanOf[a.item]! + d[a.item]! / draws.length;
    sum.fill(0);
    for (const a of anchors) sum[a.grade] = sum[a.grade]! + d[a.item]!;
    for (const a of anchors) {
      if (!inner.includes(a.grade)) continue;
      ss += (d[a.item]! - sum[a.grade]! / cnt[a.grade]!) ** 2;
    }
    for (const g of inner) {
      const sp = (sum[g + 1]! / cnt[g + 1]! - sum[g - 1]! / cnt[g - 1]!) / 2;
      ex += ((cnt[g]! - 1) * sp * sp) / 12;
    }
  }
  ss /= draws.length;
  ex /= draws.length;
  // The spread of the posterior means overstates the true spread by the posterior variance and
  // the draws' spread by twice that: 2·SS(means) − E[SS(draw)] removes it (a moment estimate).
  sum.fill(0);
  for (const a of anchors) sum[a.grade] = sum[a.grade]! + meanOf[a.item]!;
  let ssMeans = 0;
  for (const a of anchors)
    if (inner.includes(a.grade)) ssMeans += (meanOf[a.item]! - sum[a.grade]! / cnt[a.grade]!) ** 2;
  // Test against τ = 0: the posterior means' within-grade SS then has expectation EX + V (V =
  // E[SS(draw)] − SS(means), the posterior variance of the within-grade deviations) and
  // df·SS/(EX + V) is ≈ χ²_df; z is its Wilson–Hilferty normal deviate. The ratio alone ignored
  // how noisy 4 degrees of freedom are next to anchors' posterior SDs of ≈ 0.9 logits: it fired
  // on consistent judges in 2 of 9 tuning runs at 600 comparisons.
  const v = Math.max(0, ss - ssMeans);
  const z = ex + v > 0 ? wilsonHilferty((df * ssMeans) / (ex + v), df) : Number.NaN;
  ss = 2 * ssMeans - ss;
  return { ratio: ex > 0 ? ss / ex : Number.NaN, extraVar: Math.max(0, (ss - ex) / df), df, z };
}

/** Normal deviate of a χ²_df value x (Wilson & Hilferty 1931): ((x/df)^⅓ − (1 − 2/9df))/√(2/9df). */
export function wilsonHilferty(x: number, df: number): number {
  const c = 2 / (9 * df);
  return (Math.cbrt(Math.max(0, x) / df) - (1 - c)) / Math.sqrt(c);
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
  /** The judge's extra per-essay SD estimated from the held-out anchors (see judgeExtraSd). */
  extra: ExtraSd;
}

export interface ExtraSd {
  /** Maximum-likelihood extra SD (logits) on the grid EXTRA_GRID. */
  sd: number;
  /** Likelihood-ratio statistic 2·(ℓ(sd) − ℓ(0)). */
  lr: number;
  /** The SD applied to every essay's uncertainty: `sd` when lr ≥ EXTRA_LR, else 0. */
  applied: number;
}

/** Candidate extra SDs (logits): 0 to 3 in steps of 0.05. */
export const EXTRA_GRID = Float64Array.from({ length: 61 }, (_, t) => t * 0.05);
/**
 * Likelihood-ratio threshold (plan() no longer applies this estimate: on consistent judges the
 * ratio reached 2.5–5.9, so the mixture below is not its distribution here): 2.71 is the 5% point of the ½χ²₀ + ½χ²₁ mixture that
 * a variance on the boundary of its range follows under the null (Self & Liang 1987).
 */
export const EXTRA_LR = 2.71;

/**
 * Leave-one-anchor-out calibration: each anchor's grade is predicted from its own posterior draws
 * and boundaries drawn from the other anchors, then compared with its known grade.
 *
 * The same held-out predictions estimate what no fit statistic of one judge can see: a judge that
 * misperceives each essay by a persistent offset δ ~ N(0, τ²) fits Bradley–Terry exactly (the
 * offsets are absorbed into the scores), but then held-out anchors land further from their known
 * grades than the posterior expects. With the boundaries b^(s) of the other anchors in draw s and
 * the held-out anchor's drawn score x^(s), P_τ(known grade g) = mean_s [Φ((b_g − x)/τ) −
 * Φ((b_{g−1} − x)/τ)]; τ̂ maximises Σ_anchors log P_τ over EXTRA_GRID. τ̂ is applied (every essay's
 * uncertainty widened by it, grade probabilities and claims included) when the likelihood ratio
 * against τ = 0 passes EXTRA_LR; the report below then uses the widened predictions.
 */
export function leaveOneAnchorOut(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  rng: Rng,
  decision: GradeDecision = 'modal',
  means?: ArrayLike<number>,
  scales?: PopulationScale[],
  /**
   * Extra SD to apply instead of the held-out likelihood's (from anchorSpread, when the anchors
   * allow it: on the tuning seeds the likelihood's maximum overshot the misperception it found).
   */
  forceExtra?: number,
  /** Boundaries from the other anchors rearranged into grade order (rearrangeAnchors). */
  rearrange = false,
): CalibrationReport {
  const S = draws.length;
  const held: { item: number; grade: number; bounds: Float64Array[]; x: Float64Array }[] = [];
  const ll = new Float64Array(EXTRA_GRID.length);
  for (const a of anchors) {
    const rest = anchors.filter((r) => r !== a);
    if (new Set(rest.map((r) => r.grade)).size < 2) continue;
    const tau = boundaryJitter(draws, rest, k);
    const bDraws = rearrange ? rearrangeAnchors(draws, rest) : draws;
    const bounds = bDraws.map((d, s) => drawBoundaries(d, rest, k, rng, tau, scales?.[s]));
    const x = Float64Array.from(draws, (d) => d[a.item]!);
    held.push({ item: a.item, grade: a.grade, bounds, x });
    EXTRA_GRID.forEach((t, gi) => {
      let p = 0;
      for (let s = 0; s < S; s++) {
        const b = bounds[s]!;
        const lo = a.grade > 0 ? b[a.grade - 1]! : Number.NEGATIVE_INFINITY;
        const hi = a.grade < k - 1 ? b[a.grade]! : Number.POSITIVE_INFINITY;
        const xs = x[s]!;
        p += t > 0 ? normCdf((hi - xs) / t) - normCdf((lo - xs) / t) : xs > lo && xs <= hi ? 1 : 0;
      }
      // Half a draw of slack: a finite sample of draws never proves a probability of 0.
      ll[gi] = ll[gi]! + Math.log((p + 0.5) / (S + 1));
    });
  }
  let best = 0;
  for (let gi = 1; gi < ll.length; gi++) if (ll[gi]! > ll[best]! + 1e-12) best = gi;
  const lr = held.length > 0 ? 2 * (ll[best]! - ll[0]!) : 0;
  const extra: ExtraSd = {
    sd: EXTRA_GRID[best]!,
    lr,
    applied: forceExtra ?? (lr >= EXTRA_LR ? EXTRA_GRID[best]! : 0),
  };
  const rows: CalibrationReport['anchors'] = held.map((h) => {
    const counts = new Float64Array(k);
    for (let s = 0; s < S; s++) addGrade(counts, h.x[s]!, h.bounds[s]!, extra.applied);
    const probabilities = Array.from(counts, (c) => c / S);
    // The median rule's headline is the score against the point boundaries (monotoneGrades); the
    // other rules, for one essay on its own, are the per-essay rule that summarize() applies.
    let assigned: number | undefined;
    if (means && decision === 'median') {
      const point = Float64Array.from({ length: Math.max(0, k - 1) }, (_, j) =>
        median(Float64Array.from(h.bounds, (b) => b[j]!)),
      );
      assigned = gradeOf(means[h.item]!, point);
    }
    return { item: h.item, grade: h.grade, predicted: summarize(probabilities, decision, assigned) };
  });
  const n = rows.length;
  const mean = (f: (r: (typeof rows)[number]) => number): number =>
    n === 0 ? Number.NaN : rows.reduce((s, r) => s + f(r), 0) / n;
  return {
    heldOut: n,
    exact: mean((r) => (r.predicted.assigned === r.grade ? 1 : 0)),
    adjacent: mean((r) => (Math.abs(r.predicted.assigned - r.grade) <= 1 ? 1 : 0)),
    qwk:
      n === 0
        ? Number.NaN
        : qwk(
            rows.map((r) => r.grade),
            rows.map((r) => r.predicted.assigned),
            k,
          ),
    coverage80: mean((r) =>
      r.grade >= r.predicted.interval[0] && r.grade <= r.predicted.interval[1] ? 1 : 0,
    ),
    brier: mean((r) =>
      r.predicted.probabilities.reduce((s, p, g) => s + (p - (g === r.grade ? 1 : 0)) ** 2, 0),
    ),
    anchors: rows,
    extra,
  };
}

/** The anchors' evidence about a judge's persistent per-essay misperception (misperceptionTest). */
export interface MisperceptionTest {
  /** Degrees of freedom: within-grade contrasts of inner grades (0: no test possible). */
  df: number;
  /** Q(0), the contrasts' χ² statistic under a consistent judge. */
  q: number;
  /** P(χ²_df ≥ q): the test's p-value (NaN without a test). */
  p: number;
  /** p ≤ alpha: the anchors show a misperception. */
  reject: boolean;
  /** Maximum-likelihood extra SD (logits) on EXTRA_GRID. */
  tauHat: number;
  /** Upper (1 − alpha) confidence bound on the extra SD, by test inversion (EXTRA_GRID's end when unbounded). */
  tauUpper: number;
}

/** χ²_df distribution function by Wilson–Hilferty (accurate to ≈ 0.01 from df = 1). */
export function chiSquareCdf(x: number, df: number): number {
  return normCdf(wilsonHilferty(x, df));
}

/**
 * A calibrated test of a judge's persistent per-essay misperception δ ~ N(0, τ²) from the anchors'
 * known grades (the only evidence one judge's comparisons leave about it; see anchorSpread for the
 * band-width model). Per inner grade g (≥ 2 anchors, both neighbours anchored), Helmert contrasts
 * of its anchors (orthonormal, so each carries the within-band variance v_g = sp_g²/12 once) remove
 * the grade's unknown centre. Their posterior means r have covariance ≈ Σ_r + diag(v + τ²), with
 * Σ_r the posterior covariance of the contrasts (from the draws: correlated anchors are whitened,
 * not assumed independent), so Q(τ) = rᵀ(Σ_r + diag(v + τ²))⁻¹r ≈ χ²_df under τ. The test rejects
 * τ = 0 when P(χ²_df ≥ Q(0)) ≤ alpha: its false-positive rate on a consistent judge is alpha by
 * construction (to the Gaussian and Laplace approximations). τ̂ maximises the Gaussian likelihood;
 * the upper bound is the largest τ whose Q(τ) is not in the lower alpha tail (test inversion).
 * Power is what the anchors allow: it grows with their number and their comparisons. Needs
 * MIN_SPREAD_DF contrasts (2 anchors in each of 3 inner grades, or 3 + 2 …); df 0 = no test.
 */
export function misperceptionTest(
  draws: Float64Array[],
  anchors: AnchorGrade[],
  k: number,
  alpha: number,
  /**
   * Where anchors sit in their band. `uniform` (default): spread v = w²/12 for the test, the
   * estimate and the bound. `anywhere`: the test uses Popoviciu's bound w²/4 (no placement spreads
   * more, so the false-positive rate is ≤ alpha for any placement) and the upper bound uses 0 (no
   * placement spreads less, so the bound is conservative for any placement); the estimate keeps w²/12.
   */
  placement: 'uniform' | 'anywhere' = 'uniform',
): MisperceptionTest {
  const none: MisperceptionTest = {
    df: 0,
    q: Number.NaN,
    p: Number.NaN,
    reject: false,
    tauHat: 0,
    tauUpper: EXTRA_GRID[EXTRA_GRID.length - 1]!,
  };
  const S = draws.length;
  if (S < 2) return none;
  const byGrade: number[][] = Array.from({ length: k }, () => []);
  for (const a of anchors) byGrade[a.grade]!.push(a.item);
  const mean = (i: number): number => draws.reduce((t, d) => t + d[i]!, 0) / S;
  const centre = byGrade.map((items) =>
    items.length > 0 ? items.reduce((t, i) => t + mean(i), 0) / items.length : Number.NaN,
  );
  // Contrasts as (items, coefficients, band variance).
  const rows: { items: number[]; coefs: number[]; v: number }[] = [];
  for (let g = 1; g < k - 1; g++) {
    const items = byGrade[g]!;
    if (items.length < 2 || !(byGrade[g - 1]!.length > 0) || !(byGrade[g + 1]!.length > 0)) continue;
    const sp = (centre[g + 1]! - centre[g - 1]!) / 2;
    for (let j = 1; j < items.length; j++) {
      const c = 1 / Math.sqrt(j * (j + 1));
      rows.push({
        items: items.slice(0, j + 1),
        coefs: [...Array.from({ length: j }, () => c), -j * c],
        v: (sp * sp) / 12,
      });
    }
  }
  const df = rows.length;
  // As anchorSpread: fewer than MIN_SPREAD_DF contrasts say too little to act on (one inner grade
  // of two anchors gave spurious verdicts early in a consistent judge's run): no test.
  if (df < MIN_SPREAD_DF) return none;
  // Contrast values per draw, their means and covariance.
  const val = rows.map((r) =>
    Float64Array.from(draws, (d) => r.items.reduce((t, i, u) => t + r.coefs[u]! * d[i]!, 0)),
  );
  const rbar = val.map((x) => x.reduce((t, y) => t + y, 0) / S);
  const cov = new Float64Array(df * df);
  for (let i = 0; i < df; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let t = 0; t < S; t++) s += (val[i]![t]! - rbar[i]!) * (val[j]![t]! - rbar[j]!);
      cov[i * df + j] = cov[j * df + i] = s / (S - 1);
    }
  const at = (tau: number, band = 1): { q: number; logDet: number } => {
    const M = Float64Array.from(cov);
    for (let i = 0; i < df; i++) M[i * df + i] = M[i * df + i]! + band * rows[i]!.v + tau * tau + 1e-9;
    if (!cholesky(M, df)) return { q: Number.NaN, logDet: Number.NaN };
    const z = Float64Array.from(rbar);
    forwardSolve(M, df, z);
    let q = 0;
    let logDet = 0;
    for (let i = 0; i < df; i++) {
      q += z[i]! * z[i]!;
      logDet += 2 * Math.log(M[i * df + i]!);
    }
    return { q, logDet };
  };
  const anywhere = placement === 'anywhere';
  const q0 = at(0, anywhere ? 3 : 1).q;
  if (!Number.isFinite(q0)) return none;
  let tauHat = 0;
  let bestLl = Number.NEGATIVE_INFINITY;
  let tauUpper = EXTRA_GRID[EXTRA_GRID.length - 1]!;
  let upperFound = false;
  for (const tau of EXTRA_GRID) {
    const r = at(tau);
    const rb = anywhere ? at(tau, 0) : r;
    const ll = -0.5 * (r.logDet + r.q);
    if (ll > bestLl + 1e-12) {
      bestLl = ll;
      tauHat = tau;
    }
    // Q(τ) falls with τ: the first τ whose Q is in the lower alpha tail is rejected as too large.
    if (!upperFound && chiSquareCdf(rb.q, df) < alpha) {
      tauUpper = Math.max(0, tau - EXTRA_GRID[1]!);
      upperFound = true;
    }
  }
  const p = 1 - chiSquareCdf(q0, df);
  return { df, q: q0, p, reject: p <= alpha, tauHat, tauUpper };
}
