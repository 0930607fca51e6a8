/**
 * Pipelined rounds against round-by-round on the same worlds and seeds: does planning the next
 * pairs while earlier ones are still being judged cost accuracy at equal comparisons?
 *
 *   nice -n 10 node --import tsx bench/cj/pipeline.ts [--seeds 2001-2020] [--cells a,b]
 *     [--concurrency 8] [--low 16] [--warmup 0] [--out FILE]
 *   node --import tsx bench/cj/pipeline.ts --summary FILE
 *
 * Round by round: plan(), judge every planned pair, plan again (what the round-by-round mode
 * does). Pipelined: the call pattern of the long-lived workers. Planned pairs form a queue; the
 * judge has `concurrency` of them in flight and returns them in random order; whenever the open
 * pairs (queued + in flight) fall to `low`, plan() runs with them as `pending` and appends its
 * pairs to the queue; its first `warmup` passes wait for an empty queue, as round by round does.
 * Both runs fit at every checkpoint with the verdicts judged so far (the same call for both, its
 * snapshot not kept), and both observe their own stopping with the default targets, as grid.ts
 * does (reliability target 1, so the run goes on to the budget).
 * Paired differences pipelined − rounds, mean ± paired SE. Tuning: seeds 101+; report 2001+.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { Stopping } from '../../runtime/src/cj/types.js';
import { CELLS, type Cell, JUDGES, worldOf } from './grid.js';
import { type Metrics, metricsOf } from './policies.js';
import { judge, type World } from './world.js';

type Mode = 'rounds' | 'pipelined';
interface PRun {
  cell: string;
  seed: number;
  mode: Mode;
  checkpoints: Metrics[];
  /** Where its own stopping would have stopped: judged comparisons, pairs open then, metrics. */
  stop?: { judged: number; open: number; metrics: Metrics };
  passes: number;
  ms: number;
}

const DEFAULT_RELIABILITY = Stopping.parse({}).reliability;

