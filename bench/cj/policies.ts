/** Policy runners for the benchmark: ours (plan()), random pairing, and the seed policy. */
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { kendall, qwk, spearman } from '../../runtime/src/cj/stats.js';
import type { PlanInputJson, PlanResult } from '../../runtime/src/cj/types.js';
import { ilsr, seedGrades, seedWave } from './seed-policy.js';
import { type JudgeConfig, judge, type World } from './world.js';

export interface Metrics {
  comparisons: number;
  perEssay: number;
  spearman: number;
  /** Spearman over all essays, anchors included (the issue does not say which). */
  spearmanAll?: number;
  kendall: number;
  exact: number;
  adjacent: number;
  qwk: number;
  /** Students whose true grade is inside the 80% interval (NaN for one-hot policies). */
  coverage: number;
  /** Held-out anchors inside the 80% interval (leave-one-anchor-out). */
  anchorCoverage: number;
  /** Share of students with max P(grade) < 0.99 (probabilities not one-hot). */
  notOneHot: number;
  /** Mean P(modal grade) over students (calibrated when it matches `exact`). */
  meanModal: number;
  /** Mean number of grades in the 80% interval. */
  width: number;
  /** Pairs of students where the higher score has the lower assigned grade. */
  inversions?: number;
  /** Mean judged comparisons per anchor and per student. */
  perAnchor?: number;
  perStudent?: number;
}

/** Pairs (x, y) of students with score_x > score_y and grade_x < grade_y. */
export function countInversions(scores: number[], grades: number[]): number {
  let bad = 0;
  for (let x = 0; x < scores.length; x++)
    for (let y = 0; y < scores.length; y++) if (scores[x]! > scores[y]! && grades[x]! < grades[y]!) bad++;
  return bad;
}

type Comp = { a: string; b: string; winner: 'a' | 'b' | 'tie' };

function baseInput(world: World): Pick<PlanInputJson, 'essays' | 'grades'> {
  return {
    essays: world.ids.map((id) =>
      world.anchorIds.includes(id)
        ? { id, anchor: { grade: world.gradeLabels[world.grade.get(id)!]! } }
        : { id },
    ),
    grades: world.gradeLabels,
  };
}

export function metricsOf(world: World, out: PlanResult, comparisons: number): Metrics {
  const score = new Map(out.scores.map((s) => [s.id, s.score]));
  const ids = world.studentIds;
  const truth = ids.map((id) => world.theta.get(id)!);
  const est = ids.map((id) => score.get(id)!);
  const K = world.gradeLabels.length;
  const gi = new Map(world.gradeLabels.map((g, i) => [g, i]));
  const gByid = new Map(out.grades.map((g) => [g.id, g]));
  const tg = ids.map((id) => world.grade.get(id)!);
  const pg = ids.map((id) => gi.get(gByid.get(id)!.assigned)!);
  let cover = 0;
  let soft = 0;
  let modal = 0;
  let width = 0;
  ids.forEach((id, t) => {
    const g = gByid.get(id)!;
    modal += g.modalProbability;
    width += gi.get(g.interval80[1])! - gi.get(g.interval80[0])! + 1;
    if (tg[t]! >= gi.get(g.interval80[0])! && tg[t]! <= gi.get(g.interval80[1])!) cover++;
    if (g.modalProbability < 0.99) soft++;
  });
  const anchorSet = new Set(world.anchorIds);
  const judged = (anchor: boolean): number => {
    const rows = out.scores.filter((s) => anchorSet.has(s.id) === anchor);
    return rows.length ? rows.reduce((t, s) => t + s.comparisons, 0) / rows.length : Number.NaN;
  };
  return {
    comparisons,
    perEssay: (2 * comparisons) / world.ids.length,
    inversions: countInversions(est, pg),
    perAnchor: judged(true),
    perStudent: judged(false),
    spearman: spearman(truth, est),
    kendall: kendall(truth, est),
    exact: tg.filter((g, t) => g === pg[t]).length / ids.length,
    adjacent: tg.filter((g, t) => Math.abs(g - pg[t]!) <= 1).length / ids.length,
    qwk: qwk(tg, pg, K),
    coverage: cover / ids.length,
    anchorCoverage: out.quality.calibration?.coverage80 ?? Number.NaN,
    notOneHot: soft / ids.length,
    meanModal: modal / ids.length,
    width: width / ids.length,
  };
}

export interface OursResult {
  checkpoints: Metrics[];
  stop?: { reason: string; metrics: Metrics };
}

/**
 * Runs our engine round by round. With `checkpoints`, the budget is raised checkpoint by
 * checkpoint (the engine stops at each, we measure, then continue) and own stopping is disabled;
 * without, the engine runs with its default stopping and `budget`.
 */
