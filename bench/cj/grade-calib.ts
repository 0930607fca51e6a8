/**
 * Where the grade probabilities' miscalibration comes from. One run of ours per (cell, seed)
 * (grid.ts's runOursGrid, default settings unless CJ_SETTINGS); at each checkpoint the grade
 * probabilities of the students are recomputed from the same posterior draws (plan.ts's
 * gradingInputs) with one part switched off at a time, and written with the true grades:
 *
 *   base        as plan() computes them (checked against its output);
 *   noWiden     without the judge's extra SD (differs only where the misperception test fired);
 *   noJitter    boundaries without the jitter τ_k (per-draw midpoints, still truncated to the gap);
 *   pointBound  the essay's score draws against fixed boundaries (the posterior-median ones);
 *   pointScore  the essay's posterior mean against per-draw boundaries;
 *   rearranged  boundaries from each draw with the anchors' values rearranged into grade order
 *               (sorted values handed out lowest grade first); rearrangedTau also takes τ from them;
 *   population  boundaries on the population scale (boundaryScale: population);
 *   ebPrior     base, after refitting with estimatePriorSd (empirical-Bayes prior SD);
 *   anchorOrder base, after refitting with anchorOrderSd 0.25 (anchors' grades in the fit).
 *
 *   node --import tsx bench/cj/grade-calib.ts --seeds 101-120 [--cells a,b] --out FILE
 *   node --import tsx bench/cj/grade-calib.ts --summary FILE
 *
 * Tuning seeds 101+ only.
 */
import { appendFileSync } from 'node:fs';
import {
  addGrade,
  boundaryJitter,
  drawBoundaries,
  gradeProjection,
  type PopulationScale,
  populationScales,
} from '../../runtime/src/cj/grades.js';
import { gradingInputs } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { arg, readJsonl } from './cli.js';
import { f } from './figures.js';
import { CELLS, cellsArg, JUDGES, runOursGrid, tuningSeeds, worldOf } from './grid.js';

type Inputs = ReturnType<typeof gradingInputs>;

const r3 = (p: ArrayLike<number>): number[] => Array.from(p, (v) => Math.round(v * 1000) / 1000);

/** The draw with the anchors' values sorted and handed out in grade order (rearrangement). */
function rearranged(d: Float64Array, anchors: Inputs['anchors']): Float64Array {
  const out = Float64Array.from(d);
  const byGrade = [...anchors].sort((x, y) => x.grade - y.grade || x.item - y.item);
  const values = Float64Array.from(byGrade, (a) => d[a.item]!).sort();
  byGrade.forEach((a, t) => {
    out[a.item] = values[t]!;
  });
  return out;
}

/** Probabilities with per-draw boundaries drawn by drawBoundaries; `point` fixes the essay's score at its mean. */
function perDraw(
  g: Inputs,
  opts: {
    tau: boolean;
    extra: number;
    point?: boolean;
    scales?: PopulationScale[];
    rearrange?: 'bounds' | 'both';
  },
): number[][] {
  const { anchors, K, students } = g;
  const draws = g.draws;
  const re = opts.rearrange ? draws.map((d) => rearranged(d, anchors)) : draws;
  const rng = createRng(g.seed, `grades/${g.m}`);
  const tau = opts.tau ? boundaryJitter(opts.rearrange === 'both' ? re : draws, anchors, K) : undefined;
  const counts = students.map(() => new Float64Array(K));
  draws.forEach((d, s) => {
    const b = drawBoundaries(re[s]!, anchors, K, rng, tau, opts.scales?.[s]);
    students.forEach((i, t) => {
      addGrade(counts[t]!, opts.point ? g.mean[i]! : d[i]!, b, opts.extra);
    });
  });
  return counts.map((c) => r3(Array.from(c, (v) => v / draws.length)));
}

