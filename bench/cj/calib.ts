/**
 * Calibration aid: per checkpoint, the students' 80% interval coverage next to the posterior mass
 * the interval holds (coverage ≈ mass when the grade probabilities are calibrated), the mean
 * P(modal) next to the exact agreement, and the held-out-anchor coverage.
 * `node --import tsx bench/cj/calib.ts SEEDS CHECKPOINTS [--noisy]` (seeds 101+, the tuning seeds).
 */
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { judge, makeWorld } from './world.js';

const [nSeeds, cps, ...rest] = process.argv.slice(2);
const checkpoints = cps!.split(',').map(Number);
const jc = rest.includes('--noisy')
  ? { lapse: 0.1, bias: 0.3, scale: 1.5 }
  : { lapse: 0.05, bias: 0.15, scale: 1 };
const acc = checkpoints.map(() => ({
  n: 0,
  cover: 0,
  mass: 0,
  modal: 0,
  exact: 0,
  anchors: 0,
  anchorCover: 0,
}));
for (let seed = 101; seed < 101 + Number(nSeeds); seed++) {
  const w = makeWorld(seed, { students: 60, anchors: 12, grades: 6, sd: 1.5 });
  const gi = new Map(w.gradeLabels.map((g, i) => [g, i]));
  const rng = createRng(seed, 'judge/ours');
  const comps: { a: string; b: string; winner: 'a' | 'b' }[] = [];
  const history: unknown[] = [];
  const essays = w.ids.map((id) =>
    w.anchorIds.includes(id) ? { id, anchor: { grade: w.gradeLabels[w.grade.get(id)!]! } } : { id },
  );
  for (let c = 0; c < checkpoints.length; ) {
    const out = plan({
      essays,
      grades: w.gradeLabels,
      comparisons: comps,
      history: history as never,
      settings: {
        seed: `bench-${seed}`,
        budget: checkpoints[c]!,
        splitHalf: false,
        stopping: { reliability: 1, minPerEssay: 1_000_000 },
      },
    });
    history.push(out.snapshot);
    if (out.decision.action === 'stop') {
      const a = acc[c]!;
      for (const g of out.grades) {
        const t = w.grade.get(g.id)!;
        const lo = gi.get(g.interval80[0])!;
        const hi = gi.get(g.interval80[1])!;
        a.n++;
        a.cover += t >= lo && t <= hi ? 1 : 0;
        a.mass += g.probabilities.slice(lo, hi + 1).reduce((s, p) => s + p, 0);
        a.modal += g.modalProbability;
        a.exact += gi.get(g.modal) === t ? 1 : 0;
      }
      for (const r of out.quality.calibration?.anchors ?? []) {
        const t = gi.get(r.grade)!;
        a.anchors++;
        a.anchorCover += t >= gi.get(r.interval80[0])! && t <= gi.get(r.interval80[1])! ? 1 : 0;
      }
      c++;
      continue;
    }
    for (const p of out.nextPairs) comps.push({ a: p.a, b: p.b, winner: judge(w, p.a, p.b, jc, rng) });
  }
}
console.log('comparisons | students: cover  mass   P(modal) exact | held-out anchors: cover');
checkpoints.forEach((cp, i) => {
  const a = acc[i]!;
  const f = (x: number, n: number) => (x / n).toFixed(3);
  console.log(
    `${cp} | ${f(a.cover, a.n)} ${f(a.mass, a.n)} ${f(a.modal, a.n)} ${f(a.exact, a.n)} | ${f(a.anchorCover, a.anchors)}`,
  );
});
