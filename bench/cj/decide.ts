/**
 * Grade decision rules compared on the same runs (the decision does not change the pairs chosen):
 * modal grade, posterior median, and the rounded posterior mean (the expected-quadratic-loss
 * optimum). `node --import tsx bench/cj/decide.ts SEEDS CHECKPOINTS [--first N] [--noisy]`
 * Seeds start at 101 (tuning seeds; not the reported 1–10).
 */
import { qwk } from '../../runtime/src/cj/stats.js';
import { runOurs } from './policies.js';
import { makeWorld } from './world.js';

const args = process.argv.slice(2);
const firstAt = args.indexOf('--first');
const first = firstAt >= 0 ? Number(args.splice(firstAt, 2)[1]) : 101;
const [nSeeds, cps] = args;
const noisy = args.includes('--noisy');
const seeds = Array.from({ length: Number(nSeeds) }, (_, i) => first + i);
const checkpoints = cps!.split(',').map(Number);
const judge = noisy ? { lapse: 0.1, bias: 0.3, scale: 1.5 } : { lapse: 0.05, bias: 0.15, scale: 1 };
const world = { students: 60, anchors: 12, grades: 6, sd: 1.5 };

const rules: Record<string, (p: number[]) => number> = {
  modal: (p) => p.reduce((b, x, g) => (x > p[b]! ? g : b), 0),
  median: (p) => {
    let c = 0;
    for (let g = 0; g < p.length; g++) {
      c += p[g]!;
      if (c >= 0.5 - 1e-12) return g;
    }
    return p.length - 1;
  },
  mean: (p) => Math.round(p.reduce((s, x, g) => s + g * x, 0)),
};
type Acc = { exact: number[]; adjacent: number[]; qwk: number[] };
const acc = new Map<string, Acc>();
for (const s of seeds) {
  const w = makeWorld(s, world);
  const gi = new Map(w.gradeLabels.map((g, i) => [g, i]));
  runOurs(w, judge, s, {
    checkpoints,
    onCheckpoint: (out, m) => {
      const byId = new Map(out.grades.map((g) => [g.id, g]));
      const tg = w.studentIds.map((id) => w.grade.get(id)!);
      for (const [name, rule] of Object.entries(rules)) {
        const pg = w.studentIds.map((id) => rule(byId.get(id)!.probabilities));
        const key = `${name}@${m}`;
        const a = acc.get(key) ?? { exact: [], adjacent: [], qwk: [] };
        a.exact.push(tg.filter((g, t) => g === pg[t]).length / tg.length);
        a.adjacent.push(tg.filter((g, t) => Math.abs(g - pg[t]!) <= 1).length / tg.length);
        a.qwk.push(qwk(tg, pg, w.gradeLabels.length));
        acc.set(key, a);
      }
      void gi;
    },
  });
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const se = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1) / xs.length);
};
console.log(`${noisy ? 'noisier' : 'standard'} judge, seeds ${first}–${first + seeds.length - 1}`);
console.log('| comparisons | rule | exact | adjacent | QWK | QWK − modal (paired ± SE) |');
console.log('|---|---|---|---|---|---|');
for (const cp of checkpoints)
  for (const name of Object.keys(rules)) {
    const a = acc.get(`${name}@${cp}`)!;
    const base = acc.get(`modal@${cp}`)!;
    const d = a.qwk.map((q, i) => q - base.qwk[i]!);
    console.log(
      `| ${cp} | ${name} | ${mean(a.exact).toFixed(3)} | ${mean(a.adjacent).toFixed(3)} | ${mean(a.qwk).toFixed(3)} | ${name === 'modal' ? '–' : `${mean(d) >= 0 ? '+' : ''}${mean(d).toFixed(4)} ± ${se(d).toFixed(4)}`} |`,
    );
  }