export function runOurs(
  world: World,
  jcfg: JudgeConfig,
  seed: number,
  opts: {
    checkpoints?: number[];
    budget?: number;
    roundSize?: number;
    settings?: Record<string, unknown>;
    /** Called with plan()'s output at every checkpoint (for decision-rule comparisons). */
    onCheckpoint?: (out: PlanResult, comparisons: number) => void;
  },
): OursResult {
  const rng = createRng(seed, 'judge/ours');
  const comparisons: Comp[] = [];
  const history: { comparisons: number; scores: Record<string, number>; grades?: Record<string, number> }[] =
    [];
  const base = baseInput(world);
  const checkpoints = [...(opts.checkpoints ?? [])];
  const result: OursResult = { checkpoints: [] };
  const noStop = { reliability: 1, minPerEssay: 1_000_000 };
  for (let round = 0; round < 10_000; round++) {
    const budget = checkpoints.length > 0 ? checkpoints[0]! : opts.budget!;
    const out = plan({
      ...base,
      comparisons,
      history,
      settings: {
        seed: `bench-${seed}`,
        budget,
        splitHalf: false,
        ...(opts.roundSize ? { roundSize: opts.roundSize } : {}),
        ...(checkpoints.length > 0 ? { stopping: noStop } : {}),
        ...opts.settings,
      },
    });
    history.push(out.snapshot);
    if (out.decision.action === 'stop') {
      const m = metricsOf(world, out, comparisons.length);
      if (checkpoints.length > 0) {
        opts.onCheckpoint?.(out, comparisons.length);
        result.checkpoints.push(m);
        checkpoints.shift();
        if (checkpoints.length === 0) return result;
        continue;
      }
      result.stop = { reason: out.decision.reason, metrics: m };
      return result;
    }
    for (const p of out.nextPairs)
      comparisons.push({ a: p.a, b: p.b, winner: judge(world, p.a, p.b, jcfg, rng) });
  }
  return result;
}

/** Random pairing (distinct pairs, random orientation), scored by our estimator. */
export function runRandom(world: World, jcfg: JudgeConfig, seed: number, checkpoints: number[]): Metrics[] {
  const rng = createRng(seed, 'judge/random');
  const ids = world.ids;
  const all: [string, string][] = [];
  for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) all.push([ids[i]!, ids[j]!]);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const comps: Comp[] = [];
  const out: Metrics[] = [];
  for (const cp of checkpoints) {
    while (comps.length < cp) {
      const [x, y] = all[comps.length]!;
      const [a, b] = rng.next() < 0.5 ? [x, y] : [y, x];
      comps.push({ a, b, winner: judge(world, a, b, jcfg, rng) });
    }
    const res = plan({
      ...baseInput(world),
      comparisons: comps,
      settings: { seed: 1, budget: cp, splitHalf: false },
    });
    out.push(metricsOf(world, res, cp));
  }
  return out;
}

/** The seed policy at fixed budgets (its Δθ rule is reported separately as `seedStopped`). */
export function runSeed(
  world: World,
  jcfg: JudgeConfig,
  seed: number,
  checkpoints: number[],
): { checkpoints: Metrics[]; stoppedAt: number | null } {
  const rng = createRng(seed, 'judge/seed');
  const ids = world.ids;
  const n = ids.length;
  const idx = new Map(ids.map((id, i) => [id, i]));
  const anchors = world.anchorIds.map((id) => ({ item: idx.get(id)!, grade: world.grade.get(id)! }));
  const counts = new Int32Array(n);
  const inA = new Int32Array(n);
  const compared = new Set<number>();
  const data: [number, number][] = [];
  let theta: Float64Array = new Float64Array(n);
  let stoppedAt: number | null = null;
  const out: Metrics[] = [];
  const K = world.gradeLabels.length;
  const students = world.studentIds.map((id) => idx.get(id)!);
  const final = checkpoints[checkpoints.length - 1]!;
  let next = 0;
  while (data.length < final) {
    const limit = Math.min(Math.floor(n / 2), checkpoints[next]! - data.length);
    const wave = seedWave(n, theta, counts, inA, compared, rng, limit);
    if (wave.length === 0) break;
    for (const [a, b] of wave) {
      const w = judge(world, ids[a]!, ids[b]!, jcfg, rng);
      data.push(w === 'a' ? [a, b] : [b, a]);
      counts[a] = counts[a]! + 1;
      counts[b] = counts[b]! + 1;
      inA[a] = inA[a]! + 1;
      compared.add(Math.min(a, b) * n + Math.max(a, b));
    }
    const prev = theta;
    theta = ilsr(n, data, 0.01);
    let maxChange = 0;
    for (let i = 0; i < n; i++) maxChange = Math.max(maxChange, Math.abs(theta[i]! - prev[i]!));
    if (stoppedAt === null && data.length >= 12 && maxChange <= 0.025) stoppedAt = data.length;
    if (data.length >= checkpoints[next]!) {
      const g = seedGrades(theta, anchors, K);
      const truth = students.map((i) => world.theta.get(ids[i]!)!);
      const est = students.map((i) => theta[i]!);
      const tg = students.map((i) => world.grade.get(ids[i]!)!);
      const pg = students.map((i) => g[i]!);
      out.push({
        comparisons: data.length,
        perEssay: (2 * data.length) / n,
        spearman: spearman(truth, est),
        spearmanAll: spearman(
          ids.map((id) => world.theta.get(id)!),
          Array.from(theta),
        ),
        kendall: kendall(truth, est),
        exact: tg.filter((x, t) => x === pg[t]).length / tg.length,
        adjacent: tg.filter((x, t) => Math.abs(x - pg[t]!) <= 1).length / tg.length,
        qwk: qwk(tg, pg, K),
        coverage: Number.NaN,
        anchorCoverage: Number.NaN,
        notOneHot: 0,
        meanModal: 1,
        width: 1,
        inversions: countInversions(est, pg),
      });
      next++;
    }
  }
  return { checkpoints: out, stoppedAt };
}
