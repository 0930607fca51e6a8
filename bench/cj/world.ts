/**
 * Simulated CJ world: latent true qualities, true grades and a configurable judge.
 *
 * True scores θ ~ N(0, sd²). Grades are K equal-probability bands of that population (cut points
 * at the normal quantiles j/K), so true grades are as frequent as the bands are wide. Anchors are
 * drawn per grade (evenly over the K grades) from the same population restricted to the band.
 * Judge: P(A chosen) = lapse/2 + (1 − lapse)·σ((θ_A − θ_B)/scale + bias).
 */
import { createRng, type Rng } from '../../runtime/src/cj/rng.js';

export interface JudgeConfig {
  lapse: number;
  bias: number;
  scale: number;
}

export interface WorldConfig {
  students: number;
  anchors: number;
  grades: number;
  sd: number;
}

export interface World {
  ids: string[];
  theta: Map<string, number>;
  grade: Map<string, number>;
  anchorIds: string[];
  studentIds: string[];
  gradeLabels: string[];
  cuts: number[];
}

/** Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

export function makeWorld(seed: number, cfg: WorldConfig): World {
  const rng = createRng(seed, 'world');
  const cuts = Array.from(
    { length: cfg.grades - 1 },
    (_, j) => cfg.sd * normalQuantile((j + 1) / cfg.grades),
  );
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
    while (gradeOf(t) !== g) t = cfg.sd * rng.normal();
    const id = `a${String(i).padStart(3, '0')}`;
    theta.set(id, t);
    grade.set(id, g);
    anchorIds.push(id);
  }
  const gradeLabels = Array.from({ length: cfg.grades }, (_, g) => `G${g + 1}`);
  return { ids: [...studentIds, ...anchorIds], theta, grade, anchorIds, studentIds, gradeLabels, cuts };
}

export function judge(world: World, a: string, b: string, cfg: JudgeConfig, rng: Rng): 'a' | 'b' {
  const d = (world.theta.get(a)! - world.theta.get(b)!) / cfg.scale + cfg.bias;
  const p = cfg.lapse / 2 + (1 - cfg.lapse) / (1 + Math.exp(-d));
  return rng.next() < p ? 'a' : 'b';
}
