/**
 * Small dense and iterative linear algebra on Float64Array, enough for the Laplace posterior.
 * Dense matrices are row-major p×p. Dense Cholesky is O(p³): used only below
 * `DENSE_LIMIT` parameters; above it the engine uses preconditioned conjugate gradients on the
 * sparse information matrix (one nonzero pattern entry per comparison), which is O(m) per step.
 */
export const DENSE_LIMIT = 400;

/** In-place Cholesky A = L·Lᵀ (lower triangle of A receives L). Returns false if not positive definite. */
export function cholesky(A: Float64Array, p: number): boolean {
  for (let j = 0; j < p; j++) {
    const rj = j * p;
    let s = A[rj + j]!;
    for (let k = 0; k < j; k++) s -= A[rj + k]! * A[rj + k]!;
    if (!(s > 0)) return false;
    const ljj = Math.sqrt(s);
    A[rj + j] = ljj;
    for (let i = j + 1; i < p; i++) {
      const ri = i * p;
      let t = A[ri + j]!;
      for (let k = 0; k < j; k++) t -= A[ri + k]! * A[rj + k]!;
      A[ri + j] = t / ljj;
    }
  }
  return true;
}

/**
 * Solves L·x = b in place (forward substitution). With `from`, b's first `from` entries are zero
 * (a unit vector's leading zeros): they stay zero and their terms are skipped, which changes no
 * bit of the result (subtracting L·0 leaves a sum unchanged) and saves a third of an inverse.
 */
export function forwardSolve(L: Float64Array, p: number, b: Float64Array, from = 0): void {
  for (let i = from; i < p; i++) {
    let s = b[i]!;
    const ri = i * p;
    for (let k = from; k < i; k++) s -= L[ri + k]! * b[k]!;
    b[i] = s / L[ri + i]!;
  }
}

/** Solves Lᵀ·x = b in place (back substitution). */
export function backSolve(L: Float64Array, p: number, b: Float64Array): void {
  for (let i = p - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < p; k++) s -= L[k * p + i]! * b[k]!;
    b[i] = s / L[i * p + i]!;
  }
}

/** U = Lᵀ (upper triangle; the rest zero), for back substitutions that read rows, not columns. */
export function transposeLower(L: Float64Array, p: number): Float64Array {
  const U = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let k = 0; k <= i; k++) U[k * p + i] = L[i * p + k]!;
  return U;
}

/**
 * backSolve with U = transposeLower(L): the same operations in the same order (so the same
 * bits), reading U row by row instead of L column by column (a stride of p), which is what makes
 * many back substitutions against one factor fast.
 */
export function backSolveUpper(U: Float64Array, p: number, b: Float64Array): void {
  for (let i = p - 1; i >= 0; i--) {
    let s = b[i]!;
    const ri = i * p;
    for (let k = i + 1; k < p; k++) s -= U[ri + k]! * b[k]!;
    b[i] = s / U[ri + i]!;
  }
}

/** Inverse of A = L·Lᵀ from its Cholesky factor: Σ = L⁻ᵀ L⁻¹, O(p³); `U` = transposeLower(L). */
export function choleskyInverse(L: Float64Array, p: number, U = transposeLower(L, p)): Float64Array {
  const inv = new Float64Array(p * p);
  const col = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    col.fill(0);
    col[j] = 1;
    forwardSolve(L, p, col, j);
    backSolveUpper(U, p, col);
    for (let i = 0; i < p; i++) inv[i * p + j] = col[i]!;
  }
  return inv;
}

/**
 * Preconditioned conjugate gradients for H·x = b with H symmetric positive definite, given as a
 * mat-vec product; `diag` is the Jacobi preconditioner. Stops at ‖r‖ ≤ tol·‖b‖.
 */
export function pcg(
  matvec: (x: Float64Array, out: Float64Array) => void,
  b: Float64Array,
  diag: Float64Array,
  tol = 1e-8,
  maxIter = 500,
  x0?: Float64Array,
): { x: Float64Array; iterations: number } {
  const p = b.length;
  const x = x0 ? Float64Array.from(x0) : new Float64Array(p);
  const r = new Float64Array(p);
  const z = new Float64Array(p);
  const d = new Float64Array(p);
  const q = new Float64Array(p);
  matvec(x, q);
  let bnorm = 0;
  for (let i = 0; i < p; i++) {
    r[i] = b[i]! - q[i]!;
    bnorm += b[i]! * b[i]!;
  }
  bnorm = Math.sqrt(bnorm);
  if (bnorm === 0) return { x: new Float64Array(p), iterations: 0 };
  let rz = 0;
  for (let i = 0; i < p; i++) {
    z[i] = r[i]! / diag[i]!;
    d[i] = z[i]!;
    rz += r[i]! * z[i]!;
  }
  let it = 0;
  for (; it < maxIter; it++) {
    let rr = 0;
    for (let i = 0; i < p; i++) rr += r[i]! * r[i]!;
    if (Math.sqrt(rr) <= tol * bnorm) break;
    matvec(d, q);
    let dq = 0;
    for (let i = 0; i < p; i++) dq += d[i]! * q[i]!;
    const alpha = rz / dq;
    let rzNew = 0;
    for (let i = 0; i < p; i++) {
      x[i] = x[i]! + alpha * d[i]!;
      r[i] = r[i]! - alpha * q[i]!;
      z[i] = r[i]! / diag[i]!;
      rzNew += r[i]! * z[i]!;
    }
    const beta = rzNew / rz;
    rz = rzNew;
    for (let i = 0; i < p; i++) d[i] = z[i]! + beta * d[i]!;
  }
  return { x, iterations: it };
}
