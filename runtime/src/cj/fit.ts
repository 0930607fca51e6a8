/**
 * MAP fit of the comparison model (see model.ts) by Fisher scoring.
 *
 * Log posterior:  Σ_k ℓ_k(θ_a − θ_b + β; ε) − Σ_i θ_i²/(2σ²) − β²/(2σ_β²) + log Beta(ε; α_ε, β_ε)
 *
 * The proper N(0, σ²) prior is what keeps the scale finite under complete separation (a perfectly
 * consistent judge), where the plain MLE diverges and ILSR's α silently sets the scale (Caron &
 * Doucet 2012 for the Bayesian view of BT regularisation). θ and β are updated jointly by
 * Fisher scoring, H·δ = ∇, with H = Σ_k w_k x_k x_kᵀ + prior precision (x_k = e_a − e_b + e_β);
 * ε is updated between scoring passes by a one-dimensional golden-section search. Items with a
 * fixed score (calibrated anchors, NMM `fix.theta`) are constants, not parameters.
 */
import { backSolve, cholesky, DENSE_LIMIT, forwardSolve, pcg } from './linalg.js';
import { comparisonTerms, logLikelihood, type Observations } from './model.js';
import { normCdf } from './stats.js';

export interface FitProblem {
  n: number;
  obs: Observations;
  /** Fixed score per item, NaN when the item is estimated. */
  fixed: Float64Array;
  /** σ, the prior SD of free scores (logits). */
  priorSd: number;
  /** σ_β, the prior SD of the first-position bias; 0 fixes β = 0. */
  biasPriorSd: number;
  /** Beta(α, β) prior on the lapse rate; `fixed` pins it. */
  lapsePrior: { alpha: number; beta: number; fixed?: number | undefined };
  /**
   * Known order of anchors: for each k, θ_hi[k] > θ_lo[k] (a higher grade), entered as the soft
   * constraint log Φ((θ_hi − θ_lo)/sd). Absent or sd = 0: no constraint.
   */
  order?: { hi: Int32Array; lo: Int32Array; sd: number } | undefined;
}

/**
 * Terms of the order constraint log Φ(x/sd) at x = θ_hi − θ_lo: value, gradient in x and
 * curvature −∂²/∂x² (≥ 0: the term is log-concave, so the Newton system stays definite).
 */
export function orderTerms(x: number, sd: number): { value: number; score: number; weight: number } {
  const z = x / sd;
  let value: number;
  let lambda: number;
  if (z > -6) {
    const cdf = Math.max(normCdf(z), 1e-300);
    value = Math.log(cdf);
    lambda = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI) / cdf;
  } else {
    const a = -z;
    value = -0.5 * z * z - Math.log(a * Math.sqrt(2 * Math.PI)) - 1 / (a * a);
    lambda = a + 1 / a - 2 / (a * a * a);
  }
  return { value, score: lambda / sd, weight: (lambda * (lambda + z)) / (sd * sd) };
}

export interface FitResult {
  theta: Float64Array;
  bias: number;
  lapse: number;
  iterations: number;
  converged: boolean;
  logPosterior: number;
}

/** Parameter layout: free items first (in item order), then β when it is estimated. */
export interface Layout {
  /** Parameter index of each item, −1 when fixed. */
  index: Int32Array;
  /** Item of each free parameter. */
  items: Int32Array;
  /** Parameter index of β, −1 when β is fixed at 0. */
  biasIndex: number;
  size: number;
}

export function layoutOf(problem: FitProblem): Layout {
  const index = new Int32Array(problem.n).fill(-1);
  const items: number[] = [];
  for (let i = 0; i < problem.n; i++) {
    if (Number.isNaN(problem.fixed[i]!)) {
      index[i] = items.length;
      items.push(i);
    }
  }
  const biasIndex = problem.biasPriorSd > 0 ? items.length : -1;
  return { index, items: Int32Array.from(items), biasIndex, size: items.length + (biasIndex >= 0 ? 1 : 0) };
}