function measureRow(cellName: string, seed: number, out: string): void {
  const cell = CELLS.find((c) => c.name === cellName)!;
  const world = worldOf(cell, seed);
  runOursGrid(world, JUDGES[cell.judge]!, seed, cell, (res, m, at, input) => {
    if (at === 'stop') return;
    const g = gradingInputs(input);
    const { draws, anchors, K, students } = g;
    const ids = students.map((i) => g.ids[i]!);
    const truth = ids.map((id) => world.grade.get(id)!);
    const gi = new Map(world.gradeLabels.map((l, t) => [l, t]));
    const byId = new Map(res.grades.map((r) => [r.id, r]));
    const scores = students.map((i) => g.mean[i]!);
    const median = ids.map((id) => gi.get(byId.get(id)!.assigned)!);
    const base = gradeProjection(draws, anchors, K, students, createRng(g.seed, `grades/${m}`), {
      decision: 'median',
      scores,
      scales: g.scales,
      extraSd: g.extraSd,
    });
    const variants: Record<string, number[][]> = {
      base: base.rows.map((r) => r3(r.probabilities)),
    };
    // Sanity: the recomputation is plan()'s own.
    const planP = ids.map((id) => byId.get(id)!.probabilities);
    const dev = Math.max(...variants.base!.flatMap((p, t) => p.map((v, h) => Math.abs(v - planP[t]![h]!))));
    if (dev > 0.002) throw new Error(`recomputed probabilities differ from plan()'s by ${dev}`);
    variants.noWiden =
      g.extraSd > 0
        ? gradeProjection(draws, anchors, K, students, createRng(g.seed, `grades/${m}`), {
            scores,
            scales: g.scales,
          }).rows.map((r) => r3(r.probabilities))
        : variants.base!;
    variants.noJitter = perDraw(g, { tau: false, extra: g.extraSd });
    // Fixed boundaries: the essay's score draws (and the extra SD) only.
    const b = base.boundaries;
    variants.pointBound = students.map((i) => {
      const c = new Float64Array(K);
      for (const d of draws) addGrade(c, d[i]!, b, g.extraSd);
      return r3(Array.from(c, (v) => v / draws.length));
    });
    variants.pointScore = perDraw(g, { tau: true, extra: g.extraSd, point: true });
    variants.rearranged = perDraw(g, { tau: true, extra: g.extraSd, rearrange: 'bounds' });
    // The median rule's grades with the setting, on the same draws (its point boundaries move too).
    const medianRearranged = gradeProjection(draws, anchors, K, students, createRng(g.seed, `grades/${m}`), {
      decision: 'median',
      scores,
      scales: g.scales,
      extraSd: g.extraSd,
      rearrange: true,
    }).rows.map((r) => r.assigned);
    variants.rearrangedTau = perDraw(g, { tau: true, extra: g.extraSd, rearrange: 'both' });
    variants.population = perDraw(g, {
      tau: true,
      extra: g.extraSd,
      scales: g.scales ?? populationScales(draws, students),
    });
    // The same verdicts refitted with one setting changed: the probabilities it gives.
    const refit = (patch: object): number[][] => {
      const r = gradingInputs({
        ...(input as object),
        settings: { ...((input as { settings?: object }).settings ?? {}), ...patch },
      } as Parameters<typeof gradingInputs>[0]);
      return gradeProjection(r.draws, r.anchors, K, r.students, createRng(r.seed, `grades/${m}`), {
        scales: r.scales,
        extraSd: r.extraSd,
      }).rows.map((x) => r3(x.probabilities));
    };
    variants.ebPrior = refit({ estimatePriorSd: true });
    // Anchors with their known grades in the fit (a soft order constraint, anchorOrderSd).
    variants.anchorOrder = refit({ anchorOrderSd: 0.25 });
    // Comparisons per essay, true and estimated scores: how far students and anchors are shrunk.
    const judged = new Map<string, number>();
    for (const c of (input as { comparisons: { a: string; b: string }[] }).comparisons) {
      judged.set(c.a, (judged.get(c.a) ?? 0) + 1);
      judged.set(c.b, (judged.get(c.b) ?? 0) + 1);
    }
    const row = {
      cell: cellName,
      seed,
      at,
      m,
      extraSd: g.extraSd,
      truth,
      median,
      medianRearranged,
      scores: r3(scores),
      boundaries: r3(b),
      theta: r3(ids.map((id) => world.theta.get(id)!)),
      nStudent: ids.map((id) => judged.get(id) ?? 0),
      anchors: anchors.map((x) => [
        x.grade,
        Math.round(world.theta.get(g.ids[x.item]!)! * 1000) / 1000,
        Math.round(g.mean[x.item]! * 1000) / 1000,
        judged.get(g.ids[x.item]!) ?? 0,
      ]),
      cuts: r3(world.cuts),
      variants,
    };
    appendFileSync(out, `${JSON.stringify(row)}\n`);
  });
}

