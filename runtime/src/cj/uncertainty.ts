/**
 * Laplace approximation of the posterior at the MAP: (θ, β) ~ N(θ̂, H⁻¹), with H the Fisher
 * information of the likelihood plus the prior precision (so SDs stay finite and honest under
 * separation, unlike Fisher SEs without the prior). ε is plugged in at its MAP.
 *
 * Draws feed the grade projection (grades.ts). Two routes:
 * - dense (≤ DENSE_LIMIT parameters): Cholesky H = L·Lᵀ, exact covariance Σ = H⁻¹ and draws
 *   θ̂ + L⁻ᵀz;
 * - sparse (large batches): "perturb-then-solve" sampling (Papandreou & Yuille 2010): with
 *   H = Σ_k w_k x_k x_kᵀ + D, the solution of H·δ = Σ_k √w_k z_k x_k + D^½ z₀ has covariance
 *   exactly H⁻¹, and each draw costs one conjugate-gradient solve (O(m) per iteration).
 *   Marginal SDs and covariances are then Monte Carlo estimates from the draws.
 */
import { buildSystem, type FitProblem, type FitResult } from './fit.js';
import { backSolveUpper, cholesky, choleskyInverse, DENSE_LIMIT, pcg, transposeLower } from './linalg.js';
import type { Rng } from './rng.js';

/** Draws on the sparse route (each costs one conjugate-gradient solve). */
export const SPARSE_DRAWS = 100;

export interface Posterior {
  mean: Float64Array;
  sd: Float64Array;
  /** Draws of all item scores (fixed items constant), one Float64Array of length n per draw. */
  draws: Float64Array[];
  /** Posterior covariance of θ_i and θ_j (exact on the dense route, Monte Carlo otherwise). */
  cov(i: number, j: number): number;
  /** Posterior SD of β. */
  biasSd: number;
  exact: boolean;
}

export function laplace(problem: FitProblem, fit: FitResult, nDraws: number, rng: Rng): Posterior {
  const sys = buildSystem(problem, fit.theta, fit.bias, fit.lapse);
  const { layout } = sys;
  const p = layout.size;
  const n = problem.n;
  const mean = Float64Array.from(fit.theta);
  const sd = new Float64Array(n);
  const draws: Float64Array[] = [];
  if (p <= DENSE_LIMIT) {
    const L = sys.dense();
    if (!cholesky(L, p)) throw new Error('information matrix is not positive definite');
    const U = transposeLower(L, p);
    const sigma = choleskyInverse(L, p, U);
    for (let j = 0; j < layout.items.length; j++) sd[layout.items[j]!] = Math.sqrt(sigma[j * p + j]!);
    const z = new Float64Array(p);
    for (let s = 0; s < nDraws; s++) {
      for (let j = 0; j < p; j++) z[j] = rng.normal();
      backSolveUpper(U, p, z);
      const draw = Float64Array.from(mean);
      for (let j = 0; j < layout.items.length; j++) draw[layout.items[j]!] = mean[layout.items[j]!]! + z[j]!;
      draws.push(draw);
    }
    const { index } = layout;
    return {
      mean,
      sd,
      draws,
      exact: true,
      biasSd: layout.biasIndex >= 0 ? Math.sqrt(sigma[layout.biasIndex * p + layout.biasIndex]!) : 0,
      cov: (i, j) => {
        const a = index[i]!;
        const b = index[j]!;
        return a < 0 || b < 0 ? 0 : sigma[a * p + b]!;
      },
    };
  }
  // Sparse route: perturb-then-solve. Each draw is a CG solve, so large batches use at most
  // SPARSE_DRAWS draws (grade probabilities to ±0.05) and a loose tolerance: the solve error
  // (relative 1e-3) is small against the posterior spread it samples.
  nDraws = Math.min(nDraws, SPARSE_DRAWS);
  const { a, b } = problem.obs;
  const { index, biasIndex } = layout;
  const precision = 1 / (problem.priorSd * problem.priorSd);
  const biasPrecision = biasIndex >= 0 ? 1 / (problem.biasPriorSd * problem.biasPriorSd) : 0;
  const rhs = new Float64Array(p);
  const biasDraws = new Float64Array(nDraws);
  let x0: Float64Array | undefined;
  for (let s = 0; s < nDraws; s++) {
    for (let j = 0; j < layout.items.length; j++) rhs[j] = Math.sqrt(precision) * rng.normal();
    if (biasIndex >= 0) rhs[biasIndex] = Math.sqrt(biasPrecision) * rng.normal();
    for (let k = 0; k < a.length; k++) {
      const t = Math.sqrt(sys.weights[k]!) * rng.normal();
      const ia = index[a[k]!]!;
      const ib = index[b[k]!]!;
      if (ia >= 0) rhs[ia] = rhs[ia]! + t;
      if (ib >= 0) rhs[ib] = rhs[ib]! - t;
      if (biasIndex >= 0) rhs[biasIndex] = rhs[biasIndex]! + t;
    }
    for (let k = 0; k < sys.order.hi.length; k++) {
      const t = Math.sqrt(sys.order.weights[k]!) * rng.normal();
      const ia = sys.order.hi[k]!;
      const ib = sys.order.lo[k]!;
      if (ia >= 0) rhs[ia] = rhs[ia]! + t;
      if (ib >= 0) rhs[ib] = rhs[ib]! - t;
    }
    const { x } = pcg(sys.matvec, rhs, sys.diag, 1e-3, 300, x0);
    x0 = undefined;
    const draw = Float64Array.from(mean);
    for (let j = 0; j < layout.items.length; j++) draw[layout.items[j]!] = mean[layout.items[j]!]! + x[j]!;
    if (biasIndex >= 0) biasDraws[s] = x[biasIndex]!;
    draws.push(draw);
  }
  for (let i = 0; i < n; i++) {
    if (index[i]! < 0) continue;
    let v = 0;
    for (const d of draws) v += (d[i]! - mean[i]!) ** 2;
    sd[i] = Math.sqrt(v / Math.max(1, nDraws));
  }
  let bv = 0;
  for (const v of biasDraws) bv += v * v;
  return {
    mean,
    sd,
    draws,
    exact: false,
    biasSd: Math.sqrt(bv / Math.max(1, nDraws)),
    cov: (i, j) => {
      if (i === j) return sd[i]! ** 2;
      let c = 0;
      for (const d of draws) c += (d[i]! - mean[i]!) * (d[j]! - mean[j]!);
      return c / Math.max(1, nDraws);
    },
  };
}
