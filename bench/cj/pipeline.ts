/**
 * Pipelined rounds against round-by-round on the same worlds and seeds: does planning the next
 * pairs while earlier ones are still being judged cost accuracy at equal comparisons?
 *
 *   nice -n 10 node --import tsx bench/cj/pipeline.ts [--seeds 2001-2020] [--cells a,b]
 *     [--concurrency 8] [--low 16] [--warmup 0] [--pass N] [--independent] [--aa] [--out FILE]
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
 * The judge draws common random numbers: the k-th verdict on an ordered pair is the same draw in
 * both modes (`--independent` gives each mode its own judge stream, as runs before 2026-12-04 did).
 * Paired differences pipelined − rounds, mean ± paired SE, per cell and checkpoint, and pooled over
 * cells (each seed's mean difference over the cells, mean ± SE over seeds). "Not worse" is the
 * one-sided reading (Δ ≥ −1 SE, as bench/cj's grid judges ours against the seed policy): a
 * two-sided |Δ| ≤ 1 SE fails by chance in about a third of the rows even when nothing differs.
 * `--aa` (an A/A run): the second side is round by round as well, with its own plan seeds, so
 * the two designs are the same and every difference is chance; it shows how many rows the
 * one-SE rules fail when nothing differs (the rows are many and the rules one-sided at 1 SE).
 * Tuning: seeds 101+; report 2001+.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { Stopping } from '../../runtime/src/cj/types.js';
import { arg, readJsonl } from './cli.js';
import { f, mean, se, sgn } from './figures.js';
import { CELLS, type Cell, cellsArg, JUDGES, worldOf } from './grid.js';
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
  /** Common random numbers for the judge (absent in runs before the option existed: false). */
  crn?: boolean;
  /** Part of an A/A run (`--aa`): its 'pipelined' side is round by round with other plan seeds. */
  aa?: boolean;
}

const DEFAULT_RELIABILITY = Stopping.parse({}).reliability;

/** How the pipelined side calls plan(); the round-by-round side ignores all but `crn`. */
interface Pattern {
  concurrency: number;
  low: number;
  warmup: number;
  crn: boolean;
  /** Pairs a pipelined pass may plan (settings.roundSize); undefined = the default round size. */
  pass?: number;
  /** A/A: the 'pipelined' side runs round by round with other plan seeds. */
  aa?: boolean;
}

function simulate(cell: Cell, seed: number, mode: Mode, pattern: Pattern): PRun {
  const { concurrency, low, warmup, crn } = pattern;
  // In an A/A run the second side plans round by round too; only its plan seeds differ.
  const rounds = mode === 'rounds' || pattern.aa === true;
  const seedTag = mode === 'pipelined' && pattern.aa ? 'aa:' : '';
  const t0 = performance.now();
  const world: World = worldOf(cell, seed);
  const jcfg = JUDGES[cell.judge]!;
  const judgeRng = createRng(seed, `judge/${mode}`);
  // Common random numbers: the k-th verdict on an ordered pair is the same draw in both modes, so
  // the paired difference measures the designs, not two independent judges' luck.
  const seen = new Map<string, number>();
  const verdict = (a: string, b: string): 'a' | 'b' => {
    if (!crn) return judge(world, a, b, jcfg, judgeRng);
    const key = `${a}/${b}`;
    const k = seen.get(key) ?? 0;
    seen.set(key, k + 1);
    return judge(world, a, b, jcfg, createRng(seed, `judge/${key}/${k}`));
  };
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
  const out: PRun = {
    cell: cell.name,
    seed,
    mode,
    checkpoints: [],
    passes: 0,
    ms: 0,
    crn,
    ...(pattern.aa ? { aa: true } : {}),
  };
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
      settings: {
        ...settings,
        seed: `bench-${seed}:${seedTag}${out.passes}`,
        ...(!rounds && pattern.pass ? { roundSize: pattern.pass } : {}),
      },
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
    const k = rounds ? 0 : orderRng.int(Math.min(concurrency, queue.length));
    const [p] = queue.splice(k, 1);
    comparisons.push({ a: p!.a, b: p!.b, winner: verdict(p!.a, p!.b) });
    measure();
    if (more && queue.length <= (rounds || out.passes < warmup ? 0 : low)) more = pass();
    if (!more && queue.length === 0) break;
  }
  out.ms = performance.now() - t0;
  return out;
}

