/**
 * Replays stop rules on grid runs recorded with CJ_TRACE=1 (tuning seeds only): stopping never
 * changes the pairs chosen, so a rule's stop, its comparisons and the grades there are exact.
 *
 *   CJ_TRACE=1 node --import tsx bench/cj/grid.ts --seeds 101-130 --cells … --out T.jsonl
 *   node --import tsx bench/cj/stop-replay.ts T.jsonl[,U.jsonl] [--search] [--joint]
 *
 * Prints, per rule and cell, what grid.ts's own-stopping table prints (early share, comparisons
 * as a share of the seed policy's budget, Δ exact and Δ QWK against the seed policy at its budget,
 * pass), with `--search` the best of a grid of thresholds, and with `--joint` a larger search
 * scored jointly over all cells (cells passing, then the worst cell's margin in paired SEs), with
 * rule families the engine could build from what it already computes (see `joint`). Rules:
 * - `default`: every check at the engine's defaults (`Stopping` in types.ts);
 * - `never`: run to the budget (the engine's lead at the budget: no stop can do better on grades);
 * - `first round at ≥ N%`: stop at a fixed share of the budget, whatever the checks say;
 * - `gain`: the grade-decision rule tried in 2026-12-03: also stop when the comparisons left in
 *   the budget are expected to correct at most a share `t` of the grades (`budgetGain` below).
 */
import { normCdf, normInv } from '../../runtime/src/cj/stats.js';
import { Stopping } from '../../runtime/src/cj/types.js';
import { readJsonl } from './cli.js';
import { mean, se, sgn } from './figures.js';
import { CELLS, type Cell, type Run, type TraceRow } from './grid.js';

const DEFAULTS = Stopping.parse({});

interface Targets {
  reliability: number;
  expectedSpearman: number;
  rankStability: number;
  maxGradeChanges: number;
  gradeConfidence: number;
  /** budgetGain threshold (0: unused): `or` also stops when it is ≤ gain and the floor checks
   * pass; `and` needs it on top of the checks. */
  gain: number;
  gainMode: 'or' | 'and';
  /** Stop at this share of the budget whatever the checks say (0: never). */
  at: number;
  /** gradeConfidence target + gcSlope · ln(students / 60): a target that scales with the class. */
  gcSlope: number;
  /** Plateau (0: unused): also stop, once the floor checks and reliability pass, when
   * gradeConfidence rose by at most `plateau` over the last `window` share of the budget. */
  plateau: number;
  window: number;
  /** Also stop at this share of the budget (0: never): a cap on top of the checks. */
  cap: number;
}
const BASE: Targets = {
  ...DEFAULTS,
  gain: 0,
  gainMode: 'or',
  at: 0,
  gcSlope: 0,
  plateau: 0,
  window: 0.1,
  cap: 0,
};

const floor = (r: TraceRow): boolean =>
  r.checks.connected === 1 && (r.checks.minPerEssay ?? 0) >= DEFAULTS.minPerEssay;

function checks(r: TraceRow, t: Targets): boolean {
  const c = r.checks;
  return (
    floor(r) &&
    (c.reliability ?? -1) >= t.reliability &&
    (c.expectedSpearman ?? -1) >= t.expectedSpearman &&
    (c.rankStability ?? -1) >= t.rankStability &&
    (c.gradeStability ?? 2) <= t.maxGradeChanges &&
    (c.gradeConfidence ?? -1) >= t.gradeConfidence
  );
}

// ---------------------------------------------------------------- expected grade gain

const NODES = Array.from({ length: 41 }, (_, j) => -4 + j * 0.2);
const WEIGHTS = (() => {
  const w = NODES.map((z) => Math.exp((-z * z) / 2));
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
})();

