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

// Offline replay of expectedSpearman thresholds (stopping does not change the pairs chosen, so
// this is exactly what the engine would do): every other default check must pass too, and the
// expectedSpearman check must have passed on `k` consecutive snapshots.
const bySeed = new Map<number, number[][]>();
for (const r of rows) bySeed.set(r[0]!, [...(bySeed.get(r[0]!) ?? []), r]);
const late = rows.filter((r) => r[1]! >= 400);
const err = late.map((r) => r[8]! - r[2]!);
const mErr = err.reduce((s, x) => s + x, 0) / err.length;
const sdErr = Math.sqrt(err.reduce((s, x) => s + (x - mErr) ** 2, 0) / (err.length - 1));
console.log(
  `expectedSpearman − true Spearman (≥ 400 comparisons): mean ${mErr.toFixed(4)}, SD ${sdErr.toFixed(4)}`,
);
console.log('expSp k | early  early&≥0.95  mean comparisons  min Spearman at stop');
for (const target of [0.95, 0.955, 0.96, 0.962, 0.965, 0.97])
  for (const k of [1, 2, 3]) {
    let early = 0;
    let good = 0;
    let comps = 0;
    let minSp = 1;
    for (const rs of bySeed.values()) {
      let streak = 0;
      let stop: number[] | undefined;
      for (const [, c, , eap, rank, chg, modal, minPer, es] of rs) {
        streak = es! >= target ? streak + 1 : 0;
        const ok = eap! >= 0.88 && rank! >= 0.99 && chg! <= 0.25 && modal! >= 0.55 && minPer! >= 4;
        if (ok && streak >= k && c! < 600) {
          stop = rs.find((r) => r[1] === c);
          break;
        }
      }
      const at = stop ?? rs[rs.length - 1]!;
      if (stop) early++;
      if (stop && at[2]! >= 0.95) good++;
      comps += stop ? at[1]! : 600;
      minSp = Math.min(minSp, at[2]!);
    }
    console.log(
      `${target} ${k} | ${early}/${bySeed.size} ${good}/${bySeed.size} ${(comps / bySeed.size).toFixed(0)} ${minSp.toFixed(3)}`,
    );
  }

// Which default checks hold the stop back (rows with 400–580 comparisons, expectedSpearman aside).
const names = [
  'eap ≥ 0.88',
  'rankStability ≥ 0.99',
  'gradeChanges ≤ 0.25',
  'meanModal ≥ 0.55',
  'minPerEssay ≥ 4',
];
const fails = names.map(() => 0);
const mid = rows.filter((r) => r[1]! >= 400 && r[1]! < 600);
for (const [, , , eap, rank, chg, modal, minPer] of mid)
  [eap! >= 0.88, rank! >= 0.99, chg! <= 0.25, modal! >= 0.55, minPer! >= 4].forEach((ok, i) => {
    if (!ok) fails[i] = fails[i]! + 1;
  });
console.log(`checks failing among ${mid.length} snapshots with 400–580 comparisons:`);
names.forEach((n, i) => {
  console.log(`  ${n}: ${fails[i]}`);
});
