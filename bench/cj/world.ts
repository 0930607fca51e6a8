/**
 * Simulated CJ world: latent true qualities, true grades and a configurable judge.
 *
 * True scores θ ~ N(0, sd²). Grades are K equal-probability bands of that population (cut points
 * at the normal quantiles j/K), so true grades are as frequent as the bands are wide. Anchors are
 * drawn per grade (evenly over the K grades) from the same population restricted to the band.
 * The judge is runtime/src/cj/judge-model.ts (shared with the fake server's standard judge).
 */
import { type JudgeConfig, judgeProbability } from '../../runtime/src/cj/judge-model.js';
import { createRng, type Rng } from '../../runtime/src/cj/rng.js';
import { normInv } from '../../runtime/src/cj/stats.js';

export { type JudgeConfig, judgeProbability, normalCdf } from '../../runtime/src/cj/judge-model.js';

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
