import { describe, expect, it } from 'vitest';
import { glsResidual } from '../../../bench/cj/oracle-power.js';
import { cholesky } from '../../../runtime/src/cj/linalg.js';
import { createRng } from '../../../runtime/src/cj/rng.js';

describe('bench oracle: glsResidual', () => {
  const x = [-2, -1, 0, 1, 2, 3];
  const identity = (p: number): Float64Array =>
    Float64Array.from({ length: p * p }, (_, t) => (t % (p + 1) === 0 ? 1 : 0));

  it('is zero on an exact line, whatever its intercept and slope', () => {
    expect(
      glsResidual(
        x,
        x.map((v) => 0.4 - 1.7 * v),
        identity(6),
      ),
    ).toBeCloseTo(0, 10);
  });

  it('is the ordinary residual sum of squares with an identity covariance, scaled by 1/σ² with σ²·I', () => {
    const y = [0.3, -0.2, 0.5, 0.1, -0.4, 0.9];
    // OLS by hand.
    const mx = x.reduce((s, v) => s + v, 0) / 6;
    const my = y.reduce((s, v) => s + v, 0) / 6;
    const b =
      x.reduce((s, v, i) => s + (v - mx) * (y[i]! - my), 0) / x.reduce((s, v) => s + (v - mx) ** 2, 0);
    const rss = y.reduce((s, v, i) => s + (v - my - b * (x[i]! - mx)) ** 2, 0);
    expect(glsResidual(x, y, identity(6))).toBeCloseTo(rss, 10);
    expect(
      glsResidual(
        x,
        y,
        identity(6).map((v) => 4 * v),
      ),
    ).toBeCloseTo(rss / 4, 10);
  });

  it('whitens by the covariance: under N(line, S) with correlated S its mean is the p − 2 degrees of freedom', () => {
    const p = x.length;
    // Strongly correlated residuals: S_ij = 0.8^|i−j|.
    const S = Float64Array.from({ length: p * p }, (_, t) => 0.8 ** Math.abs(Math.floor(t / p) - (t % p)));
    const L = Float64Array.from(S);
    expect(cholesky(L, p)).toBe(true);
    const rng = createRng(7, 'gls');
    const n = 4000;
    let sum = 0;
    let naive = 0;
    for (let r = 0; r < n; r++) {
      const z = Array.from({ length: p }, () => rng.normal());
      const y = x.map(
        (v, i) => 1 - 0.5 * v + z.slice(0, i + 1).reduce((t, zk, k) => t + L[i * p + k]! * zk, 0),
      );
      sum += glsResidual(x, y, S);
      naive += glsResidual(x, y, identity(p));
    }
    expect(sum / n).toBeGreaterThan(3.8);
    expect(sum / n).toBeLessThan(4.2);
    // Ignoring the correlation gives another mean: the whitening is what makes it χ²(p − 2).
    expect(Math.abs(naive / n - 4)).toBeGreaterThan(0.5);
    expect(Number.isNaN(glsResidual(x, x, new Float64Array(p * p)))).toBe(true);
  });
});
