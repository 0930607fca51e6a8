/**
 * Pair selection for the next round.
 *
 * Objective: the weighted posterior variance Σ_k w_k Var(θ_k) + Σ_t ω_t Var(u_tᵀθ) over linear
 * targets u_t (plan.ts: rank contrasts, whose variance is each essay's delta-method rank
 * variance, and boundary contrasts for essays whose grade is still undecided). A comparison of (i, j) with expected Fisher
 * information I (model.ts, at the difference d̄ = μ_i − μ_j shrunk by the probit approximation
 * d̄/√(1 + π·Var(θ_i − θ_j)/8), MacKay 1992) is a rank-one update of the precision, so by
 * Sherman–Morrison it lowers the objective by
 *
 *   gain(i, j) = I · Σ_k w_k (Σ_ki − Σ_kj)² / (1 + I · Var(θ_i − θ_j)).
 *
 * This is Bayesian A-optimal design (Chaloner & Verdinelli 1995). Unlike p(1−p)·variance
 * matching it credits a comparison for what it tells about *other* essays through the posterior
 * correlations (comparing against a well-placed essay pins an essay down; comparing two
 * essays that are already correlated tells little), and a comparison with an anchor for what it
 * tells about the grade boundaries. A round is built greedily: after each pick Σ is downdated by
 * that pick's expected information, so a round of parallel pairs does not pile onto one essay;
 * pairs planned earlier and still pending are downdated first, as picks of the same round.
 * Gains only fall as Σ shrinks, so lazy greedy evaluation (Minoux 1978) is exact here.
 *
 * Rules on top of the objective: the first round of an empty design is a random perfect
 * matching; pairs that would join two components of the comparison graph get a bonus until the
 * graph is connected; a pair is never repeated, except a *reverse check*: a close pair
 * (|p̄ − ½| < 0.2) already judged once is asked again in the other order, at most
 * `reverseShare` of a round; slot A goes to the essay with the lower share of A slots; per-essay
 * caps per round and overall.
 *
 * Large batches (more than DENSE_LIMIT parameters) use the diagonal of Σ and candidate pairs
 * among score neighbours, which keeps a round O(n·window).
 */
import type { Connectivity } from './connectivity.js';
import { comparisonTerms } from './model.js';
import { type Rng, shuffle } from './rng.js';
import type { Posterior } from './uncertainty.js';

export type PairReason = 'start' | 'bridge' | 'info' | 'reverse' | 'complete';

export interface SelectedPair {
  a: number;
  b: number;
  reason: PairReason;
}

/** Judged and pending comparisons per unordered pair: `ab` counts min-index-in-slot-A. */
export interface PairHistory {
  byPair: Map<number, { ab: number; ba: number }>;
  perItem: Int32Array;
  inSlotA: Int32Array;
  total: number;
}

export const pairKey = (i: number, j: number, n: number): number => (i < j ? i * n + j : j * n + i);

export interface SelectSettings {
  count: number;
  maxPerEssay: number;
  maxPerRound: number;
  reverseShare: number;
  bridgeBonus: number;
  /**
   * Essays (with weight > 0 or in `floorItems`) below this many comparisons (judged + pending +
   * this round) get their pairs' gain multiplied by 1 + `floorBonus`, so the stopping rule's
   * minimum per essay is reached by design instead of by chance. 0 disables. Active only once
   * the design averages 2·minPerEssay comparisons per essay.
   */
  minPerEssay?: number;
  floorBonus?: number;
}

export interface SelectContext {
  n: number;
  posterior: Posterior;
  lapse: number;
  /** Objective weight per item (0 for items whose score is fixed). */
  weights: Float64Array;
  /**
   * Extra linear targets u_tᵀθ whose posterior variance the design also lowers, each with a
   * weight: an essay's position relative to its nearest grade boundary (e_i − c_k, where c_k
   * averages the anchors that define boundary k). Used on the dense route only.
   */
  targets?: { items: number[]; coefs: number[]; weight: number }[];
  history: PairHistory;
  /**
   * Pairs planned earlier and not judged yet (pipelined rounds). Their expected information is
   * taken off Σ before this round is picked, as each pick's is, so a pass does not pile onto the
   * essays those pairs already cover.
   */
  pending?: readonly (readonly [number, number])[];
  /** Items the per-essay floor applies to (default: all). */
  floorItems?: boolean[];
  connectivity: Connectivity;
  settings: SelectSettings;
  rng: Rng;
}