/** The Newton system at a point: gradient, Fisher information (as mat-vec and diagonal). */
export interface System {
  layout: Layout;
  grad: Float64Array;
  diag: Float64Array;
  /** Per-comparison Fisher weights w_k. */
  weights: Float64Array;
  matvec(v: Float64Array, out: Float64Array): void;
  /** Anchor order constraints as parameter indices (−1 = fixed) with their curvature weights. */
  order: { hi: Int32Array; lo: Int32Array; weights: Float64Array };
  /** Dense H (row-major); only sensible below DENSE_LIMIT. */
  dense(): Float64Array;
}

export function buildSystem(problem: FitProblem, theta: Float64Array, bias: number, lapse: number): System {
  const layout = layoutOf(problem);
  const { index, biasIndex, size } = layout;
  const { a, b, y } = problem.obs;
  const m = a.length;
  const grad = new Float64Array(size);
  const diag = new Float64Array(size);
  const weights = new Float64Array(m);
  const pa = new Int32Array(m);
  const pb = new Int32Array(m);
  const precision = 1 / (problem.priorSd * problem.priorSd);
  for (let k = 0; k < m; k++) {
    const d = theta[a[k]!]! - theta[b[k]!]! + bias;
    const { score, weight } = comparisonTerms(y[k]!, d, lapse);
    weights[k] = weight;
    const ia = index[a[k]!]!;
    const ib = index[b[k]!]!;
    pa[k] = ia;
    pb[k] = ib;
    if (ia >= 0) {
      grad[ia] = grad[ia]! + score;
      diag[ia] = diag[ia]! + weight;
    }
    if (ib >= 0) {
      grad[ib] = grad[ib]! - score;
      diag[ib] = diag[ib]! + weight;
    }
    if (biasIndex >= 0) {
      grad[biasIndex] = grad[biasIndex]! + score;
      diag[biasIndex] = diag[biasIndex]! + weight;
    }
  }
  // Anchor order constraints: like comparisons without the bias term.
  const order = problem.order && problem.order.sd > 0 ? problem.order : undefined;
  const nOrder = order ? order.hi.length : 0;
  const oh = new Int32Array(nOrder);
  const ol = new Int32Array(nOrder);
  const orderWeights = new Float64Array(nOrder);
  for (let k = 0; k < nOrder; k++) {
    const hi = order!.hi[k]!;
    const lo = order!.lo[k]!;
    const { score, weight } = orderTerms(theta[hi]! - theta[lo]!, order!.sd);
    orderWeights[k] = weight;
    oh[k] = index[hi]!;
    ol[k] = index[lo]!;
    if (oh[k]! >= 0) {
      grad[oh[k]!] = grad[oh[k]!]! + score;
      diag[oh[k]!] = diag[oh[k]!]! + weight;
    }
    if (ol[k]! >= 0) {
      grad[ol[k]!] = grad[ol[k]!]! - score;
      diag[ol[k]!] = diag[ol[k]!]! + weight;
    }
  }
  const biasPrecision = biasIndex >= 0 ? 1 / (problem.biasPriorSd * problem.biasPriorSd) : 0;
  for (let j = 0; j < layout.items.length; j++) {
    const i = layout.items[j]!;
    grad[j] = grad[j]! - theta[i]! * precision;
    diag[j] = diag[j]! + precision;
  }
  if (biasIndex >= 0) {
    grad[biasIndex] = grad[biasIndex]! - bias * biasPrecision;
    diag[biasIndex] = diag[biasIndex]! + biasPrecision;
  }
  const matvec = (v: Float64Array, out: Float64Array): void => {
    for (let j = 0; j < layout.items.length; j++) out[j] = v[j]! * precision;
    if (biasIndex >= 0) out[biasIndex] = v[biasIndex]! * biasPrecision;
    for (let k = 0; k < m; k++) {
      const ia = pa[k]!;
      const ib = pb[k]!;
      let xv = 0;
      if (ia >= 0) xv += v[ia]!;
      if (ib >= 0) xv -= v[ib]!;
      if (biasIndex >= 0) xv += v[biasIndex]!;
      const t = weights[k]! * xv;
      if (ia >= 0) out[ia] = out[ia]! + t;
      if (ib >= 0) out[ib] = out[ib]! - t;
      if (biasIndex >= 0) out[biasIndex] = out[biasIndex]! + t;
    }
    for (let k = 0; k < nOrder; k++) {
      const ia = oh[k]!;
      const ib = ol[k]!;
      let xv = 0;
      if (ia >= 0) xv += v[ia]!;
      if (ib >= 0) xv -= v[ib]!;
      const t = orderWeights[k]! * xv;
      if (ia >= 0) out[ia] = out[ia]! + t;
      if (ib >= 0) out[ib] = out[ib]! - t;
    }
  };
  const dense = (): Float64Array => {
    const H = new Float64Array(size * size);
    for (let j = 0; j < layout.items.length; j++) H[j * size + j] = precision;
    if (biasIndex >= 0) H[biasIndex * size + biasIndex] = biasPrecision;
    const idx = [0, 0, 0];
    const sgn = [1, -1, 1];
    for (let k = 0; k < m; k++) {
      idx[0] = pa[k]!;
      idx[1] = pb[k]!;
      idx[2] = biasIndex;
      const w = weights[k]!;
      for (let u = 0; u < 3; u++) {
        const iu = idx[u]!;
        if (iu < 0) continue;
        for (let v = 0; v < 3; v++) {
          const iv = idx[v]!;
          if (iv < 0) continue;
          H[iu * size + iv] = H[iu * size + iv]! + w * sgn[u]! * sgn[v]!;
        }
      }
    }
    for (let k = 0; k < nOrder; k++) {
      const ia = oh[k]!;
      const ib = ol[k]!;
      const w = orderWeights[k]!;
      if (ia >= 0) H[ia * size + ia] = H[ia * size + ia]! + w;
      if (ib >= 0) H[ib * size + ib] = H[ib * size + ib]! + w;
      if (ia >= 0 && ib >= 0) {
        H[ia * size + ib] = H[ia * size + ib]! - w;
        H[ib * size + ia] = H[ib * size + ia]! - w;
      }
    }
    return H;
  };
  return { layout, grad, diag, weights, matvec, dense, order: { hi: oh, lo: ol, weights: orderWeights } };
}