interface Row {
  at: number;
  truth: number[];
  median: number[];
  variants: Record<string, number[][]>;
}

/** Per variant and budget: P(outer grades), P(outward of the median's grade), spread ratio, Brier, log score. */
function summarize(rows: Row[]): string {
  const K = rows[0]!.variants.base![0]!.length;
  const mid = (K - 1) / 2;
  const ats = [...new Set(rows.map((r) => r.at))].sort((x, y) => x - y);
  const budget = (at: number): string => String(CELLS[0]!.checkpoints[at]);
  const lines: string[] = [
    `${rows.length} checkpoint rows. Per budget (${ats.map(budget).join(' · ')}): predicted / realised; spread ratio = E(true − predicted mean)² / E(predicted variance) in grades (< 1: too wide).`,
    '',
    '| variant | P(outer) / realised | P(outward of median) / realised | spread ratio | Brier | log score |',
    '|---|---|---|---|---|---|',
  ];
  for (const v of Object.keys(rows[0]!.variants)) {
    const cols: string[][] = [[], [], [], [], []];
    for (const at of ats) {
      const t = { pOuter: 0, tOuter: 0, pOut: 0, tOut: 0, sq: 0, vr: 0, brier: 0, log: 0, n: 0 };
      for (const r of rows.filter((x) => x.at === at))
        r.variants[v]!.forEach((raw, i) => {
          const total = raw.reduce((x, y) => x + y, 0) || 1;
          const p = raw.map((x) => x / total);
          const truth = r.truth[i]!;
          const med = r.median[i]!;
          const outward = (g: number): boolean => Math.abs(g - mid) > Math.abs(med - mid);
          const m = p.reduce((x, y, g) => x + g * y, 0);
          t.pOuter += p[0]! + p[K - 1]!;
          t.tOuter += truth === 0 || truth === K - 1 ? 1 : 0;
          t.pOut += p.reduce((x, y, g) => x + (outward(g) ? y : 0), 0);
          t.tOut += outward(truth) ? 1 : 0;
          t.sq += (truth - m) ** 2;
          t.vr += p.reduce((x, y, g) => x + y * (g - m) ** 2, 0);
          t.brier += p.reduce((x, y, g) => x + (y - (g === truth ? 1 : 0)) ** 2, 0);
          t.log += -Math.log(Math.max(p[truth]!, 0.0025));
          t.n++;
        });
      cols[0]!.push(`${f(t.pOuter / t.n)}/${f(t.tOuter / t.n)}`);
      cols[1]!.push(`${f(t.pOut / t.n)}/${f(t.tOut / t.n)}`);
      cols[2]!.push(f(t.sq / t.vr, 2));
      cols[3]!.push(f(t.brier / t.n));
      cols[4]!.push(f(t.log / t.n));
    }
    lines.push(`| ${v} | ${cols.map((c) => c.join(' · ')).join(' | ')} |`);
  }
  return lines.join('\n');
}

const summaryFile = arg('--summary');
if (summaryFile) {
  console.log(summarize(readJsonl<Row>(summaryFile)));
  process.exit(0);
}

const seeds = tuningSeeds(arg('--seeds') ?? '101-120');
const cells = cellsArg(arg('--cells'));
const out = arg('--out') ?? '/tmp/cj-grade-calib.jsonl';
for (const s of seeds) for (const c of cells) measureRow(c, s, out);