/**
 * Expected gain in P(the median grade is right) for one essay when its posterior variance
 * shrinks by the factor r (pre-posterior analysis on a normal latent score): with P(grade ≤ k) =
 * Φ(z_k), a posterior of variance r·s² centred at μ + s√(1−r)·Z gives P'(grade ≤ k) =
 * Φ((z_k − √(1−r)·Z)/√r); the gain is E_Z[P'(median')] − P(median).
 */
export function essayGain(p: number[], r: number): number {
  const K = p.length;
  const cum: number[] = [];
  let s = 0;
  for (let k = 0; k < K - 1; k++) {
    s += p[k]!;
    cum.push(Math.min(1 - 1e-4, Math.max(1e-4, s)));
  }
  const z = cum.map(normInv);
  const median = (cc: number[]): number => {
    const g = cc.findIndex((x) => x >= 0.5);
    return g < 0 ? K - 1 : g;
  };
  const probOf = (cc: number[], g: number): number => (g < K - 1 ? cc[g]! : 1) - (g > 0 ? cc[g - 1]! : 0);
  const now = probOf(cum, median(cum));
  const a = Math.sqrt(1 - r);
  const b = Math.sqrt(r);
  let future = 0;
  NODES.forEach((Z, j) => {
    const cc = z.map((zk) => normCdf((zk - a * Z) / b));
    future += WEIGHTS[j]! * probOf(cc, median(cc));
  });
  return future - now;
}

/** Expected share of grades the rest of the budget would correct (variance ∝ 1/comparisons). */
function budgetGain(row: TraceRow, budget: number): number {
  if (row.m >= budget || !row.probs) return 0;
  const r = Math.max(row.m, 1) / budget;
  return row.probs.reduce((t, p) => t + essayGain(p, r), 0) / row.probs.length;
}

// ---------------------------------------------------------------- replay

interface CellRuns {
  cell: Cell;
  ours: Run[];
  /** The seed policy's metrics at its budget, paired with `ours`. */
  seed: Run['checkpoints'];
  gains: number[][];
}

function stopRow(run: Run, gains: number[], cell: Cell, t: Targets): TraceRow {
  const rows = run.trace!;
  const i = rows.findIndex(
    (r, k) =>
      r.m >= cell.budget ||
      (t.at > 0 && r.m >= t.at * cell.budget) ||
      (t.at === 0 &&
        (t.gain > 0 && t.gainMode === 'and'
          ? checks(r, t) && gains[k]! <= t.gain
          : checks(r, t) || (t.gain > 0 && floor(r) && gains[k]! <= t.gain))),
  );
  return rows[i < 0 ? rows.length - 1 : i]!;
}

function evaluate(data: CellRuns[], t: Targets): { pass: number; lines: string[]; fails: string[] } {
  let pass = 0;
  const lines: string[] = [];
  const fails: string[] = [];
  for (const { cell, ours, seed, gains } of data) {
    const stops = ours.map((r, k) => stopRow(r, gains[k]!, cell, t));
    const early = mean(stops.map((s) => (s.m < cell.budget ? 1 : 0)));
    const used = mean(stops.map((s) => s.m)) / cell.budget;
    const dEx = stops.map((s, k) => s.exact - seed[k]!.exact);
    const dQ = stops.map((s, k) => s.qwk - seed[k]!.qwk);
    const ok = early >= 0.8 && used <= cell.stopShare && mean(dEx) >= -se(dEx) && mean(dQ) >= -se(dQ);
    if (ok) pass++;
    else fails.push(cell.name);
    lines.push(
      `| ${cell.name} | ${ours.length} | ${early.toFixed(2)} | ${used.toFixed(2)} | ${sgn(mean(dEx))} ± ${se(dEx).toFixed(3)} | ${sgn(mean(dQ))} ± ${se(dQ).toFixed(3)} | ${ok ? 'yes' : '**no**'} |`,
    );
  }
  return { pass, lines, fails };
}

// ---------------------------------------------------------------- joint search

