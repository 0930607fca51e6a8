/**
 * Grade decision rules on the issue-16 grid, paired on the same runs: the decision changes only the
 * headline grade, not the pairs chosen nor where the stop is read, so one run of ours per (cell,
 * seed) (grid.ts's runOursGrid, default settings, headline rule `median`) gives every rule's grades
 * at each checkpoint and at the observed stop. Rules: median (the engine's own), modal and mean
 * (monotoneGrades), exact (exactGrades, ties to the median's grades) and exact with a penalty λ on
 * expected squared error (`exact+sqλ`, not a setting).
 *
 *   node --import tsx bench/cj/decide-grid.ts --seeds 101-130 [--cells a,b] --out FILE
 *   node --import tsx bench/cj/decide-grid.ts --summary FILE[,FILE]
 *   node --import tsx bench/cj/decide-grid.ts --compare A[,A2]:B[,B2] [--labels a,b]
 *
 * Tuning seeds 101+ only. Cells default to every 60-essay cell (the 200-essay one costs ≈ 14
 * of the others; name it in --cells to include it).
 */
import { appendFileSync } from 'node:fs';
import { exactGrades, monotoneGrades } from '../../runtime/src/cj/grades.js';
import { qwk } from '../../runtime/src/cj/stats.js';
import { arg, readJsonl } from './cli.js';
import { f, mean, se, sgn } from './figures.js';
import { CELLS, cellsArg, JUDGES, runOursGrid, tuningSeeds, worldOf } from './grid.js';

const PENALTIES = [0.05, 0.1, 0.25];
const RULES = ['median', 'modal', 'mean', 'exact', ...PENALTIES.map((l) => `exact+sq${l}`)];

interface Row {
  cell: string;
  seed: number;
  /** Checkpoint index or 'stop'. */
  at: number | 'stop';
  m: number;
  /**
   * Per rule: exact agreement, QWK, the expected exact agreement the probabilities claim, and
   * where it departs from median: the share of students moved, and of those the share moved
   * away from the middle of the scale (absent in rows of older runs).
   */
  rules: Record<string, { exact: number; qwk: number; claimed: number; moved?: number; outward?: number }>;
  /** Calibration of the students' grade probabilities (calibration(); absent in older runs). */
  calib?: Calib;
}

/**
 * Mean over students of: P(outer grades) and the share truly there; P(grades further from the
 * middle than the median rule's grade) and the share truly there; P(the median rule's grade) and
 * its realised agreement; the Brier score and the log score (P floored at 1/400, one draw).
 */
interface Calib {
  pOuter: number;
  tOuter: number;
  pOutward: number;
  tOutward: number;
  pMedian: number;
  tMedian: number;
  brier: number;
  log: number;
}

function calibration(probs: number[][], truth: number[], median: number[], K: number): Calib {
  const mid = (K - 1) / 2;
  const c: Calib = {
    pOuter: 0,
    tOuter: 0,
    pOutward: 0,
    tOutward: 0,
    pMedian: 0,
    tMedian: 0,
    brier: 0,
    log: 0,
  };
  const n = truth.length;
  truth.forEach((t, i) => {
    const p = probs[i]!;
    const med = median[i]!;
    const outward = (g: number): boolean => Math.abs(g - mid) > Math.abs(med - mid);
    c.pOuter += (p[0]! + p[K - 1]!) / n;
    c.tOuter += (t === 0 || t === K - 1 ? 1 : 0) / n;
    c.pOutward += p.reduce((s, x, g) => s + (outward(g) ? x : 0), 0) / n;
    c.tOutward += (outward(t) ? 1 : 0) / n;
    c.pMedian += p[med]! / n;
    c.tMedian += (t === med ? 1 : 0) / n;
    c.brier += p.reduce((s, x, g) => s + (x - (g === t ? 1 : 0)) ** 2, 0) / n;
    c.log += -Math.log(Math.max(p[t]!, 1 / 400)) / n;
  });
  return c;
}