function simulate(cell: Cell, seed: number, mode: Mode, concurrency: number, low: number, warmup = 0): PRun {
  const t0 = performance.now();
  const world: World = worldOf(cell, seed);
  const jcfg = JUDGES[cell.judge]!;
  const judgeRng = createRng(seed, `judge/${mode}`);
  const orderRng = createRng(seed, 'arrival');
  const essays = world.ids.map((id) =>
    world.anchorIds.includes(id)
      ? { id, anchor: { grade: world.gradeLabels[world.grade.get(id)!]! } }
      : { id },
  );
  const comparisons: { a: string; b: string; winner: 'a' | 'b' }[] = [];
  const history: ReturnType<typeof plan>['snapshot'][] = [];
  const queue: { a: string; b: string }[] = [];
  const checkpoints = [...cell.checkpoints];
  const out: PRun = { cell: cell.name, seed, mode, checkpoints: [], passes: 0, ms: 0 };
  const settings = {
    seed: `bench-${seed}`,
    budget: cell.budget,
    splitHalf: false,
    stopping: { reliability: 1 },
  };
  const pass = (): boolean => {
    const res = plan({
      essays,
      grades: world.gradeLabels,
      comparisons,
      pending: [...queue],
      history,
      settings: { ...settings, seed: `bench-${seed}:${out.passes}` },
    });
    out.passes++;
    history.push(res.snapshot);
    const wouldStop =
      res.decision.reason === 'budget' ||
      res.decision.reason === 'exhausted' ||
      res.decision.checks.every((c) =>
        c.name === 'reliability' ? (c.value ?? -1) >= DEFAULT_RELIABILITY : c.pass,
      );
    if (!out.stop && wouldStop)
      out.stop = {
        judged: comparisons.length,
        open: queue.length,
        metrics: metricsOf(world, res, comparisons.length),
      };
    queue.push(...res.nextPairs.map((p) => ({ a: p.a, b: p.b })));
    return res.nextPairs.length > 0;
  };
  const measure = () => {
    while (checkpoints.length > 0 && comparisons.length >= checkpoints[0]!) {
      // The fit of the verdicts so far; its snapshot is not kept (it is a measurement, not a pass).
      const res = plan({
        essays,
        grades: world.gradeLabels,
        comparisons,
        history,
        settings: { ...settings, seed: `measure-${seed}` },
      });
      out.checkpoints.push(metricsOf(world, res, comparisons.length));
      checkpoints.shift();
    }
  };
  let more = pass();
  while (checkpoints.length > 0 && queue.length > 0) {
    // Rounds: the next verdict is the queue's head, the next pass waits for an empty queue.
    // Pipelined: any of the `concurrency` pairs in flight may come back first.
    const k = mode === 'rounds' ? 0 : orderRng.int(Math.min(concurrency, queue.length));
    const [p] = queue.splice(k, 1);
    comparisons.push({ a: p!.a, b: p!.b, winner: judge(world, p!.a, p!.b, jcfg, judgeRng) });
    measure();
    if (more && queue.length <= (mode === 'rounds' || out.passes < warmup ? 0 : low)) more = pass();
    if (!more && queue.length === 0) break;
  }
  out.ms = performance.now() - t0;
  return out;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const se = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((t, x) => t + (x - m) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);
};
const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const sgn = (x: number, d = 3) =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}` : '–';

export function summarize(runs: PRun[]): string {
  const lines: string[] = [];
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  lines.push(
    `Seeds ${seeds[0]}–${seeds.at(-1)} (${seeds.length}). Paired differences pipelined − rounds, mean ± paired SE; "within" = |Δ| ≤ 1 SE.`,
    '',
    '| cell | comparisons | Spearman rounds / pipelined | Δ Spearman | exact rounds / pipelined | Δ exact | QWK rounds / pipelined | Δ QWK | within |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  const cells = [...new Set(runs.map((r) => r.cell))];
  for (const cell of cells) {
    const by = (mode: Mode) =>
      new Map(runs.filter((r) => r.cell === cell && r.mode === mode).map((r) => [r.seed, r]));
    const a = by('rounds');
    const b = by('pipelined');
    const paired = [...a.keys()].filter((s) => b.has(s));
    const cps = CELLS.find((c) => c.name === cell)!.checkpoints;
    cps.forEach((cp, i) => {
      const ok = paired.filter((s) => a.get(s)!.checkpoints[i] && b.get(s)!.checkpoints[i]);
      const col = (k: keyof Metrics) => {
        const x = ok.map((s) => a.get(s)!.checkpoints[i]![k] as number);
        const y = ok.map((s) => b.get(s)!.checkpoints[i]![k] as number);
        const d = y.map((v, t) => v - x[t]!);
        return { x: mean(x), y: mean(y), d: mean(d), se: se(d) };
      };
      const sp = col('spearman');
      const ex = col('exact');
      const q = col('qwk');
      const within = [sp, ex, q].every((c) => Math.abs(c.d) <= c.se);
      lines.push(
        `| ${cell} | ${cp} | ${f(sp.x)} / ${f(sp.y)} | ${sgn(sp.d)} ± ${f(sp.se)} | ${f(ex.x)} / ${f(ex.y)} | ${sgn(ex.d)} ± ${f(ex.se)} | ${f(q.x)} / ${f(q.y)} | ${sgn(q.d)} ± ${f(q.se)} | ${within ? 'yes' : 'no'} |`,
      );
    });
    const st = (m: Map<number, PRun>) => paired.map((s) => m.get(s)!.stop).filter((x) => x !== undefined);
    const sa = st(a);
    const sb = st(b);
    lines.push(
      `| ${cell} | own stop | judged ${f(mean(sa.map((s) => s.judged)), 0)} / ${f(mean(sb.map((s) => s.judged)), 0)} (open at the stop ${f(mean(sb.map((s) => s.open)), 1)}) | | exact ${f(mean(sa.map((s) => s.metrics.exact)))} / ${f(mean(sb.map((s) => s.metrics.exact)))} | | QWK ${f(mean(sa.map((s) => s.metrics.qwk)))} / ${f(mean(sb.map((s) => s.metrics.qwk)))} | | |`,
    );
  }
  const cpu = runs.reduce((t, r) => t + r.ms, 0) / 1000;
  lines.push(
    '',
    `CPU time in runs: ${f(cpu, 0)} s; passes per run rounds ${f(mean(runs.filter((r) => r.mode === 'rounds').map((r) => r.passes)), 1)}, pipelined ${f(mean(runs.filter((r) => r.mode === 'pipelined').map((r) => r.passes)), 1)}.`,
  );
  return lines.join('\n');
}

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

function main() {
  const summary = arg('--summary');
  const parse = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as PRun);
  if (summary) {
    console.log(summarize(parse(summary)));
    return;
  }
  const [lo, hi] = (arg('--seeds') ?? '2001-2020').split('-').map(Number);
  const cells = (arg('--cells') ?? 'standard/unequal,noisier/equal,position/unequal').split(',');
  for (const c of cells) if (!CELLS.some((x) => x.name === c)) throw new Error(`--cells: unknown cell ${c}`);
  const concurrency = Number(arg('--concurrency') ?? 8);
  const low = Number(arg('--low') ?? 2 * concurrency);
  const warmup = Number(arg('--warmup') ?? 0);
  const outFile = arg('--out') ?? '/tmp/cj-pipeline.jsonl';
  writeFileSync(outFile, '');
  for (let s = lo!; s <= (hi ?? lo!); s++)
    for (const c of cells) {
      const cell = CELLS.find((x) => x.name === c)!;
      for (const mode of ['rounds', 'pipelined'] as const)
        appendFileSync(outFile, `${JSON.stringify(simulate(cell, s, mode, concurrency, low, warmup))}\n`);
    }
  console.log(`concurrency ${concurrency}, re-plan when ${low} pairs are open`);
  console.log(summarize(parse(outFile)));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