/** One run's trace as columns (the checks as `checks` reads them), for a fast replay. */
interface Cols {
  m: number[];
  floor: boolean[];
  rel: number[];
  es: number[];
  rs: number[];
  gs: number[];
  gc: number[];
  gain: number[];
  exact: number[];
  qwk: number[];
  /** Rows per share of the budget (rounds are evenly spaced). */
  rowsPerBudget: number;
}

function columns(run: Run, gains: number[], budget: number): Cols {
  const rows = run.trace!;
  const step = (rows.at(-1)!.m - rows[0]!.m) / Math.max(1, rows.length - 1);
  return {
    m: rows.map((r) => r.m),
    floor: rows.map(floor),
    rel: rows.map((r) => r.checks.reliability ?? -1),
    es: rows.map((r) => r.checks.expectedSpearman ?? -1),
    rs: rows.map((r) => r.checks.rankStability ?? -1),
    gs: rows.map((r) => r.checks.gradeStability ?? 2),
    gc: rows.map((r) => r.checks.gradeConfidence ?? -1),
    gain: gains,
    exact: rows.map((r) => r.exact),
    qwk: rows.map((r) => r.qwk),
    rowsPerBudget: budget / step,
  };
}

function stopIndex(c: Cols, cell: Cell, t: Targets): number {
  const gcT = t.gradeConfidence + t.gcSlope * Math.log(cell.students / 60);
  const lag = Math.max(1, Math.round(t.window * c.rowsPerBudget));
  for (let k = 0; k < c.m.length; k++) {
    const m = c.m[k]!;
    if (m >= cell.budget || (t.cap > 0 && m >= t.cap * cell.budget)) return k;
    if (t.at > 0) {
      if (m >= t.at * cell.budget) return k;
      continue;
    }
    if (!c.floor[k]) continue;
    const relOk = c.rel[k]! >= t.reliability;
    let ok =
      relOk &&
      (t.expectedSpearman <= 0 || c.es[k]! >= t.expectedSpearman) &&
      c.rs[k]! >= t.rankStability &&
      c.gs[k]! <= t.maxGradeChanges &&
      c.gc[k]! >= gcT;
    if (t.gain > 0) ok = t.gainMode === 'and' ? ok && c.gain[k]! <= t.gain : ok || c.gain[k]! <= t.gain;
    if (t.plateau > 0 && !ok && relOk && k >= lag) ok = c.gc[k]! - c.gc[k - lag]! <= t.plateau;
    if (ok) return k;
  }
  return c.m.length - 1;
}

interface CellScore {
  early: number;
  used: number;
  dEx: number;
  seEx: number;
  dQ: number;
  seQ: number;
  pass: boolean;
  /** Paired SEs above the −1 SE line on the worse of exact and QWK (≥ 0 passes). */
  margin: number;
  /** Why it fails: E early share, S comparisons share, X exact, Q QWK. */
  why: string;
}

function scoreCell(cols: Cols[], seed: Run['checkpoints'], cell: Cell, t: Targets): CellScore {
  const ks = cols.map((c) => stopIndex(c, cell, t));
  const early = mean(ks.map((k, i) => (cols[i]!.m[k]! < cell.budget ? 1 : 0)));
  const used = mean(ks.map((k, i) => cols[i]!.m[k]!)) / cell.budget;
  const dEx = ks.map((k, i) => cols[i]!.exact[k]! - seed[i]!.exact);
  const dQ = ks.map((k, i) => cols[i]!.qwk[k]! - seed[i]!.qwk);
  const [mx, sx, mq, sq] = [mean(dEx), se(dEx), mean(dQ), se(dQ)];
  const margin = Math.min(mx / sx + 1, mq / sq + 1);
  const why =
    (early < 0.8 ? 'E' : '') +
    (used > cell.stopShare ? 'S' : '') +
    (mx < -sx ? 'X' : '') +
    (mq < -sq ? 'Q' : '');
  return { early, used, dEx: mx, seEx: sx, dQ: mq, seQ: sq, pass: why === '', margin, why };
}

