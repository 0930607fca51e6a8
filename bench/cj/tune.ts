/**
 * Tuning aid: our engine under settings variants, more seeds, fewer checkpoints.
 * `node --import tsx bench/cj/tune.ts SEEDS CHECKPOINTS '{"gradeFocus":2}' '{...}' [--seed-policy] [--noisy]`
 * Seeds start at 101 so tuning does not reuse the 10 seeds reported in RESULTS.md (`--first N`
 * starts elsewhere, for validation on seeds not used for tuning).
 */
import { runOurs, runSeed } from './policies.js';
import { makeWorld } from './world.js';

const [nSeeds, cps, ...rest] = process.argv.slice(2);
const firstAt = rest.indexOf('--first');
const first = firstAt >= 0 ? Number(rest.splice(firstAt, 2)[1]) : 101;
const seeds = Array.from({ length: Number(nSeeds) }, (_, i) => first + i);
const checkpoints = cps!.split(',').map(Number);
const noisy = rest.includes('--noisy');
const judge = noisy ? { lapse: 0.1, bias: 0.3, scale: 1.5 } : { lapse: 0.05, bias: 0.15, scale: 1 };
const world = { students: 60, anchors: 12, grades: 6, sd: 1.5 };
const stat = (xs: number[]) => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
  return `${m.toFixed(3)}±${(sd / Math.sqrt(xs.length)).toFixed(3)}`;
};
const report = (
  name: string,
  runs: { spearman: number; exact: number; qwk: number; anchorCoverage: number; coverage: number }[][],
) => {
  checkpoints.forEach((cp, i) => {
    const ms = runs.map((r) => r[i]!);
    console.log(
      `${name} @${cp}: Sp ${stat(ms.map((m) => m.spearman))} exact ${stat(ms.map((m) => m.exact))} QWK ${stat(ms.map((m) => m.qwk))} cover ${stat(ms.map((m) => m.coverage))} anchorCover ${stat(ms.map((m) => m.anchorCoverage).filter(Number.isFinite))}`,
    );
  });
};
if (rest.includes('--seed-policy'))
  report(
    'seed',
    seeds.map((s) => runSeed(makeWorld(s, world), judge, s, checkpoints).checkpoints),
  );
for (const v of rest.filter((r) => !r.startsWith('--'))) {
  const settings = JSON.parse(v) as Record<string, unknown>;
  report(
    v,
    seeds.map((s) => runOurs(makeWorld(s, world), judge, s, { checkpoints, settings }).checkpoints),
  );
}