/** Solves H·x = rhs for the system, densely or by PCG depending on size. */
export function solveSystem(sys: System, rhs: Float64Array): Float64Array {
  const p = sys.layout.size;
  if (p <= DENSE_LIMIT) {
    const H = sys.dense();
    if (cholesky(H, p)) {
      const x = Float64Array.from(rhs);
      forwardSolve(H, p, x);
      backSolve(H, p, x);
      return x;
    }
  }
  return pcg(sys.matvec, rhs, sys.diag, 1e-7, 1000).x;
}

export function logPosterior(problem: FitProblem, theta: Float64Array, bias: number, lapse: number): number {
  const { a, b, y } = problem.obs;
  let lp = 0;
  for (let k = 0; k < a.length; k++) lp += logLikelihood(y[k]!, theta[a[k]!]! - theta[b[k]!]! + bias, lapse);
  const precision = 1 / (problem.priorSd * problem.priorSd);
  for (let i = 0; i < problem.n; i++)
    if (Number.isNaN(problem.fixed[i]!)) lp -= 0.5 * theta[i]! ** 2 * precision;
  if (problem.biasPriorSd > 0) lp -= (0.5 * bias * bias) / (problem.biasPriorSd * problem.biasPriorSd);
  const order = problem.order;
  if (order && order.sd > 0)
    for (let k = 0; k < order.hi.length; k++)
      lp += orderTerms(theta[order.hi[k]!]! - theta[order.lo[k]!]!, order.sd).value;
  if (problem.lapsePrior.fixed === undefined) {
    const { alpha, beta } = problem.lapsePrior;
    lp += (alpha - 1) * Math.log(lapse) + (beta - 1) * Math.log(1 - lapse);
  }
  return lp;
}