const describe = (t: Targets): string =>
  t.at > 0
    ? `first round at ≥ ${t.at} of the budget`
    : [
        `rel ${t.reliability}`,
        `eSp ${t.expectedSpearman || 'off'}`,
        `rankStab ${t.rankStability}`,
        `maxGradeCh ${t.maxGradeChanges}`,
        `gradeConf ${t.gradeConfidence}${t.gcSlope ? ` + ${t.gcSlope}·ln(n/60)` : ''}`,
        t.gain > 0 ? `gain ${t.gainMode} ${t.gain}` : '',
        t.plateau > 0 ? `or gradeConf plateau ≤ ${t.plateau} over ${t.window} budget` : '',
        t.cap > 0 ? `cap ${t.cap}` : '',
      ]
        .filter(Boolean)
        .join(', ');

/** A grid of rules: each dimension's values, and the rule at given indices. */
interface Family {
  name: string;
  dims: [keyof Targets, (number | string)[]][];
}

function* rulesOf(f: Family): Generator<{ t: Targets; idx: number[] }> {
  const idx = f.dims.map(() => 0);
  for (;;) {
    const t = { ...BASE } as Record<string, unknown>;
    f.dims.forEach(([k, vs], d) => {
      const v = vs[idx[d]!]!;
      if (k === 'gain' && typeof v === 'string') {
        const [mode, g] = v.split(' ');
        t.gainMode = mode;
        t.gain = Number(g);
      } else t[k] = v;
    });
    yield { t: t as unknown as Targets, idx: [...idx] };
    let d = 0;
    while (d < idx.length && ++idx[d]! >= f.dims[d]![1].length) idx[d++] = 0;
    if (d === idx.length) return;
  }
}

const GAINS = ['or 0', 'or 0.03', 'or 0.04', 'or 0.05', 'and 0.03', 'and 0.04', 'and 0.06'];
const FAMILIES: Family[] = [
  {
    name: 'thresholds on the current checks (+ budgetGain)',
    dims: [
      ['reliability', [0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91]],
      ['expectedSpearman', [0, 0.94, 0.945, 0.95, 0.955, 0.96]],
      ['rankStability', [0.98, 0.985, 0.99]],
      ['maxGradeChanges', [0.1, 0.15, 0.2, 0.25, 1]],
      ['gradeConfidence', [0, 0.5, 0.52, 0.54, 0.55, 0.56, 0.57, 0.58, 0.6]],
      ['gain', GAINS],
    ],
  },
  {
    name: 'strict checks, or a grade-confidence plateau',
    dims: [
      ['reliability', [0.8, 0.83, 0.85, 0.87, 0.88]],
      ['expectedSpearman', [0, 0.95]],
      ['gradeConfidence', [0.55, 0.57, 0.6, 0.62, 0.65]],
      ['plateau', [0.005, 0.01, 0.02, 0.03]],
      ['window', [0.1, 0.15, 0.2]],
    ],
  },
  {
    name: 'checks, capped at a share of the budget',
    dims: [
      ['reliability', [0.86, 0.88, 0.9, 0.92]],
      ['expectedSpearman', [0, 0.95, 0.96]],
      ['gradeConfidence', [0.55, 0.57, 0.6, 0.62, 0.65]],
      ['cap', [0.7, 0.75, 0.78]],
    ],
  },
];

const prepare = (data: CellRuns[]) =>
  data.map((d) => ({ ...d, cols: d.ours.map((r, k) => columns(r, d.gains[k]!, d.cell.budget)) }));

