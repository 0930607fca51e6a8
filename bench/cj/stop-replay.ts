/**
 * Replays stop rules on grid runs recorded with CJ_TRACE=1 (tuning seeds only): stopping never
 * changes the pairs chosen, so a rule's stop, its comparisons and the grades there are exact.
 *
 *   CJ_TRACE=1 node --import tsx bench/cj/grid.ts --seeds 101-130 --cells … --out T.jsonl
 *   node --import tsx bench/cj/stop-replay.ts T.jsonl[,U.jsonl] [--search]
 *
 * Prints, per rule and cell, what grid.ts's own-stopping table prints (early share, comparisons
 * as a share of the seed policy's budget, Δ exact and Δ QWK against the seed policy at its budget,
 * pass), and with `--search` the best of a grid of thresholds. Rules:
 * - `default`: every check at the engine's defaults (`Stopping` in types.ts);
 * - `never`: run to the budget (the engine's lead at the budget: no stop can do better on grades);
 * - `first round at ≥ N%`: stop at a fixed share of the budget, whatever the checks say;
 * - `gain`: the grade-decision rule tried in 2026-12-03: also stop when the comparisons left in
 *   the budget are expected to correct at most a share `t` of the grades (`budgetGain` below).
 */
import { readFileSync } from 'node:fs';
import { normCdf, normInv } from '../../runtime/src/cj/stats.js';
import { Stopping } from '../../runtime/src/cj/types.js';
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
}
const BASE: Targets = { ...DEFAULTS, gain: 0, gainMode: 'or', at: 0 };

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

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const se = (xs: number[]): number => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((t, x) => t + (x - m) ** 2, 0) / (xs.length - 1) / xs.length);
};
const sgn = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

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

function main(): void {
  const runs = process.argv[2]!.split(',')
    .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as Run);
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
