/** Rank statistics used by stopping, reliability and the benchmark. */

/** Mid-ranks (ties share the average rank), 0-based. */
export function ranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => values[x]! - values[y]!);
  const r = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    for (let k = i; k <= j; k++) r[order[k]!] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : Number.NaN;
}

/** Spearman's ρ = Pearson correlation of mid-ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(ranks(x), ranks(y));
}

/** Kendall's τ-b, O(n²) (fine for the set sizes we report on). */
export function kendall(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let c = 0;
  let d = 0;
  let tx = 0;
  let ty = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const sx = Math.sign(x[i]! - x[j]!);
      const sy = Math.sign(y[i]! - y[j]!);
      if (sx === 0 && sy === 0) continue;
      if (sx === 0) tx++;
      else if (sy === 0) ty++;
      else if (sx === sy) c++;
      else d++;
    }
  }
  const denom = Math.sqrt((c + d + tx) * (c + d + ty));
  return denom > 0 ? (c - d) / denom : Number.NaN;
}

/** Quadratic weighted kappa between two integer gradings on 0..k−1 (Cohen 1968). */
export function qwk(x: ArrayLike<number>, y: ArrayLike<number>, k: number): number {
  const n = x.length;
  if (n === 0 || k < 2) return Number.NaN;
  const obs = new Float64Array(k * k);
  const hx = new Float64Array(k);
  const hy = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    obs[x[i]! * k + y[i]!] = obs[x[i]! * k + y[i]!]! + 1;
    hx[x[i]!] = hx[x[i]!]! + 1;
    hy[y[i]!] = hy[y[i]!]! + 1;
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const w = ((i - j) * (i - j)) / ((k - 1) * (k - 1));
      num += w * obs[i * k + j]!;
      den += (w * hx[i]! * hy[j]!) / n;
    }
  }
  return den > 0 ? 1 - num / den : 1;
}
