// Where the engine's convergence stop falls with the standard judge, against the estimate of
// `kubectl cj estimate` (contract/src/estimate.ts). Simulates batches as the operator runs them
// (rounds of roundSizeFor(items, 2) pairs, the CRD's stopping defaults, a budget of 20 per item, as the
// held-out check on the local stack) round by round through the real plan(), the judge being the engine
// benchmark's standard one (runtime/src/cj/judge-model.ts, the fake server's `fake-standard-judge`)
// answering every pair "high" as the fake server does; classes are bench/cj worlds (qualities
// N(0, 1.5²), 6 grades, anchors 2 per grade, fewer in small classes: classes.ts).
//   node --import tsx bench/estimate/converge.ts --sizes 24,48,72 --seeds 1-6 [--json out.jsonl]
// Prints one line per run (comparisons at the stop, the estimate, its error) and a summary per
// size. Which seeds tuned the table (STOP_TABLE) and which were held out: bench/estimate/README.md.
import { appendFileSync } from 'node:fs';
import { estimateComparisons, roundSizeFor, stopPerItemFor } from '../../contract/src/estimate.js';
import { StoppingSchema } from '../../operator/src/api/batch.js';
import { engineStopping } from '../../operator/src/controllers/cjbatch/prepare.js';
import { STANDARD_JUDGE } from '../../runtime/src/cj/judge-model.js';
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import type { PlanInputJson } from '../../runtime/src/cj/types.js';
import { toConfidence } from '../../runtime/src/scoring/score-round.js';
import { CONFIDENCE_VALUE } from '../../runtime/src/store/claims.js';
import { judge } from '../cj/world.js';
import { classWorld } from './classes.js';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1]! : d;
};
const range = (s: string) =>
  s.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
  });
const seeds = range(arg('seeds', '1-3'));
const sizes = arg('sizes', '24,48,72').split(',').map(Number);
const parallelism = Number(arg('parallelism', '2'));
const jsonOut = arg('json', '');
const perItemBudget = Number(arg('budget-per-item', '20'));

// The CRD's stopping defaults, as prepare.ts passes them to plan().
const stopping = engineStopping(StoppingSchema.parse({}));
const SURE = toConfidence(CONFIDENCE_VALUE.high);

export interface Run {
  items: number;
  seed: number;
  comparisons: number;
  rounds: number;
  reason: string;
}

export function simulate(items: number, seed: number, perItemBudget = 20): Run {
  const world = classWorld(items, seed);
  const rng = createRng(seed, 'judge');
  const budget = Math.min((items * (items - 1)) / 2, items * perItemBudget);
  const comparisons: PlanInputJson['comparisons'] = [];
  const history: NonNullable<PlanInputJson['history']> = [];
  const roundSize = roundSizeFor(items, parallelism);
  for (let round = 0; round < 500; round++) {
    const out = plan({
      essays: [
        ...world.studentIds.map((id) => ({ id })),
        ...world.anchorIds.map((id) => ({ id, anchor: { grade: world.gradeLabels[world.grade.get(id)!]! } })),
      ],
      grades: world.gradeLabels,
      comparisons,
      pending: [],
      history,
      settings: { seed: `${seed}:${round}`, roundSize, budget, stopping },
    } as PlanInputJson);
    history.push(out.snapshot as never);
    if (out.decision.action !== 'continue' || out.nextPairs.length === 0)
      return { items, seed, comparisons: comparisons.length, rounds: round, reason: out.decision.reason };
    // The pair's `a` is shown first (essay A), where the judge's position bias falls.
    for (const p of out.nextPairs)
      comparisons.push({
        a: p.a,
        b: p.b,
        winner: judge(world, p.a, p.b, STANDARD_JUDGE, rng),
        confidence: SURE,
      });
  }
  throw new Error('no stop in 500 rounds');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows: (Run & { estimate: number; error: number })[] = [];
  for (const n of sizes)
    for (const seed of seeds) {
      const r = simulate(n, seed, perItemBudget);
      const estimate = estimateComparisons({
        items: n,
        budget: n * perItemBudget,
        parallelism,
        minPerEssay: stopping.minPerEssay,
        perItem: stopPerItemFor(n),
      }).expected;
      const row = { ...r, estimate, error: (estimate - r.comparisons) / r.comparisons };
      rows.push(row);
      if (jsonOut) appendFileSync(jsonOut, `${JSON.stringify(row)}\n`);
      console.log(
        `items ${n} seed ${seed}: ${r.comparisons} comparisons (${(r.comparisons / n).toFixed(2)} per item), ${r.rounds} rounds, ${r.reason}; estimate ${estimate} (${(100 * row.error).toFixed(1)}%)`,
      );
    }
  for (const n of sizes) {
    const rs = rows.filter((r) => r.items === n);
    const per = rs.map((r) => r.comparisons / n).sort((a, b) => a - b);
    const mean = per.reduce((a, b) => a + b, 0) / per.length;
    const errs = rs.map((r) => r.error);
    const worst = errs.reduce((m, e) => (Math.abs(e) > Math.abs(m) ? e : m), 0);
    const within = errs.filter((e) => Math.abs(e) <= 0.2).length;
    console.log(
      `items ${n}: ${mean.toFixed(2)} per item (${per[0]!.toFixed(2)}–${per[per.length - 1]!.toFixed(2)}), converged ${rs.filter((r) => r.reason === 'converged').length}/${rs.length}; ` +
        `estimate ${rs[0]!.estimate}; mean error ${((100 * errs.reduce((a, b) => a + b, 0)) / errs.length).toFixed(1)}%, worst ${(100 * worst).toFixed(1)}%, within 20% ${within}/${rs.length}`,
    );
  }
}
