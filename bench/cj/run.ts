/**
 * CJ engine benchmark: `node --import tsx bench/cj/run.ts [--quick] [--write]`.
 * Scenarios (issue #3): standard judge (lapse 0.05, bias 0.15, scale 1) and a noisier judge
 * (0.10, 0.3, 1.5); 60 essays + 12 anchors, θ ~ N(0, 1.5²), 6 grades; policies: ours (plan()),
 * random pairing (our estimator), the seed policy (seed-policy.ts); then our own stopping with
 * budget 600; then plan() timings. `--write` writes bench/cj/RESULTS.md.
 */
import { writeFileSync } from 'node:fs';
import { plan } from '../../runtime/src/cj/plan.js';
import { arg } from './cli.js';
import { type Metrics, runOurs, runRandom, runSeed } from './policies.js';
import { TIMING_SIZES, timingInput } from './timing-input.js';
import { type JudgeConfig, makeWorld } from './world.js';

const quick = process.argv.includes('--quick');
const write = process.argv.includes('--write');
/** `--only standard,stop,noisy,timing` runs a subset; `--seeds N` overrides the seed count. */
const only = new Set((arg('--only') ?? 'standard,stop,noisy,timing').split(','));
// 30 seeds (the issue asks for at least 10): a 10-seed mean of held-out-anchor coverage has a
// standard error of ≈ 0.035 (120 anchors), too coarse for a 0.75–0.85 target; 30 seeds ≈ 0.02.
const seeds = Array.from({ length: Number(arg('--seeds') ?? (quick ? 3 : 30)) }, (_, i) => i + 1);
const world = { students: 60, anchors: 12, grades: 6, sd: 1.5 };
const standard: JudgeConfig = { lapse: 0.05, bias: 0.15, scale: 1 };
const noisy: JudgeConfig = { lapse: 0.1, bias: 0.3, scale: 1.5 };
/** Extra settings for our engine while experimenting: CJ_SETTINGS='{"priorSd":2}'. */
const extra = JSON.parse(process.env.CJ_SETTINGS ?? '{}') as Record<string, unknown>;
const checkpoints = quick ? [120, 360, 600] : [120, 240, 360, 450, 600];

const mean = (xs: number[]): number => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length ? ok.reduce((s, x) => s + x, 0) / ok.length : Number.NaN;
};
const f = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
/** Mean ± standard error over seeds. */
const pm = (xs: number[], d = 3): string => {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length < 2) return f(mean(ok), d);
  const m = mean(ok);
  const se = Math.sqrt(ok.reduce((t, x) => t + (x - m) ** 2, 0) / (ok.length - 1) / ok.length);
  return `${m.toFixed(d)} ± ${se.toFixed(d)}`;
};
const lines: string[] = [];
const log = (s = ''): void => {
  lines.push(s);
  console.log(s);
};

function table(title: string, judge: JudgeConfig): void {
  const rows: Record<string, Metrics[][]> = { ours: [], random: [], seed: [] };
  let seedFired = 0;
  for (const s of seeds) {
    const w = makeWorld(s, world);
    rows.ours!.push(runOurs(w, judge, s, { checkpoints, settings: extra }).checkpoints);
    rows.random!.push(runRandom(w, judge, s, checkpoints));
    const sd = runSeed(w, judge, s, checkpoints);
    rows.seed!.push(sd.checkpoints);
    if (sd.stoppedAt !== null) seedFired++;
  }
  log(`### ${title}`);
  log();
  log(
    '| policy | comparisons | per essay | Spearman | Kendall | exact | adjacent | QWK | 80% cover (essays) | 80% cover (held-out anchors) | 80% width | mean P(modal) | not one-hot |',
  );
  log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, runs] of Object.entries(rows)) {
    checkpoints.forEach((cp, i) => {
      const ms = runs.map((r) => r[i]!);
      const g = (k: keyof Metrics) => mean(ms.map((m) => m[k] ?? Number.NaN));
      const e = (k: keyof Metrics, d = 3) =>
        pm(
          ms.map((m) => m[k] ?? Number.NaN),
          d,
        );
      log(
        `| ${name} | ${cp} | ${f(g('perEssay'), 1)} | ${e('spearman')} | ${f(g('kendall'))} | ${e('exact')} | ${f(g('adjacent'), 2)} | ${e('qwk')} | ${f(g('coverage'), 2)} | ${name === 'ours' ? e('anchorCoverage') : f(g('anchorCoverage'), 2)} | ${f(g('width'), 2)} | ${f(g('meanModal'), 2)} | ${f(g('notOneHot'), 2)} |`,
      );
    });
  }
  log();
  log(`Seed policy's max|Δθ| ≤ 0.025 rule fired before the budget in ${seedFired}/${seeds.length} seeds.`);
  log();
}

function stopping(): void {
  log('### Our own stopping (default settings, budget 600, standard judge)');
  log();
  log(
    '| seed | stopped by | comparisons | per essay | Spearman | exact | QWK | 80% cover (essays) | 80% cover (held-out anchors) |',
  );
  log('|---|---|---|---|---|---|---|---|---|');
  let early = 0;
  let good = 0;
  let earlyGood = 0;
  const all: Metrics[] = [];
  for (const s of seeds) {
    const r = runOurs(makeWorld(s, world), standard, s, { budget: 600, settings: extra });
    const m = r.stop!.metrics;
    all.push(m);
    if (r.stop!.reason !== 'budget') early++;
    if (m.spearman >= 0.95) good++;
    if (r.stop!.reason !== 'budget' && m.spearman >= 0.95) earlyGood++;
    log(
      `| ${s} | ${r.stop!.reason} | ${m.comparisons} | ${f(m.perEssay, 1)} | ${f(m.spearman)} | ${f(m.exact, 2)} | ${f(m.qwk)} | ${f(m.coverage, 2)} | ${f(m.anchorCoverage, 2)} |`,
    );
  }
  log();
  log(
    `Stopped by itself before the budget in ${early}/${seeds.length} seeds; early **and** Spearman ≥ 0.95 at the stop in ${earlyGood}/${seeds.length}; Spearman ≥ 0.95 at the end (early or budget) in ${good}/${seeds.length}; mean comparisons ${f(mean(all.map((m) => m.comparisons)), 0)}, mean Spearman ${f(mean(all.map((m) => m.spearman)))}.`,
  );
  log();
}

function timing(): void {
  log('### plan() time (one call, median of 5, includes fit, draws, grades, split-half, selection)');
  log();
  log('| essays | comparisons | anchors | ms |');
  log('|---|---|---|---|');
  for (const [n, m] of TIMING_SIZES) {
    const input = timingInput(n, m);
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      plan(input);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    log(`| ${n} | ${m} | ${input.essays.filter((e) => e.anchor).length} | ${f(times[2]!, 0)} |`);
  }
  log();
}

const t0 = Date.now();
log(
  `Seeds: ${seeds.length}${quick ? ' (quick)' : ''}; world: 60 essays + 12 anchors, θ ~ N(0, 1.5²), 6 grades.`,
);
log();
if (only.has('standard')) table('Standard judge (lapse 0.05, bias 0.15, scale 1)', standard);
if (only.has('stop')) stopping();
if (only.has('noisy')) table('Noisier judge (lapse 0.10, bias 0.3, scale 1.5)', noisy);
if (only.has('timing')) timing();
log(`Total benchmark time ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
if (write) writeFileSync(new URL('./RESULTS.tables.md', import.meta.url), `${lines.join('\n')}\n`);