/** Binary max-heap of candidate indices keyed by (possibly stale) gain. */
class MaxHeap {
  private readonly idx: number[] = [];
  constructor(private readonly key: Float64Array) {}
  get size(): number {
    return this.idx.length;
  }
  push(i: number): void {
    const h = this.idx;
    h.push(i);
    let c = h.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (this.key[h[p]!]! >= this.key[h[c]!]!) break;
      [h[p], h[c]] = [h[c]!, h[p]!];
      c = p;
    }
  }
  pop(): number {
    const h = this.idx;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let m = p;
        if (l < h.length && this.key[h[l]!]! > this.key[h[m]!]!) m = l;
        if (r < h.length && this.key[h[r]!]! > this.key[h[m]!]!) m = r;
        if (m === p) break;
        [h[p], h[m]] = [h[m]!, h[p]!];
        p = m;
      }
    }
    return top;
  }
  peekKey(): number {
    return this.idx.length > 0 ? this.key[this.idx[0]!]! : Number.NEGATIVE_INFINITY;
  }
}

/** Covariance workspace: exact dense Σ over items, or its diagonal for large batches. */
interface CovModel {
  gain(i: number, j: number, info: number): number;
  varDiff(i: number, j: number): number;
  update(i: number, j: number, info: number): void;
}

function denseCov(ctx: SelectContext): CovModel {
  const { n, posterior, weights } = ctx;
  const S = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) S[i * n + j] = S[j * n + i] = posterior.cov(i, j);
  const u = new Float64Array(n);
  const varDiff = (i: number, j: number): number => S[i * n + i]! + S[j * n + j]! - 2 * S[i * n + j]!;
  // Targets: V = Σ·U (n × T, row-major), kept current through the rank-one downdates.
  const targets = ctx.targets ?? [];
  const T = targets.length;
  const V = new Float64Array(n * T);
  const tw = Float64Array.from(targets, (t) => t.weight);
  // Column c of V accumulated contiguously (the same sums in the same order), then stored by row;
  // S is still exactly symmetric here (built from cov(i, j), no downdate yet), so row j = column j.
  const col = new Float64Array(n);
  targets.forEach((t, c) => {
    col.fill(0);
    for (let r = 0; r < t.items.length; r++) {
      const j = t.items[r]!;
      const w = t.coefs[r]!;
      const rj = j * n;
      for (let k = 0; k < n; k++) col[k] = col[k]! + w * S[rj + k]!;
    }
    for (let k = 0; k < n; k++) V[k * T + c] = col[k]!;
  });
  const dv = new Float64Array(T);
  // Items with weight 0 add exactly 0 to the sum (most of them on the dense route, where the rank
  // and grade contrasts carry the design), so the sum skips them without changing a bit.
  const weighted = Int32Array.from(Array.from(weights, (w, k) => (w !== 0 ? k : -1)).filter((k) => k >= 0));
  return {
    varDiff,
    gain(i, j, info) {
      let q = 0;
      for (let r = 0; r < weighted.length; r++) {
        const k = weighted[r]!;
        const d = S[k * n + i]! - S[k * n + j]!;
        q += weights[k]! * d * d;
      }
      const ri = i * T;
      const rj = j * T;
      for (let c = 0; c < T; c++) {
        const d = V[ri + c]! - V[rj + c]!;
        q += tw[c]! * d * d;
      }
      return (info * q) / (1 + info * varDiff(i, j));
    },
    update(i, j, info) {
      const c = info / (1 + info * varDiff(i, j));
      for (let k = 0; k < n; k++) u[k] = S[k * n + i]! - S[k * n + j]!;
      for (let t = 0; t < T; t++) dv[t] = V[i * T + t]! - V[j * T + t]!;
      for (let k = 0; k < n; k++) {
        const uk = c * u[k]!;
        if (uk === 0) continue;
        const row = k * n;
        for (let l = 0; l < n; l++) S[row + l] = S[row + l]! - uk * u[l]!;
        const vr = k * T;
        for (let t = 0; t < T; t++) V[vr + t] = V[vr + t]! - uk * dv[t]!;
      }
    },
  };
}