/** Fisher scoring for (θ, β) at fixed ε, with step halving when the posterior does not improve. */
function scoreThetaBias(
  problem: FitProblem,
  theta: Float64Array,
  bias: number,
  lapse: number,
  maxIter: number,
): { bias: number; iterations: number; converged: boolean } {
  let lp = logPosterior(problem, theta, bias, lapse);
  for (let it = 0; it < maxIter; it++) {
    const sys = buildSystem(problem, theta, bias, lapse);
    const step = solveSystem(sys, sys.grad);
    const { items, biasIndex } = sys.layout;
    let maxStep = 0;
    for (let j = 0; j < step.length; j++) maxStep = Math.max(maxStep, Math.abs(step[j]!));
    // Damping: never move a score by more than 2 logits in one step (early steps on separated data).
    let scale = maxStep > 2 ? 2 / maxStep : 1;
    const trial = Float64Array.from(theta);
    let accepted = false;
    for (let h = 0; h < 20; h++) {
      for (let j = 0; j < items.length; j++) trial[items[j]!] = theta[items[j]!]! + scale * step[j]!;
      const trialBias = biasIndex >= 0 ? bias + scale * step[biasIndex]! : 0;
      const trialLp = logPosterior(problem, trial, trialBias, lapse);
      if (trialLp >= lp - 1e-10) {
        theta.set(trial);
        bias = trialBias;
        lp = trialLp;
        accepted = true;
        break;
      }
      scale /= 2;
    }
    if (!accepted || maxStep * scale < 1e-7) return { bias, iterations: it + 1, converged: true };
  }
  return { bias, iterations: maxIter, converged: false };
}

/** Golden-section search for ε on the logit scale, θ and β held fixed. */
function updateLapse(problem: FitProblem, theta: Float64Array, bias: number): number {
  const f = (t: number): number => logPosterior(problem, theta, bias, 1 / (1 + Math.exp(-t)));
  let lo = Math.log(1e-4 / (1 - 1e-4));
  let hi = Math.log(0.45 / 0.55);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = hi - g * (hi - lo);
  let d = lo + g * (hi - lo);
  let fc = f(c);
  let fd = f(d);
  for (let i = 0; i < 28; i++) {
    if (fc > fd) {
      hi = d;
      d = c;
      fd = fc;
      c = hi - g * (hi - lo);
      fc = f(c);
    } else {
      lo = c;
      c = d;
      fc = fd;
      d = lo + g * (hi - lo);
      fd = f(d);
    }
  }
  return 1 / (1 + Math.exp(-(lo + hi) / 2));
}

/**
 * MAP estimate of (θ, β, ε). Alternates Fisher scoring on (θ, β) with the ε update until ε moves
 * by less than 1e-4 (at most 6 passes). `start` warm-starts θ (for example from the last round).
 */
export function fitMap(problem: FitProblem, start?: { theta?: Float64Array; bias?: number }): FitResult {
  const theta = new Float64Array(problem.n);
  for (let i = 0; i < problem.n; i++) {
    const f = problem.fixed[i]!;
    theta[i] = Number.isNaN(f) ? (start?.theta?.[i] ?? 0) : f;
  }
  let bias = problem.biasPriorSd > 0 ? (start?.bias ?? 0) : 0;
  const { alpha, beta, fixed } = problem.lapsePrior;
  let lapse = fixed ?? Math.min(0.45, Math.max(1e-3, (alpha - 1) / (alpha + beta - 2)));
  let iterations = 0;
  let converged = false;
  for (let pass = 0; pass < 6; pass++) {
    const r = scoreThetaBias(problem, theta, bias, lapse, 60);
    bias = r.bias;
    iterations += r.iterations;
    converged = r.converged;
    if (fixed !== undefined || problem.obs.a.length === 0) break;
    const next = updateLapse(problem, theta, bias);
    const moved = Math.abs(next - lapse);
    lapse = next;
    if (moved < 1e-4) break;
  }
  return {
    theta,
    bias,
    lapse,
    iterations,
    converged,
    logPosterior: logPosterior(problem, theta, bias, lapse),
  };
}

