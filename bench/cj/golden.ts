/**
 * Golden comparison of plan() against a baseline copy of the engine: for a refactor or a
 * speed-up that must not change any output. Runs round-by-round trajectories (grid worlds and
 * judges, plus settings and input shapes that reach the other branches: pending pairs, fixed
 * anchor scores, ties and confidences, empirical-Bayes prior, split-half, other grade targets
 * and decisions, no anchors, the sparse route above 400 essays), calls both engines on every
 * input and compares the JSON outputs byte for byte. Exits 1 on the first difference. Also
 * prints the time of both engines on the compared calls (interleaved, so load hits both alike).
 *
 *   git archive HEAD runtime/src/cj | tar -x -C .bench-baseline
 *   node --import tsx bench/cj/golden.ts --baseline .bench-baseline [--seeds 101-103] [--quick]
 *     [--cases grid-200,sparse-420]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import type { PlanInputJson } from '../../runtime/src/cj/types.js';
import { arg } from './cli.js';
import { type JudgeConfig, judge, makeWorld } from './world.js';

const baseDir = arg('--baseline');
if (!baseDir) throw new Error('--baseline DIR is required (a copy of runtime/src/cj to compare with)');
type Plan = typeof plan;
const basePlan = (
  (await import(pathToFileURL(path.resolve(baseDir, 'runtime/src/cj/plan.ts')).href)) as { plan: Plan }
).plan;
const [s0, s1] = (arg('--seeds') ?? '101-103').split('-').map(Number);
const quick = process.argv.includes('--quick');
const only = arg('--cases')?.split(',');

interface Case {
  name: string;
  students: number;
  perGrade: number;
  grades: number;
  judge: JudgeConfig;
  budget: number;
  roundSize?: number;
  settings?: Record<string, unknown>;
  /** Input shape: keep a few pairs pending, fix anchor scores, ties/confidence, drop anchors. */
  pending?: boolean;
  fixedAnchors?: boolean;
  soft?: boolean;
  noAnchors?: boolean;
  /** Compare every `every`-th call only (large cases). */
  every?: number;
}

const standard: JudgeConfig = { lapse: 0.05, bias: 0.15, scale: 1 };
const CASES: Case[] = [
  { name: 'grid-60', students: 60, perGrade: 2, grades: 6, judge: standard, budget: 600 },
  {
    name: 'misperception-1anchor',
    students: 60,
    perGrade: 1,
    grades: 6,
    judge: { ...standard, misperception: 0.5 },
    budget: 400,
  },
  {
    name: 'noisier-3anchors',
    students: 40,
    perGrade: 3,
    grades: 4,
    judge: { lapse: 0.1, bias: 0.3, scale: 1.5 },
    budget: 300,
  },
  { name: 'grid-200', students: 200, perGrade: 2, grades: 6, judge: standard, budget: 2000, every: 3 },
  {
    name: 'settings-a',
    students: 30,
    perGrade: 2,
    grades: 3,
    judge: standard,
    budget: 240,
    roundSize: 7,
    pending: true,
    soft: true,
    settings: { estimatePriorSd: true, splitHalf: true, anchorOrderSd: 0.5, gradeDecision: 'modal' },
  },
  {
    name: 'settings-b',
    students: 30,
    perGrade: 2,
    grades: 5,
    judge: standard,
    budget: 240,
    fixedAnchors: true,
    settings: { gradeTargets: 'jacobian', rankFocus: 0, rankDensityPower: 2, boundaryScale: 'population' },
  },
  {
    name: 'settings-c',
    students: 25,
    perGrade: 2,
    grades: 3,
    judge: standard,
    budget: 200,
    settings: { widenByAnchors: false, lapse: 0.05, biasPriorSd: 0, stopping: { lag: 1 } },
  },
  { name: 'no-anchors', students: 40, perGrade: 1, grades: 3, judge: standard, budget: 300, noAnchors: true },
  {
    name: 'sparse-420',
    students: 420,
    perGrade: 2,
    grades: 6,
    judge: standard,
    budget: 1400,
    roundSize: 100,
    every: 4,
  },
];