function jointTable(data: CellRuns[], t: Targets): void {
  console.log('| cell | runs | early | comparisons / budget | Δ exact | Δ QWK | margin (SE) | pass |');
  console.log('|---|---|---|---|---|---|---|---|');
  let pass = 0;
  for (const d of prepare(data)) {
    const s = scoreCell(d.cols, d.seed, d.cell, t);
    if (s.pass) pass++;
    console.log(
      `| ${d.cell.name} | ${d.ours.length} | ${s.early.toFixed(2)} | ${s.used.toFixed(2)} | ${sgn(s.dEx)} ± ${s.seEx.toFixed(3)} | ${sgn(s.dQ)} ± ${s.seQ.toFixed(3)} | ${s.margin.toFixed(1)} | ${s.pass ? 'yes' : `**no** (${s.why})`} |`,
    );
  }
  console.log(`${pass}/${data.length} cells pass.`);
}

function joint(data: CellRuns[]): void {
  const prepared = prepare(data);
  const names = data.map((d) => d.cell.name);
  const small = data.flatMap((d, i) => (d.cell.students === 60 ? [i] : []));
  const table = (t: Targets): void => jointTable(data, t);
  for (const f of FAMILIES) {
    const all: { t: Targets; idx: number[]; s: CellScore[]; pass: number; pass60: number; worst: number }[] =
      [];
    for (const { t, idx } of rulesOf(f)) {
      const s = prepared.map((d) => scoreCell(d.cols, d.seed, d.cell, t));
      const pass = s.filter((x) => x.pass).length;
      const pass60 = small.filter((i) => s[i]!.pass).length;
      // Worst cell: a failing cell's shortfall counts as below any passing cell's margin.
      const worst = Math.min(...s.map((x) => (x.pass ? x.margin : x.margin - 100)));
      all.push({ t, idx, s, pass, pass60, worst });
    }
    const hist = new Map<number, number>();
    for (const r of all) hist.set(r.pass, (hist.get(r.pass) ?? 0) + 1);
    console.log(`\n## Joint search: ${f.name} (${all.length} rules)`);
    console.log(
      `Cells passed: ${[...hist]
        .sort((a, b) => b[0] - a[0])
        .map(([p, n]) => `${p}/${data.length}: ${n}`)
        .join(
          ', ',
        )}. Pass all ${small.length} cells at 60 essays: ${all.filter((r) => r.pass60 === small.length).length}.`,
    );
    const perCell = names.map((n, i) => `${n} ${all.filter((r) => r.s[i]!.pass).length}`);
    console.log(`Rules passing each cell: ${perCell.join(', ')}.`);
    // Which cell holds the others back: the most cells passed by one rule with that cell ignored.
    console.log(
      `Cells passed by one rule with one cell ignored: ${names
        .map(
          (n, i) => `${n} ${Math.max(...all.map((r) => r.pass - (r.s[i]!.pass ? 1 : 0)))}/${data.length - 1}`,
        )
        .join(', ')}.`,
    );
    // How far each cell is from passing at best: its largest margin among the rules that stop
    // early often enough and within the comparisons share (negative: out of the family's reach).
    console.log(
      `Best margin per cell among rules meeting the early and share targets: ${names
        .map((n, i) => {
          const ok = all.filter((r) => !/[ES]/.test(r.s[i]!.why));
          return `${n} ${ok.length ? Math.max(...ok.map((r) => r.s[i]!.margin)).toFixed(1) : '—'}`;
        })
        .join(', ')}.`,
    );
    // Cells no rule passes even alone are out of reach of the family; the conflicts are the pairs
    // of cells each passed by some rule but never by the same one.
    const reach = names.map((_, i) => all.some((r) => r.s[i]!.pass));
    console.log(`No rule passes: ${names.filter((_, i) => !reach[i]).join(', ') || 'none'}.`);
    const pairs: string[] = [];
    for (let i = 0; i < names.length; i++)
      for (let j = i + 1; j < names.length; j++)
        if (reach[i] && reach[j] && !all.some((r) => r.s[i]!.pass && r.s[j]!.pass))
          pairs.push(`${names[i]} × ${names[j]}`);
    console.log(`Cells each passable but never together: ${pairs.join('; ') || 'none'}.`);
    all.sort((a, b) => b.pass - a.pass || b.worst - a.worst);
    const failSets = new Map<string, number>();
    for (const r of all.filter((x) => x.pass === all[0]!.pass)) {
      const k = names.filter((_, i) => !r.s[i]!.pass).join(' + ');
      failSets.set(k, (failSets.get(k) ?? 0) + 1);
    }
    console.log(
      `Cells failed by the rules passing the most: ${[...failSets]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} (${n} rules)`)
        .join('; ')}.`,
    );
    const key = (idx: number[]): string => idx.join(',');
    const byIdx = new Map(all.map((r) => [key(r.idx), r]));
    for (const r of all.slice(0, 5)) {
      // Neighbours: one step along one dimension of the grid.
      const nb = f.dims.flatMap((_, d) =>
        [-1, 1].map((st) => byIdx.get(key(r.idx.map((v, e) => (e === d ? v + st : v))))).filter(Boolean),
      );
      console.log(
        `- ${describe(r.t)}: ${r.pass}/${data.length} cells, worst margin ${r.pass === data.length ? r.worst.toFixed(1) : '—'}; neighbours passing as many: ${nb.filter((x) => x!.pass >= r.pass).length}/${nb.length}; fails ${
          r.s
            .map((x, i) => (x.pass ? '' : `${names[i]} (${x.why})`))
            .filter(Boolean)
            .join(', ') || 'none'
        }`,
      );
    }
    const best = all[0]!;
    console.log(`\nBest: ${describe(best.t)}`);
    table(best.t);
    // How each cell reacts to the grade-confidence and reliability targets around the best rule.
    for (const dim of ['gradeConfidence', 'reliability'] as const) {
      const d = f.dims.findIndex(([k]) => k === dim);
      if (d < 0) continue;
      console.log(`\nAround the best rule, by ${dim} (cell: pass or E/S/X/Q):`);
      console.log(`| cell | ${f.dims[d]![1].join(' | ')} |`);
      console.log(`|---|${f.dims[d]![1].map(() => '---|').join('')}`);
      const rs = f.dims[d]![1].map((_, v) => byIdx.get(key(best.idx.map((x, e) => (e === d ? v : x))))!);
      for (const [i, n] of names.entries())
        console.log(`| ${n} | ${rs.map((r) => (r.s[i]!.pass ? 'ok' : r.s[i]!.why)).join(' | ')} |`);
    }
    // A target that scales with the class: the best 60-essay rules, with the 200-essay cell
    // passing at another grade-confidence target and everything else the same.
    const gcD = f.dims.findIndex(([k]) => k === 'gradeConfidence');
    const big = names.findIndex((_, i) => !small.includes(i));
    if (gcD >= 0 && big >= 0) {
      const best60 = all.filter((r) => r.pass60 === Math.max(...all.map((x) => x.pass60)));
      const scaled = best60.filter((r) =>
        f.dims[gcD]![1].some(
          (_, v) => byIdx.get(key(r.idx.map((x, e) => (e === gcD ? v : x))))!.s[big]!.pass,
        ),
      );
      console.log(
        `\nBest at 60 essays: ${best60[0]!.pass60}/${small.length} cells (${best60.length} rules); of those, ${scaled.length} also pass the 200-essay cell with another grade-confidence target (a target scaled with the class).`,
      );
    }
  }
}

function main(): void {
  const runs = readJsonl<Run>(process.argv[2]!);
  const data: CellRuns[] = [];
  for (const cell of CELLS) {
    const seedRuns = new Map(
      runs.filter((r) => r.cell === cell.name && r.policy === 'seed').map((r) => [r.seed, r]),
    );
    const ours = runs.filter(
      (r) => r.cell === cell.name && r.policy === 'ours' && r.trace && seedRuns.has(r.seed),
    );
    if (ours.length < 2) continue;
    data.push({
      cell,
      ours,
      seed: ours.map((r) => seedRuns.get(r.seed)!.checkpoints.at(-1)!),
      gains: ours.map((r) => r.trace!.map((row) => budgetGain(row, cell.budget))),
    });
  }
  const seeds = [...new Set(data.flatMap((d) => d.ours.map((r) => r.seed)))].sort((a, b) => a - b);
  console.log(
    `Seeds ${seeds[0]}–${seeds.at(-1)} (${seeds.length}); paired with the seed policy at its budget.`,
  );
  const named: [string, Targets][] = [
    ['default', BASE],
    ['never (run to the budget)', { ...BASE, reliability: 2 }],
    ['first round at ≥ 70% of the budget', { ...BASE, at: 0.7 }],
    ['first round at ≥ 80% of the budget', { ...BASE, at: 0.8 }],
    ['default, or budgetGain ≤ 0.04', { ...BASE, gain: 0.04 }],
    ['default and budgetGain ≤ 0.04', { ...BASE, gain: 0.04, gainMode: 'and' }],
    [
      'budgetGain ≤ 0.04 instead of the grade checks',
      { ...BASE, gradeConfidence: -1, maxGradeChanges: 2, gain: 0.04, gainMode: 'and' },
    ],
  ];
  for (const [name, t] of named) {
    const res = evaluate(data, t);
    console.log(`\n${name}: ${res.pass}/${data.length} cells pass`);
    console.log('| cell | runs | early | comparisons / budget | Δ exact | Δ QWK | pass |');
    console.log('|---|---|---|---|---|---|---|');
    for (const l of res.lines) console.log(l);
  }
  // Rules given as JSON (Targets' fields over BASE; `--rule` may repeat), scored as `--joint` does.
  process.argv.forEach((a, i) => {
    if (a !== '--rule') return;
    const t: Targets = { ...BASE, ...(JSON.parse(process.argv[i + 1]!) as Partial<Targets>) };
    console.log(`\nRule: ${describe(t)}`);
    jointTable(data, t);
  });
  if (process.argv.includes('--joint')) joint(data);
  if (!process.argv.includes('--search')) return;
  const found: { t: Targets; pass: number; fails: string[] }[] = [];
  for (const reliability of [0.86, 0.87, 0.88, 0.89, 0.9])
    for (const expectedSpearman of [0.94, 0.945, 0.95, 0.955, 0.96])
      for (const gradeConfidence of [0, 0.5, 0.55, 0.57, 0.6])
        for (const maxGradeChanges of [0.1, 0.15, 0.25, 1])
          for (const [gain, gainMode] of [
            [0, 'or'],
            [0.03, 'or'],
            [0.04, 'or'],
            [0.05, 'or'],
            [0.03, 'and'],
            [0.04, 'and'],
          ] as const) {
            const t = {
              ...BASE,
              reliability,
              expectedSpearman,
              gradeConfidence,
              maxGradeChanges,
              gain,
              gainMode,
            };
            const { pass, fails } = evaluate(data, t);
            found.push({ t, pass, fails });
          }
  found.sort((a, b) => b.pass - a.pass);
  const best = found[0]!.pass;
  const failCount = new Map<string, number>();
  for (const f of found.filter((x) => x.pass === best))
    for (const c of f.fails) failCount.set(c, (failCount.get(c) ?? 0) + 1);
  console.log(
    `\nSearch: ${found.length} rules; best ${best}/${data.length} cells (${found.filter((x) => x.pass === best).length} rules). Cells failing among the best: ${[...failCount].map(([c, n]) => `${c} ${n}`).join(', ')}.`,
  );
  for (const f of found.slice(0, 5))
    console.log(
      `  reliability ${f.t.reliability}, expectedSpearman ${f.t.expectedSpearman}, gradeConfidence ${f.t.gradeConfidence}, maxGradeChanges ${f.t.maxGradeChanges}, gain ${f.t.gainMode} ${f.t.gain}: ${f.pass} (fails ${f.fails.join(', ')})`,
    );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
