/**
 * plan() time at 60, 390 and 2000 essays (one call: fit, draws, grades, split-half, selection),
 * median of 5, the same inputs as `run.ts --only timing`. On a shared machine absolute times say
 * little, so `--baseline DIR` times another copy of the engine in the same run, interleaved call
 * by call (for example the previous commit's, extracted with
 * `git archive HEAD~1 runtime/src/cj | tar -x -C .bench-baseline`), and prints the ratio.
 *
 *   node --import tsx bench/cj/timing.ts [--baseline .bench-baseline] [--runs 5]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { plan } from '../../runtime/src/cj/plan.js';
import { arg } from './cli.js';
import { TIMING_SIZES, timingInput } from './timing-input.js';

const runs = Number(arg('--runs') ?? 5);
const baseDir = arg('--baseline');
type Plan = typeof plan;
const basePlan: Plan | undefined = baseDir
  ? ((await import(pathToFileURL(path.resolve(baseDir, 'runtime/src/cj/plan.ts')).href)) as { plan: Plan })
      .plan
  : undefined;

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const time = (f: Plan, inp: Parameters<Plan>[0]): number => {
  const t0 = performance.now();
  f(inp);
  return performance.now() - t0;
};

console.log(`| essays | comparisons | ms (median of ${runs}) |${basePlan ? ' baseline ms | ratio |' : ''}`);
console.log(`|---|---|---|${basePlan ? '---|---|' : ''}`);
for (const [n, m] of TIMING_SIZES) {
  const inp = timingInput(n, m);
  const ours: number[] = [];
  const base: number[] = [];
  for (let r = 0; r < runs; r++) {
    ours.push(time(plan, inp));
    if (basePlan) base.push(time(basePlan, inp));
  }
  const o = median(ours);
  console.log(
    `| ${n} | ${m} | ${o.toFixed(0)} |${basePlan ? ` ${median(base).toFixed(0)} | ${(o / median(base)).toFixed(2)} |` : ''}`,
  );
}
console.log(
  `\n${new Date().toISOString().slice(0, 16)} UTC, ${execFileSync('nproc').toString().trim()} cores, load average ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')}`,
);