let calls = 0;
/** Per case: ms in plan() (this engine, baseline) on the compared calls. */
const timeByCase: Record<string, [number, number]> = {};
let compared = 0;
const t0 = performance.now();
for (let seed = s0!; seed <= (s1 ?? s0!); seed++) {
  for (const c of CASES) {
    if (quick && (c.students > 100 || seed > s0!)) continue;
    if (only && !only.includes(c.name)) continue;
    const world = makeWorld(seed, {
      students: c.students,
      anchors: c.perGrade * c.grades,
      grades: c.grades,
      sd: 1.5,
      anchorPlacement: 'band',
    });
    const rng = createRng(seed, `golden/${c.name}`);
    const ids = c.noAnchors ? world.studentIds : world.ids;
    const essays: PlanInputJson['essays'] = ids.map((id) =>
      world.anchorIds.includes(id)
        ? {
            id,
            anchor: {
              grade: world.gradeLabels[world.grade.get(id)!]!,
              ...(c.fixedAnchors && rng.next() < 0.3 ? { score: world.theta.get(id)! } : {}),
            },
          }
        : { id },
    );
    const comparisons: NonNullable<PlanInputJson['comparisons']> = [];
    const history: NonNullable<PlanInputJson['history']> = [];
    let pending: { a: string; b: string }[] = [];
    for (let round = 0; round < 10_000; round++) {
      const input: PlanInputJson = {
        essays,
        grades: c.noAnchors ? [] : world.gradeLabels,
        comparisons: [...comparisons],
        history: [...history],
        pending,
        settings: { seed: `golden-${seed}`, budget: c.budget, roundSize: c.roundSize ?? 20, ...c.settings },
      };
      const compare = round % (c.every ?? 1) === 0;
      const t1 = performance.now();
      const out = plan(input);
      const t2 = performance.now();
      calls++;
      if (compare) {
        const base = basePlan(input);
        const t3 = performance.now();
        compared++;
        const ms = timeByCase[c.name] ?? [0, 0];
        timeByCase[c.name] = ms;
        ms[0] += t2 - t1;
        ms[1] += t3 - t2;
        const x = JSON.stringify(out);
        const y = JSON.stringify(base);
        if (x !== y) {
          let at = 0;
          while (at < x.length && x[at] === y[at]) at++;
          console.error(`DIFFERENT: seed ${seed} case ${c.name} round ${round} at char ${at}`);
          console.error(`  new:      …${x.slice(Math.max(0, at - 120), at + 80)}`);
          console.error(`  baseline: …${y.slice(Math.max(0, at - 120), at + 80)}`);
          process.exit(1);
        }
      }
      history.push(out.snapshot);
      if (out.decision.action === 'stop' || out.nextPairs.length === 0) break;
      // Pending: the last 3 pairs of a round stay unjudged for one round.
      const judgeNow = c.pending ? [...pending, ...out.nextPairs.slice(0, -3)] : out.nextPairs;
      pending = c.pending ? out.nextPairs.slice(-3).map(({ a, b }) => ({ a, b })) : [];
      for (const p of judgeNow) {
        const w = judge(world, p.a, p.b, c.judge, rng);
        if (c.soft && rng.next() < 0.1) comparisons.push({ a: p.a, b: p.b, winner: 'tie' });
        else if (c.soft && rng.next() < 0.3)
          comparisons.push({ a: p.a, b: p.b, winner: w, confidence: 0.5 + 0.5 * rng.next() });
        else comparisons.push({ a: p.a, b: p.b, winner: w });
      }
    }
    console.log(`seed ${seed} ${c.name}: identical (${calls} calls so far)`);
  }
}
console.log('| case | ms this engine | ms baseline | ratio |\n|---|---|---|---|');
for (const [name, [a, b]] of Object.entries(timeByCase))
  console.log(`| ${name} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)} |`);
console.log(
  `All ${compared} compared plan() outputs identical to the baseline (${calls} calls, ${((performance.now() - t0) / 1000).toFixed(0)} s).`,
);