function diagCov(ctx: SelectContext): CovModel {
  const { posterior, weights } = ctx;
  const v = Float64Array.from(posterior.sd, (s) => s * s);
  return {
    varDiff: (i, j) => v[i]! + v[j]!,
    gain(i, j, info) {
      return (info * (weights[i]! * v[i]! ** 2 + weights[j]! * v[j]! ** 2)) / (1 + info * (v[i]! + v[j]!));
    },
    update(i, j, info) {
      const c = info / (1 + info * (v[i]! + v[j]!));
      v[i] = v[i]! - c * v[i]! ** 2;
      v[j] = v[j]! - c * v[j]! ** 2;
    },
  };
}

function candidatePairs(ctx: SelectContext, dense: boolean): [number, number][] {
  const { n, posterior, rng } = ctx;
  const out: [number, number][] = [];
  const seen = new Set<number>();
  const add = (i: number, j: number): void => {
    if (i === j) return;
    const key = pairKey(i, j, n);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(i < j ? [i, j] : [j, i]);
  };
  if (dense || n <= 150) {
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) add(i, j);
    return out;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (x, y) => posterior.mean[x]! - posterior.mean[y]!,
  );
  const window = 12;
  for (let r = 0; r < n; r++) {
    for (let s = r + 1; s <= Math.min(n - 1, r + window); s++) add(order[r]!, order[s]!);
    for (let t = 0; t < 3; t++) add(order[r]!, rng.int(n));
  }
  return out;
}

