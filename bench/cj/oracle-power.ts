/**
 * What an oracle can detect of a judge's persistent misperception from the anchors (issue 16's
 * "signal fires in ≥ 80% of misperception runs and ≤ 10% of standard-judge runs").
 *
 * A judge that misperceives each essay by a persistent offset fits Bradley–Terry exactly; only the
 * anchors, whose grades come from outside the judge, can show it. The engine's test knows each
 * anchor's grade band. This oracle knows far more: every anchor's true score θ_a. It regresses the
 * anchors' posterior means m on θ by generalised least squares with the anchors' joint posterior
 * covariance Σ (from plan()'s draws; the scale and location of the judge's logits are unknown to
 * any test, so α and β are fitted) and takes the whitened residual sum of squares,
 *
 *   T = (m − α̂ − β̂·θ)ᵀ Σ⁻¹ (m − α̂ − β̂·θ)        (a − 2 degrees of freedom),
 *
 * with its threshold taken not from a distribution but from the standard judge's own runs (the
 * 90th percentile of T there, same band shape and checkpoint), so its false-positive rate is 10% by
 * construction. It is not a proof that nothing does better (only a likelihood ratio with the true
 * model would be), but a test that knows each anchor's true score instead of its band (0.4–0.8
 * population SD wide, the outer ones open) is a generous ceiling for any test of the same
 * anchors' comparisons: where it stays far below 80%, the target waits on the design (more
 * comparisons per anchor, more anchors, a second judge), not on the statistic.
 *
 *   node --import tsx bench/cj/oracle-power.ts [--seeds 2001-2030] --out FILE [--jobs 2]
 *   node --import tsx bench/cj/oracle-power.ts --summary FILE
 *
 * CJ_SETTINGS as in grid.ts (for example a larger anchorWeight, to see what more comparisons per
 * anchor buy). It makes no choice (nothing is tuned on it), so it may read the reporting seeds.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { cholesky, forwardSolve } from '../../runtime/src/cj/linalg.js';
import { gradingInputs } from '../../runtime/src/cj/plan.js';
import { arg, readJsonl } from './cli.js';
import { f, mean } from './figures.js';
import { CELLS, JUDGES, runOursGrid, runParts, seedRange, worldOf } from './grid.js';

const CELL_PAIRS = [
  ['standard/equal', 'misperception/equal'],
  ['standard/unequal', 'misperception/unequal'],
] as const;

interface Row {
  cell: string;
  seed: number;
  /** Checkpoint index (0, 1, 2 = 120 / 360 / 600) or 'stop'. */
  at: number | 'stop';
  m: number;
  /** The GLS statistic (joint covariance; anchors − 2 degrees of freedom). */
  t: number;
  /** The same with the covariance's diagonal only (posterior SDs, correlations ignored). */
  tDiag: number;
  perAnchor: number;
  anchorSd: number;
  /** The engine's own test at the same point (quality.judge.misperception). */
  engine: string | null;
}

/**
 * Generalised least squares of y on [1, x] with covariance S (p×p, row-major): the residual sum of
 * squares after whitening by S's Cholesky factor, rᵀS⁻¹r at the GLS fit (NaN if S is singular).
 */
export function glsResidual(x: ArrayLike<number>, y: ArrayLike<number>, S: Float64Array): number {
  const p = x.length;
  const L = Float64Array.from(S);
  if (!cholesky(L, p)) return Number.NaN;
  const wy = Float64Array.from(y);
  const w1 = new Float64Array(p).fill(1);
  const wx = Float64Array.from(x);
  for (const v of [wy, w1, wx]) forwardSolve(L, p, v);
  // Ordinary least squares of wy on the two whitened columns (normal equations, 2×2).
  const dot = (a: Float64Array, b: Float64Array): number => a.reduce((t, v, i) => t + v * b[i]!, 0);
  const a11 = dot(w1, w1);
  const a12 = dot(w1, wx);
  const a22 = dot(wx, wx);
  const b1 = dot(w1, wy);
  const b2 = dot(wx, wy);
  const det = a11 * a22 - a12 * a12;
  const c1 = (a22 * b1 - a12 * b2) / det;
  const c2 = (a11 * b2 - a12 * b1) / det;
  return wy.reduce((t, v, i) => t + (v - c1 * w1[i]! - c2 * wx[i]!) ** 2, 0);
}

