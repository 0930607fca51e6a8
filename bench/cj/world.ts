/**
 * Simulated CJ world: latent true qualities, true grades and a configurable judge.
 *
 * True scores θ ~ N(0, sd²). Grades are K equal-probability bands of that population (cut points
 * at the normal quantiles j/K), so true grades are as frequent as the bands are wide. Anchors are
 * drawn per grade (evenly over the K grades) from the same population restricted to the band.
 * Judge: P(A chosen) = lapse/2 + (1 − lapse)·Φ((θ_A − θ_B)/scale + bias) by default (Gaussian
 * noise of SD `scale` on the perceived difference); logistic and Thurstone variants for the audit.
 */
import { createRng, type Rng } from '../../runtime/src/cj/rng.js';
import { normInv } from '../../runtime/src/cj/stats.js';

export interface JudgeConfig {
  lapse: number;
  bias: number;
  scale: number;
  /**
   * How the noise scale s enters (see README.md): `probit` (default, reproduces the seed
   * figures) Gaussian noise of SD s on the perceived difference, P = Φ(Δ/s + β);
   * `logistic` P = σ(Δ/s + β); `thurstone` each essay perceived as θ + N(0, s²),
   * P = Φ(Δ/(s√2) + β).
   */
  noise?: 'logistic' | 'thurstone' | 'probit';
  /**
   * Essay-specific misperception: the judge perceives essay i as θ_i + m·δ_i with a persistent
   * δ_i ~ N(0, 1) drawn once per world (World.offset), so its errors about an essay are correlated
   * across comparisons (a real LLM's pet likes). 0 or absent: none.
   */
  misperception?: number;
}

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

export interface WorldConfig {
  students: number;
  anchors: number;
  grades: number;
  sd: number;
  /** Population share of each grade band, lowest first (default: K equal bands). */
  bands?: number[];
  /**
   * `band` (default): each anchor drawn from the population restricted to its grade band;
   * `quantile`: anchor r of m in grade g sits at the population quantile (g + (r+1)/(m+1))/K;
   * `edge`: each anchor drawn from the outer 15% (population mass) of its band at one of its
   * inner edges (chosen at random for middle bands), i.e. next to a grade boundary.
   */
  anchorPlacement?: 'band' | 'quantile' | 'edge';
}

export interface World {
  ids: string[];
  theta: Map<string, number>;
  grade: Map<string, number>;
  anchorIds: string[];
  studentIds: string[];
  gradeLabels: string[];
  cuts: number[];
  /** Persistent perception offset per essay id, N(0, 1) (scaled by JudgeConfig.misperception). */
  offset: Map<string, number>;
}

export function makeWorld(seed: number, cfg: WorldConfig): World {
  const rng = createRng(seed, 'world');
  const bands = cfg.bands ?? Array.from({ length: cfg.grades }, () => 1 / cfg.grades);
  const total = bands.reduce((s, b) => s + b, 0);
  const cum: number[] = [0];
  for (const b of bands) cum.push(cum[cum.length - 1]! + b / total);
  const cuts = Array.from({ length: cfg.grades - 1 }, (_, j) => cfg.sd * normInv(cum[j + 1]!));
  const gradeOf = (t: number): number => cuts.filter((c) => c < t).length;
  const theta = new Map<string, number>();
  const grade = new Map<string, number>();
  const studentIds: string[] = [];
  const anchorIds: string[] = [];
  for (let i = 0; i < cfg.students; i++) {
    const id = `s${String(i).padStart(4, '0')}`;
    const t = cfg.sd * rng.normal();
    theta.set(id, t);
    grade.set(id, gradeOf(t));
    studentIds.push(id);
  }
  for (let i = 0; i < cfg.anchors; i++) {
    const g = i % cfg.grades;
    let t = cfg.sd * rng.normal();
    if (cfg.anchorPlacement === 'quantile') {
      const per = Math.ceil(cfg.anchors / cfg.grades);
      const r = Math.floor(i / cfg.grades);
      t = cfg.sd * normInv(cum[g]! + ((r + 1) / (per + 1)) * (cum[g + 1]! - cum[g]!));
    } else if (cfg.anchorPlacement === 'edge') {
      const lo = cum[g]!;
      const hi = cum[g + 1]!;
      const width = 0.15 * (hi - lo);
      const upper = g === 0 ? true : g === cfg.grades - 1 ? false : rng.next() < 0.5;
      const q = upper ? hi - width * rng.next() : lo + width * rng.next();
      t = cfg.sd * normInv(Math.min(1 - 1e-9, Math.max(1e-9, q)));
    } else while (gradeOf(t) !== g) t = cfg.sd * rng.normal();
    const id = `a${String(i).padStart(3, '0')}`;
    theta.set(id, t);
    grade.set(id, g);
    anchorIds.push(id);
  }
  const gradeLabels = Array.from({ length: cfg.grades }, (_, g) => `G${g + 1}`);
  const ids = [...studentIds, ...anchorIds];
  const perception = createRng(seed, 'perception');
  const offset = new Map(ids.map((id) => [id, perception.normal()]));
  return { ids, theta, grade, anchorIds, studentIds, gradeLabels, cuts, offset };
}

export function judge(world: World, a: string, b: string, cfg: JudgeConfig, rng: Rng): 'a' | 'b' {
  const m = cfg.misperception ?? 0;
  const p = judgeProbability(
    world.theta.get(a)! + m * world.offset.get(a)!,
    world.theta.get(b)! + m * world.offset.get(b)!,
    cfg,
  );
  return rng.next() < p ? 'a' : 'b';
}