/** Posterior variances of the free scores at a fit: exact (dense) or 1/diag(H) (large batches). */
export function scoreVariances(problem: FitProblem, fit: FitResult): Float64Array {
  const sys = buildSystem(problem, fit.theta, fit.bias, fit.lapse);
  const { layout } = sys;
  const p = layout.size;
  const out = new Float64Array(layout.items.length);
  if (p <= DENSE_LIMIT) {
    const L = sys.dense();
    if (cholesky(L, p)) {
      const col = new Float64Array(p);
      for (let j = 0; j < layout.items.length; j++) {
        // Var_j = ‖L⁻¹ e_j‖².
        col.fill(0);
        col[j] = 1;
        forwardSolve(L, p, col, j);
        let v = 0;
        for (let i = j; i < p; i++) v += col[i]! * col[i]!;
        out[j] = v;
      }
      return out;
    }
  }
  for (let j = 0; j < out.length; j++) out[j] = 1 / sys.diag[j]!;
  return out;
}

export interface EmpiricalBayesFit extends FitResult {
  /** The estimated prior SD of the scores (σ). */
  priorSd: number;
}

/**
 * Empirical Bayes for the prior SD σ (type-II MAP by EM on the Laplace posterior): alternately fit
 * (θ, β, ε) at σ and update σ² = (Σ_i (θ̂_i² + Var θ_i) + ν₀σ₀²) / (n_free + ν₀), where the
 * pseudo-count ν₀ ties σ to the configured `priorSd` σ₀ when there are few data. A judge that is
 * sharper or flatter than the configured scale (a probit-like judge puts the same essays ~1.7×
 * further apart in logits) then gets a prior of its own scale instead of being shrunk toward σ₀,
 * which keeps the pair-information estimates and the grade probabilities honest.
 */
export function fitEmpiricalBayes(
  problem: FitProblem,
  start: { theta?: Float64Array; bias?: number } | undefined,
  opts: {
    pseudoCount: number;
    /** Centre of the weak hyperprior (default: problem.priorSd, which is also the start). */
    anchorSd?: number;
    maxIter?: number;
    tol?: number;
    min?: number;
    max?: number;
  },
): EmpiricalBayesFit {
  const sigma0 = opts.anchorSd ?? problem.priorSd;
  let sigma = problem.priorSd;
  let fit = fitMap(problem, start);
  const free = layoutOf(problem).items;
  if (free.length < 3 || problem.obs.a.length === 0) return { ...fit, priorSd: sigma };
  const maxIter = opts.maxIter ?? 8;
  for (let it = 0; it < maxIter; it++) {
    const cur: FitProblem = { ...problem, priorSd: sigma };
    const v = scoreVariances(cur, fit);
    let ss = opts.pseudoCount * sigma0 * sigma0;
    for (let j = 0; j < free.length; j++) ss += fit.theta[free[j]!]! ** 2 + v[j]!;
    const next = Math.min(
      opts.max ?? 10 * sigma0,
      Math.max(opts.min ?? sigma0 / 4, Math.sqrt(ss / (free.length + opts.pseudoCount))),
    );
    const moved = Math.abs(next - sigma) / sigma;
    sigma = next;
    fit = fitMap({ ...problem, priorSd: sigma }, { theta: fit.theta, bias: fit.bias });
    if (moved < (opts.tol ?? 0.01)) break;
  }
  return { ...fit, priorSd: sigma };
}
