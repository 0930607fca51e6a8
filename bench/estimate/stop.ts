// Where the engine stops, for the comparison model of `kubectl cj estimate` (contract/src/estimate.ts).
// Simulates batches as the operator runs them (round size, CRD stopping defaults, a budget well
// above the stop) with the fake judge of the local stack on the sample essays, round by round
// through the real plan(), and prints the comparisons at the stop per item.
//   node --import tsx bench/estimate/stop.ts [--seeds 1-3] [--sizes 12,24,40] [--anchors 12]
//     [--temperatures 1] [--budget-per-item 20] [--parallelism 3] [--checks]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { roundSizeFor } from '../../contract/src/estimate.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { StoppingSchema } from '../../operator/src/api/batch.js';
import { engineStopping } from '../../operator/src/controllers/cjbatch/prepare.js';
import { plan } from '../../runtime/src/cj/plan.js';
import type { PlanInputJson } from '../../runtime/src/cj/types.js';
import { Judge, loadProfile } from '../../runtime/src/fake-anthropic/judge.js';
import { toConfidence } from '../../runtime/src/scoring/score-round.js';
import { CONFIDENCE_VALUE } from '../../runtime/src/store/claims.js';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1]! : d;
};
const range = (s: string) => {
  const [a, b] = s.split('-').map(Number);
  return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
};
const seeds = range(arg('seeds', '1-3'));
const sizes = arg('sizes', '12,24,40').split(',').map(Number);
const anchorCount = Number(arg('anchors', '12'));
const parallelism = Number(arg('parallelism', '3'));
const temperatures = arg('temperatures', '1').split(',').map(Number);
const perItemBudget = Number(arg('budget-per-item', '20'));

const fx = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/essays/essays.json'), 'utf8'));
const profile = loadProfile(path.join(repoRoot, 'test/fixtures/essays/profile.json'));
const grades: string[] = fx.gradeScale.grades;
// The CRD's stopping defaults, as prepare.ts passes them to plan().
const stopping = engineStopping(StoppingSchema.parse({}));

interface Run {
  n: number;
  seed: number;
  comparisons: number;
  rounds: number;
  reason: string;
}

function simulate(n: number, seed: number, temperature: number): Run {
  const essays = fx.essays.slice(0, n) as { id: string; text: string }[];
  const anchors = fx.anchors.slice(0, anchorCount) as { id: string; grade: string; text: string }[];
  const items = essays.length + anchors.length;
  const text = new Map([...essays, ...anchors].map((e) => [e.id, e.text]));
  // The stack's fake judge (test/integration/operator-harness.ts startFake): lapse 0.05, bias 0.15.
  const judge = new Judge({ seed: 7 + seed, lapse: 0.05, bias: 0.15, temperature, profile });
  const budget = Math.min((items * (items - 1)) / 2, items * perItemBudget);
  const comparisons: PlanInputJson['comparisons'] = [];
  const history: NonNullable<PlanInputJson['history']> = [];
  for (let round = 0; round < 200; round++) {
    const out = plan({
      essays: [
        ...essays.map((e) => ({ id: e.id })),
        ...anchors.map((a) => ({ id: a.id, anchor: { grade: a.grade } })),
      ],
      grades,
      comparisons,
      pending: [],
      history,
      settings: { seed: `${seed}:${round}`, roundSize: roundSizeFor(items, parallelism), budget, stopping },
    } as PlanInputJson);
    history.push(out.snapshot as never);
    // --checks: each round's stopping checks (why the engine goes on).
    if (process.argv.includes('--checks'))
      console.log(round, comparisons.length, JSON.stringify(out.decision.checks));
    if (out.decision.action !== 'continue' || out.nextPairs.length === 0)
      return { n: items, seed, comparisons: comparisons.length, rounds: round, reason: out.decision.reason };
    for (const p of out.nextPairs) {
      const v = judge.judge(text.get(p.a)!, text.get(p.b)!);
      comparisons.push({
        a: p.a,
        b: p.b,
        winner: v.winner === 'A' ? 'a' : 'b',
        confidence: toConfidence(CONFIDENCE_VALUE[v.confidence]),
      });
    }
  }
  throw new Error('no stop in 200 rounds');
}

// Spread of the judged qualities on the judge's logit scale: the profile's SD over the temperature.
const profileSd = (() => {
  const q = profile.essays.map((e) => e.quality);
  const m = q.reduce((a, b) => a + b, 0) / q.length;
  return Math.sqrt(q.reduce((a, b) => a + (b - m) ** 2, 0) / q.length);
})();

const rows: (Run & { spread: number })[] = [];
for (const temperature of temperatures)
  for (const n of sizes)
    for (const seed of seeds) {
      const r = { ...simulate(n, seed, temperature), spread: profileSd / temperature };
      rows.push(r);
      console.log(
        `spread ${r.spread.toFixed(2)} items ${r.n} seed ${r.seed}: ${r.comparisons} comparisons (${(r.comparisons / r.n).toFixed(2)} per item), ${r.rounds} rounds, ${r.reason}`,
      );
    }
const groups = new Map<string, (typeof rows)[number][]>();
for (const r of rows)
  groups.set(`${r.spread.toFixed(2)} ${r.n}`, [...(groups.get(`${r.spread.toFixed(2)} ${r.n}`) ?? []), r]);
for (const [k, rs] of groups) {
  const xs = rs.map((r) => r.comparisons / r.n);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  const k2 = rs.map((r) => (r.comparisons / r.n) * r.spread ** 2);
  const kmean = k2.reduce((a, b) => a + b, 0) / k2.length;
  const early = rs.filter((r) => r.reason === 'converged').length;
  console.log(
    `spread ${k.split(' ')[0]} items ${k.split(' ')[1]}: ${mean.toFixed(2)} ± ${sd.toFixed(2)} per item, per item × spread² ${kmean.toFixed(1)}, ${early}/${rs.length} converged`,
  );
}
