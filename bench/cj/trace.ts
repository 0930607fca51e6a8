/** Trace of the stopping checks against the true Spearman, round by round (tuning aid). */
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { spearman } from '../../runtime/src/cj/stats.js';
import { judge, makeWorld } from './world.js';

const jc = { lapse: 0.05, bias: 0.15, scale: 1 };
const rows: number[][] = [];
const first = Number(process.argv[3] ?? 1);
for (let seed = first; seed < first + Number(process.argv[2] ?? 10); seed++) {
  const w = makeWorld(seed, { students: 60, anchors: 12, grades: 6, sd: 1.5 });
  const rng = createRng(seed, 'judge/ours');
  const comps: { a: string; b: string; winner: 'a' | 'b' }[] = [];
  const history: unknown[] = [];
  const essays = w.ids.map((id) =>
    w.anchorIds.includes(id) ? { id, anchor: { grade: w.gradeLabels[w.grade.get(id)!]! } } : { id },
  );
  const st = { seed: `bench-${seed}`, budget: 600, splitHalf: false, stopping: { reliability: 1 } };
  for (;;) {
    const out = plan({
      essays,
      grades: w.gradeLabels,
      comparisons: comps,
      history: history as never,
      settings: st,
    });
    const sc = new Map(out.scores.map((s) => [s.id, s.score]));
    const tr = spearman(
      w.studentIds.map((id) => w.theta.get(id)!),
      w.studentIds.map((id) => sc.get(id)!),
    );
    const c = Object.fromEntries(out.decision.checks.map((k) => [k.name, k.value ?? Number.NaN]));
    rows.push([
      seed,
      comps.length,
      tr,
      c.reliability!,
      c.rankStability!,
      c.gradeStability!,
      c.gradeConfidence!,
      c.minPerEssay!,
      out.quality.expectedSpearman ?? Number.NaN,
    ]);
    if (out.decision.action === 'stop') break;
    for (const p of out.nextPairs) comps.push({ a: p.a, b: p.b, winner: judge(w, p.a, p.b, jc, rng) });
    history.push(out.snapshot);
  }
}
console.log('seed comps trueSp eap rankStab gradeChg meanModal minPer expSp');
for (const r of rows)
  if (r[1]! >= 300) console.log(r.map((x) => (Number.isInteger(x) ? String(x) : x.toFixed(3))).join(' '));
