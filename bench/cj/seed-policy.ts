/**
 * The seed system's documented policy (HuleEdu CJ service), re-implemented for the
 * benchmark: BT by ILSR with α = 0.01 (choix `ilsr_pairwise`, mean-centred); waves in which every
 * essay appears once, matched on w = 1·(1/(1+c_i) + 1/(1+c_j)) + 0.5·exp(−|Δθ|)·[|Δθ| < 2] + U(0,
 * 0.001) over not-yet-compared pairs (the seed uses Blossom max-weight matching; we use greedy
 * max-weight matching, a ≥ ½ approximation that is usually near-optimal on such dense weights);
 * orientation steered toward each essay's A/B balance; stop when max|Δθ| ≤ 0.025 after ≥ 12
 * comparisons or at the budget; grades by isotonic anchor-grade centres and midpoint boundaries.
 */
import type { Rng } from '../../runtime/src/cj/rng.js';

/** choix.ilsr_pairwise(n, data, alpha): iterated Luce spectral ranking, log-params mean-centred. */
export function ilsr(
  n: number,
  data: [number, number][],
  alpha = 0.01,
  maxIter = 100,
  tol = 1e-8,
): Float64Array {
  let params = new Float64Array(n);
  for (let it = 0; it < maxIter; it++) {
    const w = Float64Array.from(params, Math.exp);
    const Q = new Float64Array(n * n).fill(alpha);
    for (const [win, lose] of data) Q[lose * n + win] = Q[lose * n + win]! + 1 / (w[win]! + w[lose]!);
    for (let i = 0; i < n; i++) {
      Q[i * n + i] = 0;
      let s = 0;
      for (let j = 0; j < n; j++) s += Q[i * n + j]!;
      Q[i * n + i] = -s;
    }
    const pi = stationary(Q, n);
    const next = Float64Array.from(pi, (p) => Math.log(Math.max(p, 1e-300)));
    const mean = next.reduce((a, b) => a + b, 0) / n;
    for (let i = 0; i < n; i++) next[i] = next[i]! - mean;
    let diff = 0;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(next[i]! - params[i]!));
    params = next;
    if (diff < tol) break;
  }
  return params;
}

/** Stationary distribution of a CTMC generator Q (πQ = 0, Σπ = 1) by Gaussian elimination. */
function stationary(Q: Float64Array, n: number): Float64Array {
  // Solve Qᵀ π = 0 with the last equation replaced by Σ π = 1.
  const A = new Float64Array(n * (n + 1));
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * (n + 1) + j] = Q[j * n + i]!;
  for (let j = 0; j < n; j++) A[(n - 1) * (n + 1) + j] = 1;
  A[(n - 1) * (n + 1) + n] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r * (n + 1) + c]!) > Math.abs(A[p * (n + 1) + c]!)) p = r;
    if (p !== c)
      for (let k = 0; k <= n; k++)
        [A[c * (n + 1) + k], A[p * (n + 1) + k]] = [A[p * (n + 1) + k]!, A[c * (n + 1) + k]!];
    const piv = A[c * (n + 1) + c]!;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r * (n + 1) + c]! / piv;
      if (f === 0) continue;
      for (let k = c; k <= n; k++) A[r * (n + 1) + k] = A[r * (n + 1) + k]! - f * A[c * (n + 1) + k]!;
    }
  }
  return Float64Array.from({ length: n }, (_, i) => Math.max(A[i * (n + 1) + n]! / A[i * (n + 1) + i]!, 0));
}

/** One wave of pairs: greedy max-weight matching on the seed's weights. */
export function seedWave(
  n: number,
  theta: Float64Array,
  counts: Int32Array,
  inA: Int32Array,
  compared: Set<number>,
  rng: Rng,
  limit: number,
): [number, number][] {
  const edges: { i: number; j: number; w: number }[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (compared.has(i * n + j)) continue;
      const d = Math.abs(theta[i]! - theta[j]!);
      const w =
        1 / (1 + counts[i]!) + 1 / (1 + counts[j]!) + (d < 2 ? 0.5 * Math.exp(-d) : 0) + 0.001 * rng.next();
      edges.push({ i, j, w });
    }
  }
  edges.sort((x, y) => y.w - x.w);
  const used = new Uint8Array(n);
  const out: [number, number][] = [];
  for (const e of edges) {
    if (out.length >= limit) break;
    if (used[e.i] || used[e.j]) continue;
    used[e.i] = used[e.j] = 1;
    // Fair orientation: the essay with the lower A share goes first.
    const si = (inA[e.i]! + 0.5) / (counts[e.i]! + 1);
    const sj = (inA[e.j]! + 0.5) / (counts[e.j]! + 1);
    out.push(si <= sj ? [e.i, e.j] : [e.j, e.i]);
  }
  return out;
}

/** Isotonic (PAV) fit of y with weights w, returns fitted values in input order. */
function isotonic(y: number[], w: number[]): number[] {
  const blocks: { v: number; w: number; n: number }[] = [];
  for (let i = 0; i < y.length; i++) {
    blocks.push({ v: y[i]!, w: w[i]!, n: 1 });
    while (blocks.length > 1 && blocks[blocks.length - 2]!.v > blocks[blocks.length - 1]!.v) {
      const b = blocks.pop()!;
      const a = blocks.pop()!;
      blocks.push({ v: (a.v * a.w + b.v * b.w) / (a.w + b.w), w: a.w + b.w, n: a.n + b.n });
    }
  }
  return blocks.flatMap((b) => Array.from({ length: b.n }, () => b.v));
}

/** Seed grade projection: isotonic grade centres from anchors, midpoint boundaries. */
export function seedGrades(
  theta: Float64Array,
  anchors: { item: number; grade: number }[],
  k: number,
): number[] {
  const present = [...new Set(anchors.map((a) => a.grade))].sort((a, b) => a - b);
  const means = present.map((g) => {
    const xs = anchors.filter((a) => a.grade === g).map((a) => theta[a.item]!);
    return xs.reduce((s, x) => s + x, 0) / xs.length;
  });
  const counts = present.map((g) => anchors.filter((a) => a.grade === g).length);
  const centres = isotonic(means, counts);
  const bounds: { b: number; above: number }[] = [];
  for (let t = 0; t + 1 < present.length; t++)
    bounds.push({ b: (centres[t]! + centres[t + 1]!) / 2, above: present[t + 1]! });
  return Array.from(theta, (x) => {
    let g = present[0]!;
    for (const bd of bounds) if (x > bd.b) g = bd.above;
    return Math.min(g, k - 1);
  });
}
