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
import { createRng } from '../../runtime/src/cj/rng.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const runs = Number(arg('--runs') ?? 5);
const baseDir = arg('--baseline');
type Plan = typeof plan;
const basePlan: Plan | undefined = baseDir
  ? ((await import(pathToFileURL(path.resolve(baseDir, 'runtime/src/cj/plan.ts')).href)) as { plan: Plan })
      .plan
  : undefined;

function input(n: number, m: number): Parameters<Plan>[0] {
  const rng = createRng(n, 'timing');
  const truth = Float64Array.from({ length: n }, () => 1.5 * rng.normal());
  const grades = ['G1', 'G2', 'G3', 'G4', 'G5', 'G6'];
  const step = Math.max(5, Math.floor(n / 12));
  const essays = Array.from({ length: n }, (_, i) =>
    i % step === 0 ? { id: `e${i}`, anchor: { grade: grades[(i / step) % 6]! } } : { id: `e${i}` },
  );
  const comparisons = Array.from({ length: m }, () => {
    const a = rng.int(n);
    const b = (a + 1 + rng.int(n - 1)) % n;
    const p = 0.025 + 0.95 / (1 + Math.exp(-(truth[a]! - truth[b]! + 0.15)));
    return { a: `e${a}`, b: `e${b}`, winner: (rng.next() < p ? 'a' : 'b') as 'a' | 'b' };
  });
  return { essays, grades, comparisons, settings: { roundSize: Math.ceil(n / 10), budget: 2 * m } };
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const time = (f: Plan, inp: Parameters<Plan>[0]): number => {
  const t0 = performance.now();
  f(inp);
  return performance.now() - t0;
};

console.log(`| essays | comparisons | ms (median of ${runs}) |${basePlan ? ' baseline ms | ratio |' : ''}`);
console.log(`|---|---|---|${basePlan ? '---|---|' : ''}`);
for (const [n, m] of [
  [60, 600],
  [390, 3900],
  [2000, 20000],
] as const) {
  const inp = input(n, m);
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