function measure(cellName: string, seed: number, out: string): void {
  const cell = CELLS.find((c) => c.name === cellName)!;
  const world = worldOf(cell, seed);
  const K = world.gradeLabels.length;
  const gi = new Map(world.gradeLabels.map((g, i) => [g, i]));
  const truth = world.studentIds.map((id) => world.grade.get(id)!);
  runOursGrid(world, JUDGES[cell.judge]!, seed, cell, (res, m, at) => {
    const byId = new Map(res.grades.map((g) => [g.id, g]));
    const score = new Map(res.scores.map((s) => [s.id, s.score]));
    const probs = world.studentIds.map((id) => byId.get(id)!.probabilities);
    const scores = world.studentIds.map((id) => score.get(id)!);
    const median = world.studentIds.map((id) => gi.get(byId.get(id)!.assigned)!);
    const grades: Record<string, number[]> = {
      median,
      modal: monotoneGrades(probs, scores, [], 'modal'),
      mean: monotoneGrades(probs, scores, [], 'mean'),
      exact: exactGrades(probs, scores, { reference: median }),
    };
    for (const l of PENALTIES)
      grades[`exact+sq${l}`] = exactGrades(probs, scores, { reference: median, squaredPenalty: l });
    const n = truth.length;
    const rules: Row['rules'] = {};
    const mid = (K - 1) / 2;
    for (const [name, g] of Object.entries(grades)) {
      const moved = g.filter((x, i) => x !== median[i]).length;
      const outward = g.filter((x, i) => Math.abs(x - mid) > Math.abs(median[i]! - mid)).length;
      rules[name] = {
        exact: truth.filter((t, i) => t === g[i]).length / n,
        qwk: qwk(truth, g, K),
        claimed: probs.reduce((t, p, i) => t + p[g[i]!]!, 0) / n,
        moved: moved / n,
        outward: moved > 0 ? outward / moved : Number.NaN,
      };
    }
    const row: Row = { cell: cellName, seed, at, m, rules, calib: calibration(probs, truth, median, K) };
    appendFileSync(out, `${JSON.stringify(row)}\n`);
  });
}

const pm = (xs: number[]): string => `${sgn(mean(xs))} ± ${f(se(xs))}`;