export function summarize(runs: PRun[]): string {
  const lines: string[] = [];
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  const judges = new Set(runs.map((r) => (r.crn ? 'common random numbers' : 'independent per mode')));
  const aa = runs.some((r) => r.aa);
  if (aa && !runs.every((r) => r.aa)) throw new Error('an A/A run and a pipelined run in one file');
  const second = aa ? 'rounds with other plan seeds (A/A: the same design)' : 'pipelined';
  const sides = aa ? "rounds / rounds'" : 'rounds / pipelined';
  lines.push(
    `Seeds ${seeds[0]}–${seeds.at(-1)} (${seeds.length}); judge draws: ${[...judges].join(' and ')}. Paired differences ${second} − rounds, mean ± paired SE; "within" = |Δ| ≤ 1 SE; "not worse" = Δ ≥ −1 SE.`,
    '',
    `| cell | comparisons | Spearman ${sides} | Δ Spearman | exact ${sides} | Δ exact | QWK ${sides} | Δ QWK | within | not worse |`,
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  const cells = [...new Set(runs.map((r) => r.cell))];
  // Per checkpoint index and metric: each seed's differences over the cells (for the pooled rows).
  const pooled = new Map<string, Map<number, number[]>>();
  const pool = (i: number, k: string, seed: number, d: number) => {
    const key = `${i}/${k}`;
    if (!pooled.has(key)) pooled.set(key, new Map());
    const bySeed = pooled.get(key)!;
    bySeed.set(seed, [...(bySeed.get(seed) ?? []), d]);
  };
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
        for (const [t, v] of d.entries()) pool(i, k, ok[t]!, v);
        return { x: mean(x), y: mean(y), d: mean(d), se: se(d) };
      };
      const sp = col('spearman');
      const ex = col('exact');
      const q = col('qwk');
      const within = [sp, ex, q].every((c) => Math.abs(c.d) <= c.se);
      const notWorse = [sp, ex, q].every((c) => c.d >= -c.se);
      lines.push(
        `| ${cell} | ${cp} | ${f(sp.x)} / ${f(sp.y)} | ${sgn(sp.d)} ± ${f(sp.se)} | ${f(ex.x)} / ${f(ex.y)} | ${sgn(ex.d)} ± ${f(ex.se)} | ${f(q.x)} / ${f(q.y)} | ${sgn(q.d)} ± ${f(q.se)} | ${within ? 'yes' : 'no'} | ${notWorse ? 'yes' : 'no'} |`,
      );
    });
    const st = (m: Map<number, PRun>) => paired.map((s) => m.get(s)!.stop).filter((x) => x !== undefined);
    const sa = st(a);
    const sb = st(b);
    lines.push(
      `| ${cell} | own stop | judged ${f(mean(sa.map((s) => s.judged)), 0)} / ${f(mean(sb.map((s) => s.judged)), 0)} (open at the stop ${f(mean(sb.map((s) => s.open)), 1)}) | | exact ${f(mean(sa.map((s) => s.metrics.exact)))} / ${f(mean(sb.map((s) => s.metrics.exact)))} | | QWK ${f(mean(sa.map((s) => s.metrics.qwk)))} / ${f(mean(sb.map((s) => s.metrics.qwk)))} | | | |`,
    );
  }
  if (cells.length > 1) {
    // One figure per checkpoint: each seed's mean difference over the cells, then mean ± SE over
    // seeds (the cells of a seed share nothing but the seed, so seeds are the independent units).
    lines.push('', '| pooled over cells | Δ Spearman | Δ exact | Δ QWK |', '|---|---|---|---|');
    const ladders = cells.map((c) => CELLS.find((x) => x.name === c)!.checkpoints);
    const n = Math.max(...ladders.map((l) => l.length));
    for (let i = 0; i < n; i++) {
      const at = [...new Set(ladders.map((l) => l[i]))];
      const col = (k: string) => {
        const per = [...(pooled.get(`${i}/${k}`)?.values() ?? [])].map(mean);
        return `${sgn(mean(per))} ± ${f(se(per))}`;
      };
      const label = at.length === 1 ? `${at[0]} comparisons` : `checkpoint ${i + 1}`;
      lines.push(`| ${label} | ${col('spearman')} | ${col('exact')} | ${col('qwk')} |`);
    }
  }
  const cpu = runs.reduce((t, r) => t + r.ms, 0) / 1000;
  lines.push(
    '',
    `CPU time in runs: ${f(cpu, 0)} s; passes per run rounds ${f(mean(runs.filter((r) => r.mode === 'rounds').map((r) => r.passes)), 1)}, pipelined ${f(mean(runs.filter((r) => r.mode === 'pipelined').map((r) => r.passes)), 1)}.`,
  );
  return lines.join('\n');
}

function main() {
  const summary = arg('--summary');
  const parse = (file: string) => readJsonl<PRun>(file);
  if (summary) {
    console.log(summarize(parse(summary)));
    return;
  }
  const [lo, hi] = (arg('--seeds') ?? '2001-2020').split('-').map(Number);
  const cells = cellsArg(arg('--cells') ?? 'standard/unequal,noisier/equal,position/unequal');
  const concurrency = Number(arg('--concurrency') ?? 8);
  const low = Number(arg('--low') ?? 2 * concurrency);
  const warmup = Number(arg('--warmup') ?? 0);
  const crn = !process.argv.includes('--independent');
  const pass = arg('--pass') === undefined ? undefined : Number(arg('--pass'));
  const aa = process.argv.includes('--aa');
  const pattern: Pattern = {
    concurrency,
    low,
    warmup,
    crn,
    ...(pass ? { pass } : {}),
    ...(aa ? { aa } : {}),
  };
  const outFile = arg('--out') ?? '/tmp/cj-pipeline.jsonl';
  writeFileSync(outFile, '');
  for (let s = lo!; s <= (hi ?? lo!); s++)
    for (const c of cells) {
      const cell = CELLS.find((x) => x.name === c)!;
      for (const mode of ['rounds', 'pipelined'] as const)
        appendFileSync(outFile, `${JSON.stringify(simulate(cell, s, mode, pattern))}\n`);
    }
  console.log(
    aa
      ? 'A/A: both sides round by round, the second with other plan seeds'
      : `concurrency ${concurrency}, re-plan when ${low} pairs are open${pass ? `, ${pass} pairs per pipelined pass` : ''}`,
  );
  console.log(summarize(parse(outFile)));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
