/**
 * Simulator audit: the seed policy under each reading of the judge and world
 * (`node --import tsx bench/cj/audit.ts [seeds]`). See README.md.
 */
import { runSeed } from './policies.js';
import { type JudgeConfig, makeWorld, type WorldConfig } from './world.js';

const nSeeds = Number(process.argv[2] ?? 10);
const seeds = Array.from({ length: nSeeds }, (_, i) => i + 1);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const judges: [string, JudgeConfig][] = [
  ['logistic σ(Δ/s+β)', { lapse: 0.05, bias: 0.15, scale: 1, noise: 'logistic' }],
  ['thurstone Φ(Δ/(s√2)+β)', { lapse: 0.05, bias: 0.15, scale: 1, noise: 'thurstone' }],
  ['probit Φ(Δ/s+β)', { lapse: 0.05, bias: 0.15, scale: 1, noise: 'probit' }],
];
const worlds: [string, WorldConfig][] = [
  ['anchors drawn in band', { students: 60, anchors: 12, grades: 6, sd: 1.5, anchorPlacement: 'band' }],
  [
    'anchors at band quantiles',
    { students: 60, anchors: 12, grades: 6, sd: 1.5, anchorPlacement: 'quantile' },
  ],
];
console.log('| judge | anchors | budget | Spearman (60) | Spearman (72) | exact | QWK |');
console.log('|---|---|---|---|---|---|---|');
for (const [jn, j] of judges) {
  for (const [wn, w] of worlds) {
    const runs = seeds.map((s) => runSeed(makeWorld(s, w), j, s, [120, 600]).checkpoints);
    [120, 600].forEach((cp, i) => {
      const ms = runs.map((r) => r[i]!);
      console.log(
        `| ${jn} | ${wn} | ${cp} | ${mean(ms.map((m) => m.spearman)).toFixed(3)} | ${mean(ms.map((m) => m.spearmanAll ?? Number.NaN)).toFixed(3)} | ${mean(ms.map((m) => m.exact)).toFixed(2)} | ${mean(ms.map((m) => m.qwk)).toFixed(3)} |`,
      );
    });
  }
}