function summarize(rows: Row[]): string {
  const lines: string[] = [];
  const cells = CELLS.map((c) => c.name).filter((c) => rows.some((r) => r.cell === c));
  // Only seeds complete in every cell present (every checkpoint and the stop).
  const seeds = [...new Set(rows.map((r) => r.seed))]
    .filter((s) =>
      cells.every((c) => {
        const cps = CELLS.find((x) => x.name === c)!.checkpoints.length;
        return rows.filter((r) => r.cell === c && r.seed === s).length === cps + 1;
      }),
    )
    .sort((a, b) => a - b);
  const ats: (number | 'stop')[] = [0, 1, 2, 'stop'];
  const label = (cell: string, at: number | 'stop'): string =>
    at === 'stop' ? 'stop' : String(CELLS.find((c) => c.name === cell)!.checkpoints[at]);
  const get = (cell: string, seed: number, at: number | 'stop'): Row =>
    rows.find((r) => r.cell === cell && r.seed === seed && r.at === at)!;
  const diff = (cell: string, at: number | 'stop', rule: string, key: 'exact' | 'qwk'): number[] =>
    seeds.map((s) => {
      const r = get(cell, s, at);
      return r.rules[rule]![key] - r.rules.median![key];
    });
  lines.push(
    `Seeds ${seeds[0]}–${seeds.at(-1)} (${seeds.length}), cells: ${cells.length}. Paired differences rule − median, mean ± paired SE over seeds; "QWK ok" = Δ QWK ≥ −1 SE.`,
  );
  lines.push('');
  lines.push(
    '| cell | comparisons | exact median | Δ exact (exact) | QWK median | Δ QWK (exact) | QWK ok | Δ exact (modal) | Δ QWK (modal) | Δ exact (mean) | Δ QWK (mean) | claimed agreement median / exact |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cells)
    for (const at of ats) {
      const med = seeds.map((s) => get(c, s, at).rules.median!);
      const ex = seeds.map((s) => get(c, s, at).rules.exact!);
      const dq = diff(c, at, 'exact', 'qwk');
      const ms = at === 'stop' ? ` (m ${f(mean(seeds.map((s) => get(c, s, at).m)), 0)})` : '';
      lines.push(
        `| ${c} | ${label(c, at)}${ms} | ${f(mean(med.map((r) => r.exact)))} | ${pm(diff(c, at, 'exact', 'exact'))} | ${f(mean(med.map((r) => r.qwk)))} | ${pm(dq)} | ${mean(dq) >= -se(dq) ? 'yes' : '**no**'} | ${pm(diff(c, at, 'modal', 'exact'))} | ${pm(diff(c, at, 'modal', 'qwk'))} | ${pm(diff(c, at, 'mean', 'exact'))} | ${pm(diff(c, at, 'mean', 'qwk'))} | ${f(mean(med.map((r) => r.claimed)))} / ${f(mean(ex.map((r) => r.claimed)))} |`,
      );
    }
  lines.push('');
  lines.push(
    'Pooled over cells (per seed the mean over cells, then mean ± paired SE over seeds); cells = checkpoint cells where Δ exact > 0 / where Δ QWK < −1 SE.',
  );
  lines.push('');
  lines.push('| rule | checkpoint | Δ exact | Δ QWK | cells Δ exact > 0 | cells QWK < −1 SE |');
  lines.push('|---|---|---|---|---|---|');
  for (const rule of RULES.filter((r) => r !== 'median'))
    for (const at of [...ats, 'all' as const]) {
      const list = at === 'all' ? ats : [at];
      const pooled = (key: 'exact' | 'qwk'): number[] =>
        seeds.map((_, t) => mean(cells.flatMap((c) => list.map((a) => diff(c, a, rule, key)[t]!))));
      let up = 0;
      let bad = 0;
      for (const c of cells)
        for (const a of list) {
          if (mean(diff(c, a, rule, 'exact')) > 0) up++;
          const dq = diff(c, a, rule, 'qwk');
          if (mean(dq) < -se(dq)) bad++;
        }
      const name = at === 'all' ? 'all' : at === 'stop' ? 'stop' : `checkpoint ${at + 1}`;
      lines.push(
        `| ${rule} | ${name} | ${pm(pooled('exact'))} | ${pm(pooled('qwk'))} | ${up}/${cells.length * list.length} | ${bad}/${cells.length * list.length} |`,
      );
    }
  // Where the rules depart from median (rows that record it): share moved, share of those outward.
  const withMoves = rows.filter((r) => seeds.includes(r.seed) && r.rules.exact?.moved !== undefined);
  if (withMoves.length > 0) {
    lines.push('');
    lines.push(
      `Departures from median (${withMoves.length} measurements): share of students whose grade differs, of those the share moved away from the middle grade, and claimed vs realised agreement on all students.`,
    );
    lines.push('');
    lines.push('| rule | moved | outward | claimed agreement − median | realised − median |');
    lines.push('|---|---|---|---|---|');
    for (const rule of RULES.filter((r) => r !== 'median')) {
      const rs = withMoves.map((r) => r.rules[rule]!);
      const out = rs.map((r) => r.outward!).filter(Number.isFinite);
      lines.push(
        `| ${rule} | ${f(mean(rs.map((r) => r.moved!)))} | ${f(mean(out), 2)} | ${sgn(mean(withMoves.map((r) => r.rules[rule]!.claimed - r.rules.median!.claimed)))} | ${sgn(mean(withMoves.map((r) => r.rules[rule]!.exact - r.rules.median!.exact)))} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Two runs of the same seeds under different settings (e.g. CJ_SETTINGS): the median rule's exact
 * agreement and QWK paired per (cell, seed, checkpoint), B − A, and the calibration of each.
 */
function compare(a: Row[], b: Row[], labels: [string, string]): string {
  const key = (r: Row): string => `${r.cell}|${r.seed}|${r.at}`;
  const bBy = new Map(b.map((r) => [key(r), r]));
  const pairs = a
    .filter((r) => bBy.has(key(r)) && r.calib && bBy.get(key(r))!.calib)
    .map((r) => [r, bBy.get(key(r))!] as const);
  const seeds = [...new Set(pairs.map(([r]) => r.seed))].sort((x, y) => x - y);
  const cells = CELLS.map((c) => c.name).filter((c) => pairs.some(([r]) => r.cell === c));
  const lines: string[] = [];
  lines.push(
    `${labels[1]} − ${labels[0]}: seeds ${seeds[0]}–${seeds.at(-1)} (${seeds.length}), ${cells.length} cells; per seed the mean over cells, then mean ± paired SE over seeds.`,
  );
  lines.push('');
  lines.push(
    `| checkpoint | Δ exact (median rule) | Δ QWK (median rule) | P(outer) / realised ${labels[0]} | ${labels[1]} | P(outward of median) / realised ${labels[0]} | ${labels[1]} | P(median's grade) / realised ${labels[0]} | ${labels[1]} | Brier ${labels[0]} / ${labels[1]} | log score ${labels[0]} / ${labels[1]} |`,
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const at of [0, 1, 2, 'stop'] as const) {
    const sel = pairs.filter(([r]) => r.at === at);
    const perSeed = (f: (x: Row, y: Row) => number): number[] =>
      seeds.map((s) => mean(sel.filter(([r]) => r.seed === s).map(([x, y]) => f(x, y))));
    const avg = (rows: Row[], g: (c: Calib) => number): string => f(mean(rows.map((r) => g(r.calib!))));
    const A = sel.map(([x]) => x);
    const B = sel.map(([, y]) => y);
    const name = at === 'stop' ? 'stop' : `checkpoint ${at + 1}`;
    lines.push(
      `| ${name} | ${pm(perSeed((x, y) => y.rules.median!.exact - x.rules.median!.exact))} | ${pm(perSeed((x, y) => y.rules.median!.qwk - x.rules.median!.qwk))} | ${avg(A, (c) => c.pOuter)} / ${avg(A, (c) => c.tOuter)} | ${avg(B, (c) => c.pOuter)} / ${avg(B, (c) => c.tOuter)} | ${avg(A, (c) => c.pOutward)} / ${avg(A, (c) => c.tOutward)} | ${avg(B, (c) => c.pOutward)} / ${avg(B, (c) => c.tOutward)} | ${avg(A, (c) => c.pMedian)} / ${avg(A, (c) => c.tMedian)} | ${avg(B, (c) => c.pMedian)} / ${avg(B, (c) => c.tMedian)} | ${avg(A, (c) => c.brier)} / ${avg(B, (c) => c.brier)} | ${avg(A, (c) => c.log)} / ${avg(B, (c) => c.log)} |`,
    );
  }
  lines.push('');
  lines.push('Per cell (Δ = B − A, median rule; mean ± paired SE over seeds):');
  lines.push('');
  lines.push('| cell | checkpoint | exact A | Δ exact | QWK A | Δ QWK | P(outer) / realised A | B |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const c of cells)
    for (const at of [0, 1, 2, 'stop'] as const) {
      const sel = pairs.filter(([r]) => r.cell === c && r.at === at);
      if (sel.length === 0) continue;
      const d = (k: 'exact' | 'qwk'): number[] =>
        sel.map(([x, y]) => y.rules.median![k] - x.rules.median![k]);
      lines.push(
        `| ${c} | ${at === 'stop' ? 'stop' : String(CELLS.find((x) => x.name === c)!.checkpoints[at])} | ${f(mean(sel.map(([x]) => x.rules.median!.exact)))} | ${pm(d('exact'))} | ${f(mean(sel.map(([x]) => x.rules.median!.qwk)))} | ${pm(d('qwk'))} | ${f(mean(sel.map(([x]) => x.calib!.pOuter)))} / ${f(mean(sel.map(([x]) => x.calib!.tOuter)))} | ${f(mean(sel.map(([, y]) => y.calib!.pOuter)))} / ${f(mean(sel.map(([, y]) => y.calib!.tOuter)))} |`,
      );
    }
  return lines.join('\n');
}

const summaryFile = arg('--summary');
const compareFiles = arg('--compare');
if (compareFiles) {
  // --compare A.jsonl:B.jsonl [--labels a,b]
  const [fa, fb] = compareFiles.split(':');
  const labels = (arg('--labels') ?? 'A,B').split(',') as [string, string];
  console.log(compare(readJsonl<Row>(fa!), readJsonl<Row>(fb!), labels));
} else if (summaryFile) {
  console.log(summarize(readJsonl<Row>(summaryFile)));
} else {
  const seeds = tuningSeeds(arg('--seeds') ?? '101-130');
  const cells = cellsArg(arg('--cells'));
  const out = arg('--out') ?? '/tmp/cj-decide-grid.jsonl';
  // Seed-major: a run cut short leaves every cell with nearly the same seeds.
  for (const s of seeds) for (const c of cells) measure(c, s, out);
}