function measure(cellName: string, seed: number): Row[] {
  const cell = CELLS.find((c) => c.name === cellName)!;
  const world = worldOf(cell, seed);
  const rows: Row[] = [];
  runOursGrid(world, JUDGES[cell.judge]!, seed, cell, (res, m, at, input) => {
    // The anchors' posterior means and their joint covariance, from plan()'s own draws.
    const g = gradingInputs(input);
    const items = g.anchors.map((a) => a.item);
    const p = items.length;
    const theta = items.map((i) => world.theta.get(g.ids[i]!)!);
    const means = items.map((i) => g.mean[i]!);
    const S = new Float64Array(p * p);
    for (const d of g.draws)
      for (let i = 0; i < p; i++)
        for (let j = 0; j < p; j++)
          S[i * p + j] =
            S[i * p + j]! + ((d[items[i]!]! - means[i]!) * (d[items[j]!]! - means[j]!)) / g.draws.length;
    const diag = new Float64Array(p * p);
    for (let i = 0; i < p; i++) diag[i * (p + 1)] = S[i * (p + 1)]!;
    rows.push({
      cell: cellName,
      seed,
      at,
      m,
      t: glsResidual(theta, means, S),
      tDiag: glsResidual(theta, means, diag),
      perAnchor: res.quality.comparisonsPerAnchor ?? Number.NaN,
      anchorSd: mean(means.map((_, i) => Math.sqrt(S[i * (p + 1)]!))),
      engine: res.quality.judge.misperception ?? null,
    });
  });
  return rows;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function summary(file: string): void {
  const rows = readJsonl<Row>(file);
  const seeds = new Set(rows.map((r) => r.seed)).size;
  console.log(
    `Seeds: ${seeds}. Each oracle's threshold is the 90th percentile of its statistic on the standard judge (same bands, same point).\n`,
  );
  console.log(
    "| bands | at | comparisons | per anchor | anchors' posterior SD | oracle detects on misperception: joint covariance · SDs only | oracle false positives (standard) | engine's test: widened on misperception / standard |",
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [nullCell, altCell] of CELL_PAIRS) {
    for (const at of [0, 1, 2, 'stop'] as const) {
      const n = rows.filter((r) => r.cell === nullCell && r.at === at);
      const a = rows.filter((r) => r.cell === altCell && r.at === at);
      if (n.length === 0 || a.length === 0) continue;
      const rate = (stat: (r: Row) => number): [number, number] => {
        const thr = quantile(n.map(stat), 0.9);
        return [
          a.filter((r) => stat(r) > thr).length / a.length,
          n.filter((r) => stat(r) > thr).length / n.length,
        ];
      };
      const [pJoint, fJoint] = rate((r) => r.t);
      const [pDiag, fDiag] = rate((r) => r.tDiag);
      const widened = (rs: Row[]): string =>
        f(rs.filter((r) => r.engine === 'widened').length / rs.length, 2);
      console.log(
        `| ${nullCell.split('/')[1]} | ${at === 'stop' ? 'stop' : at} | ${f(mean(a.map((r) => r.m)), 0)} | ${f(mean(a.map((r) => r.perAnchor)), 1)} | ${f(mean(a.map((r) => r.anchorSd)), 2)} | ${f(pJoint, 2)} · ${f(pDiag, 2)} (${a.length} runs) | ${f(fJoint, 2)} · ${f(fDiag, 2)} | ${widened(a)} / ${widened(n)} |`,
      );
    }
  }
}

async function main(): Promise<void> {
  const sum = arg('--summary');
  if (sum) return summary(sum);
  const seeds = seedRange(arg('--seeds') ?? '2001-2030');
  const out = arg('--out') ?? '/tmp/cj-oracle.jsonl';
  const part = arg('--part');
  const tasks = CELL_PAIRS.flat().flatMap((c) => seeds.map((s) => [c, s] as const));
  if (part) {
    const [i, n] = part.split('/').map(Number) as [number, number];
    for (const [c, s] of tasks.filter((_, t) => t % n === i)) {
      for (const r of measure(c, s)) appendFileSync(out, `${JSON.stringify(r)}\n`);
    }
    return;
  }
  const jobs = Number(arg('--jobs') ?? 1);
  writeFileSync(out, '');
  await runParts(process.argv[1]!, jobs, (k) => [
    '--seeds',
    arg('--seeds') ?? '2001-2030',
    '--out',
    out,
    '--part',
    `${k}/${jobs}`,
  ]);
  summary(out);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