export function selectPairs(ctx: SelectContext): SelectedPair[] {
  const { n, history, settings, rng, posterior, lapse } = ctx;
  const count = settings.count;
  if (n < 2 || count <= 0) return [];
  const roundCount = new Int32Array(n);
  const roundA = new Int32Array(n);
  const picked: SelectedPair[] = [];
  const orient = (i: number, j: number, reason: PairReason): SelectedPair => {
    // Slot A to the essay with the lower share of A slots so far (ties broken at random).
    const share = (x: number): number =>
      (history.inSlotA[x]! + roundA[x]! + 0.5) / (history.perItem[x]! + roundCount[x]! + 1);
    const si = share(i);
    const sj = share(j);
    const iFirst = si < sj || (si === sj && rng.next() < 0.5);
    return iFirst ? { a: i, b: j, reason } : { a: j, b: i, reason };
  };
  const take = (p: SelectedPair): void => {
    picked.push(p);
    roundCount[p.a] = roundCount[p.a]! + 1;
    roundCount[p.b] = roundCount[p.b]! + 1;
    roundA[p.a] = roundA[p.a]! + 1;
  };
  const capOk = (i: number): boolean =>
    roundCount[i]! < settings.maxPerRound && history.perItem[i]! + roundCount[i]! < settings.maxPerEssay;

  // Small sets: when every remaining distinct pair fits in this round, ask them all.
  const distinct = (n * (n - 1)) / 2;
  if (distinct - history.byPair.size <= count) {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (!history.byPair.has(pairKey(i, j, n))) take(orient(i, j, 'complete'));
      }
    }
    if (picked.length > 0) return picked;
  }

  // Start: a random perfect matching, so every essay gets a first comparison.
  if (history.total === 0) {
    const order = shuffle(
      Array.from({ length: n }, (_, i) => i),
      rng,
    );
    for (let t = 0; t + 1 < n && picked.length < count; t += 2)
      take(orient(order[t]!, order[t + 1]!, 'start'));
    return picked;
  }

  const dense = posterior.exact;
  const cov = dense ? denseCov(ctx) : diagCov(ctx);
  // Union–find over component ids, so bridges picked in this round count as joins.
  const parent = Int32Array.from(ctx.connectivity.components, (_, c) => c);
  const comp = (x: number): number => {
    while (parent[x] !== x) x = parent[x]!;
    return x;
  };
  const compOf = ctx.connectivity.componentOf;
  let components = ctx.connectivity.components.length;

  const cands: { i: number; j: number; reverse: boolean }[] = [];
  for (const [i, j] of candidatePairs(ctx, dense)) {
    const h = history.byPair.get(pairKey(i, j, n));
    if (!h) cands.push({ i, j, reverse: false });
    else if (h.ab + h.ba === 1) cands.push({ i, j, reverse: true });
  }
  const info = (i: number, j: number): number => {
    const v = cov.varDiff(i, j);
    const d = (posterior.mean[i]! - posterior.mean[j]!) / Math.sqrt(1 + (Math.PI * v) / 8);
    return comparisonTerms(0.5, d, lapse).weight;
  };
  const isClose = (i: number, j: number): boolean => {
    const v = cov.varDiff(i, j);
    const d = (posterior.mean[i]! - posterior.mean[j]!) / Math.sqrt(1 + (Math.PI * v) / 8);
    return Math.abs(1 / (1 + Math.exp(-d)) - 0.5) < 0.2;
  };
  for (const [i, j] of ctx.pending ?? []) cov.update(i, j, info(i, j));
  // The floor acts only once the design has had the chance to reach it by itself (on average
  // twice the floor per essay): forcing every essay up to it from the start costs accuracy.
  const floor = 2 * history.total >= 2 * (settings.minPerEssay ?? 0) * n ? (settings.minPerEssay ?? 0) : 0;
  const floorItem = ctx.floorItems;
  const below = (x: number): boolean =>
    floor > 0 && (floorItem ? floorItem[x]! : true) && history.perItem[x]! + roundCount[x]! < floor;
  const gainOf = (c: { i: number; j: number; reverse: boolean }): number => {
    if (c.reverse && !isClose(c.i, c.j)) return Number.NEGATIVE_INFINITY;
    let g = cov.gain(c.i, c.j, info(c.i, c.j));
    if (below(c.i) || below(c.j)) g *= 1 + (settings.floorBonus ?? 1000);
    const bridging = components > 1 && comp(compOf[c.i]!) !== comp(compOf[c.j]!);
    return bridging ? g * (1 + settings.bridgeBonus) : g;
  };
  const key = new Float64Array(cands.length);
  const heap = new MaxHeap(key);
  for (let t = 0; t < cands.length; t++) {
    key[t] = gainOf(cands[t]!);
    if (key[t]! > Number.NEGATIVE_INFINITY) heap.push(t);
  }
  const maxReverse = Math.floor(settings.reverseShare * count);
  let reverses = 0;
  while (picked.length < count && heap.size > 0) {
    const t = heap.pop();
    const c = cands[t]!;
    if (!capOk(c.i) || !capOk(c.j)) continue;
    if (c.reverse && reverses >= maxReverse) continue;
    const fresh = gainOf(c);
    if (fresh < heap.peekKey() - 1e-15) {
      key[t] = fresh;
      heap.push(t);
      continue;
    }
    if (!(fresh > 0)) break;
    if (c.reverse) {
      reverses++;
      const h = history.byPair.get(pairKey(c.i, c.j, n))!;
      const lo = Math.min(c.i, c.j);
      const hi = Math.max(c.i, c.j);
      // Ask the orientation not yet seen.
      take(h.ab > 0 ? { a: hi, b: lo, reason: 'reverse' } : { a: lo, b: hi, reason: 'reverse' });
    } else {
      const ci = comp(compOf[c.i]!);
      const cj = comp(compOf[c.j]!);
      take(orient(c.i, c.j, ci !== cj ? 'bridge' : 'info'));
      if (ci !== cj) {
        parent[Math.max(ci, cj)] = Math.min(ci, cj);
        components--;
      }
    }
    cov.update(c.i, c.j, info(c.i, c.j));
  }
  return picked;
}
