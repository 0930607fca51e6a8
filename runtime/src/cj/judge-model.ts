/**
 * The judge model of the engine's benchmark (bench/cj) and of the fake server's "standard" judge
 * (runtime/src/fake-anthropic): one module, so the estimate's calibration (bench/estimate) and the
 * local stack's batches face the same judge.
 *
 * P(A chosen) = lapse/2 + (1 − lapse)·Φ((θ_A − θ_B)/scale + bias) by default (Gaussian noise of
 * SD `scale` on the perceived difference); logistic and Thurstone variants for the audit.
 */

export interface JudgeConfig {
  lapse: number;
  bias: number;
  scale: number;
  /**
   * How the noise scale s enters (see bench/cj/README.md): `probit` (default, reproduces the
   * issue's seed figures) Gaussian noise of SD s on the perceived difference, P = Φ(Δ/s + β);
   * `logistic` P = σ(Δ/s + β); `thurstone` each essay perceived as θ + N(0, s²),
   * P = Φ(Δ/(s√2) + β).
   */
  noise?: 'logistic' | 'thurstone' | 'probit';
  /**
   * Essay-specific misperception: the judge perceives essay i as θ_i + m·δ_i with a persistent
   * δ_i ~ N(0, 1) drawn once per world (bench/cj World.offset), so its errors about an essay are
   * correlated across comparisons (a real LLM's pet likes). 0 or absent: none.
   */
  misperception?: number;
}

/**
 * The engine benchmark's standard judge, taken as a good LLM's: 5% of answers at random, a pull
 * towards the essay shown first of 0.15 probits, noise of SD 1 on a scale where classes spread
 * about 1.5.
 */
export const STANDARD_JUDGE: JudgeConfig = { lapse: 0.05, bias: 0.15, scale: 1 };

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf, |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** P(essay a, shown first, is chosen) under the judge. */
export function judgeProbability(ta: number, tb: number, cfg: JudgeConfig): number {
  const d = ta - tb;
  let q: number;
  switch (cfg.noise ?? 'probit') {
    case 'thurstone':
      q = normalCdf(d / (cfg.scale * Math.SQRT2) + cfg.bias);
      break;
    case 'logistic':
      q = 1 / (1 + Math.exp(-(d / cfg.scale + cfg.bias)));
      break;
    default:
      q = normalCdf(d / cfg.scale + cfg.bias);
  }
  return cfg.lapse / 2 + (1 - cfg.lapse) * q;
}
