/**
 * The issue-16 grid: our engine against the seed policy on the same worlds and seeds, in cells
 * that vary the judge, the grade bands, the anchors and the batch size, so the engine cannot be
 * tuned to one world.
 *
 *   node --import tsx bench/cj/grid.ts [--seeds 2001-2030] [--cells a,b] [--jobs 2] [--out FILE]
 *   node --import tsx bench/cj/grid.ts --summary FILE [--write]
 *
 * Tuning uses seeds 101+ only (`--seeds 101-110`); the reported run uses 2001–2030, which were
 * used for no choice. One run per (cell, seed, policy). Ours runs once to the budget with its
 * own stopping observed but not obeyed (stopping never changes the pairs chosen), so the
 * checkpoints and the stop come from the same run; the seed policy runs to the budget (its
 * max|Δθ| rule never fires). Results go to a JSON-lines file; `--summary` prints the tables.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';
import { Stopping } from '../../runtime/src/cj/types.js';
import { arg, readJsonl } from './cli.js';
import { f, mean, se, sgn } from './figures.js';
import { type Metrics, metricsOf, runSeed } from './policies.js';
import { type JudgeConfig, judge, makeWorld, type World, type WorldConfig } from './world.js';

export const JUDGES: Record<string, JudgeConfig> = {
  standard: { lapse: 0.05, bias: 0.15, scale: 1 },
  noisier: { lapse: 0.1, bias: 0.3, scale: 1.5 },
  position: { lapse: 0.03, bias: 0.6, scale: 0.8 },
  misperception: { lapse: 0.05, bias: 0.15, scale: 1, misperception: 0.5 },
};
const BANDS: Record<string, number[] | undefined> = {
  equal: undefined,
  unequal: [0.1, 0.2, 0.2, 0.2, 0.2, 0.1],
};

export interface Cell {
  name: string;
  judge: string;
  bands: string;
  perGrade: number;
  placement: 'band' | 'edge';
  students: number;
  checkpoints: number[];
  budget: number;
  /** Comparisons the stop must stay under, as a share of the seed policy's budget. */
  stopShare: number;
}

const small = (judgeName: string, bands: string): Cell => ({
  name: `${judgeName}/${bands}`,
  judge: judgeName,
  bands,
  perGrade: 2,
  placement: 'band',
  students: 60,
  checkpoints: [120, 360, 600],
  budget: 600,
  stopShare: 0.8,
});

/** The written grid (issue 16): every judge × both band shapes at 60 essays and 2 anchors per
 * grade; 1 and 3 anchors per grade, anchors at band edges and 200 essays on the standard judge. */
export const CELLS: Cell[] = [
  ...['standard', 'noisier', 'position', 'misperception'].flatMap((j) => [
    small(j, 'equal'),
    small(j, 'unequal'),
  ]),
  { ...small('standard', 'unequal'), name: 'standard/unequal/1-anchor', perGrade: 1 },
  { ...small('standard', 'unequal'), name: 'standard/unequal/3-anchors', perGrade: 3 },
  { ...small('standard', 'unequal'), name: 'standard/unequal/edge', placement: 'edge' },
  {
    ...small('standard', 'unequal'),
    name: 'standard/unequal/200',
    students: 200,
    // Same comparisons per essay as 120/360/600 at 72 essays, rounded; budget as in the issue.
    checkpoints: [400, 1200, 2000],
    budget: 2000,
    stopShare: 0.75,
  },
];

export interface Run {
  cell: string;
  seed: number;
  policy: 'ours' | 'seed';
  checkpoints: Metrics[];
  /** Ours: where its own stopping would have stopped (or the budget). */
  stop?: {
    early: boolean;
    metrics: Metrics;
    claimedSpearman: number | null;
    /** quality.expectedSpearmanConsistent and …Low: the claim's range (absent in older runs). */
    claimedConsistent?: number | null;
    claimedLow?: number | null;
    /** quality.judge.misperception and its test's p-value. */
    misperception?: string;
    misperceptionP?: number | null;
    extraSd: number | null;
    signal: boolean;
    misfits: number;
  };
  /** quality.judge.anchorSpread at each checkpoint (ours). */
  spreadAt?: (number | null)[];
  /** quality.judge.misperception at each checkpoint (ours). */
  misperceptionAt?: (string | null)[];
  /** Ours, with CJ_TRACE=1: every round's checks, claims and true metrics (replays stop rules). */
  trace?: TraceRow[];
  /** With CJ_TRACE=1: the students' true grades (world order), for replaying grade rules. */
  truthGrades?: number[];
  /** Wall time of the run. */
  ms: number;
  /** CPU time of the run (user + system; what an idle machine's wall time would be). */
  cpuMs?: number;
}

export interface TraceRow {
  m: number;
  checks: Record<string, number | null>;
  expectedSpearman: number | null;
  extraSd: number;
  /** quality.judge.lapse (absent in older traces): a noise signal for stop rules. */
  lapse?: number;
  extraLr: number;
  extraApplied: number;
  spread: number | null;
  spreadZ: number | null;
  meanAssigned: number;
  exact: number;
  qwk: number;
  spearman: number;
  /** Anchors: [true grade, score, sd, true θ + offset (perceived)] per anchor. */
  anchors: [number, number, number, number][];
  /** Students (world order): assigned grade index and grade probabilities (3 decimals). */
  assigned?: number[];
  probs?: number[][];
}
const TRACE = process.env.CJ_TRACE === '1';

/** Extra settings for our engine while tuning: CJ_SETTINGS='{"spreadRatio":99}'. */
const EXTRA = JSON.parse(process.env.CJ_SETTINGS ?? '{}') as Record<string, unknown>;

export function worldOf(cell: Cell, seed: number): World {
  const cfg: WorldConfig = {
    students: cell.students,
    anchors: 6 * cell.perGrade,
    grades: 6,
    sd: 1.5,
    bands: BANDS[cell.bands],
    anchorPlacement: cell.placement,
  };
  return makeWorld(seed, cfg);
}

const DEFAULT_RELIABILITY = Stopping.parse({}).reliability;

export function runOursGrid(
  world: World,
  jcfg: JudgeConfig,
  seed: number,
  cell: Cell,
  /** Called with plan()'s output where the stop is read ('stop') and at each checkpoint (its index). */
  onMeasure?: (
    res: ReturnType<typeof plan>,
    m: number,
    at: 'stop' | number,
    input: Parameters<typeof plan>[0],
  ) => void,
): Run {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const rng = createRng(seed, 'judge/ours');
  const comparisons: { a: string; b: string; winner: 'a' | 'b' }[] = [];
  const history: ReturnType<typeof plan>['snapshot'][] = [];
  const essays = world.ids.map((id) =>
    world.anchorIds.includes(id)
      ? { id, anchor: { grade: world.gradeLabels[world.grade.get(id)!]! } }
      : { id },
  );
  const checkpoints = [...cell.checkpoints];
  const out: Run = { cell: cell.name, seed, policy: 'ours', checkpoints: [], ms: 0 };
  for (let round = 0; round < 10_000; round++) {
    const input = {
      essays,
      grades: world.gradeLabels,
      comparisons: [...comparisons],
      history: [...history],
      // Reliability target 1 never passes: the run goes on to the budget, and the stop is read
      // from the checks with the default target (the pairs do not depend on the targets).
      settings: {
        ...EXTRA,
        seed: `bench-${seed}`,
        budget: cell.budget,
        splitHalf: false,
        stopping: { ...(EXTRA.stopping as object | undefined), reliability: 1 },
      },
    };
    const res = plan(input);
    history.push(res.snapshot);
    const m = comparisons.length;
    if (TRACE) {
      const q = res.quality;
      const mt = metricsOf(world, res, m);
      const byId = new Map(res.scores.map((r) => [r.id, r]));
      const mis = jcfg.misperception ?? 0;
      const gById = new Map(res.grades.map((g) => [g.id, g]));
      const gIdx = new Map(world.gradeLabels.map((g, i) => [g, i]));
      out.truthGrades ??= world.studentIds.map((id) => world.grade.get(id)!);
      out.trace = [
        ...(out.trace ?? []),
        {
          m,
          checks: Object.fromEntries(res.decision.checks.map((c) => [c.name, c.value])),
          expectedSpearman: q.expectedSpearman ?? null,
          extraSd: q.judge.extraSd ?? 0,
          lapse: q.judge.lapse,
          extraLr: q.judge.extraSdLr ?? 0,
          extraApplied: q.judge.extraSdApplied ?? 0,
          spread: q.judge.anchorSpread ?? null,
          spreadZ: q.judge.anchorSpreadZ ?? null,
          meanAssigned: res.grades.reduce((t, g) => t + g.assignedProbability, 0) / res.grades.length,
          exact: mt.exact,
          qwk: mt.qwk,
          spearman: mt.spearman,
          assigned: world.studentIds.map((id) => gIdx.get(gById.get(id)!.assigned)!),
          probs: world.studentIds.map((id) =>
            gById.get(id)!.probabilities.map((p) => Math.round(p * 1000) / 1000),
          ),
          anchors: world.anchorIds.map((id) => [
            world.grade.get(id)!,
            byId.get(id)!.score,
            byId.get(id)!.sd,
            world.theta.get(id)! + mis * world.offset.get(id)!,
          ]),
        },
      ];
    }
    const wouldStop =
      res.decision.reason === 'budget' ||
      res.decision.reason === 'exhausted' ||
      res.decision.checks.every((c) =>
        c.name === 'reliability' ? (c.value ?? -1) >= DEFAULT_RELIABILITY : c.pass,
      );
    if (!out.stop && wouldStop) {
      const q = res.quality;
      out.stop = {
        early: m < cell.budget,
        metrics: metricsOf(world, res, m),
        claimedSpearman: res.quality.expectedSpearman ?? null,
        claimedConsistent: q.expectedSpearmanConsistent ?? null,
        claimedLow: q.expectedSpearmanLow ?? null,
        misperception: q.judge.misperception,
        misperceptionP: q.judge.misperceptionP ?? null,
        extraSd: q.judge.extraSdApplied ?? null,
        signal: q.judge.misperception === 'widened',
        misfits: q.misfit?.flagged ?? 0,
      };
      onMeasure?.(res, m, 'stop', input);
    }
    while (checkpoints.length > 0 && m >= checkpoints[0]!) {
      onMeasure?.(res, m, out.checkpoints.length, input);
      out.checkpoints.push(metricsOf(world, res, m));
      out.spreadAt = [...(out.spreadAt ?? []), res.quality.judge.anchorSpread ?? null];
      out.misperceptionAt = [...(out.misperceptionAt ?? []), res.quality.judge.misperception ?? null];
      checkpoints.shift();
    }
    if (checkpoints.length === 0 || res.nextPairs.length === 0) break;
    for (const p of res.nextPairs)
      comparisons.push({ a: p.a, b: p.b, winner: judge(world, p.a, p.b, jcfg, rng) });
  }
  out.ms = performance.now() - t0;
  out.cpuMs = cpuMsSince(c0);
  return out;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/** `--policies ours` or `seed` runs one side only (tuning reuses the seed policy's runs). */
function runTask(cellName: string, seed: number, policies: string): Run[] {
  const cell = CELLS.find((c) => c.name === cellName)!;
  const world = worldOf(cell, seed);
  const jcfg = JUDGES[cell.judge]!;
  const out: Run[] = [];
  if (policies !== 'seed') out.push(runOursGrid(world, jcfg, seed, cell));
  if (policies !== 'ours') {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const seedRun = runSeed(world, jcfg, seed, cell.checkpoints);
    out.push({
      cell: cell.name,
      seed,
      policy: 'seed',
      checkpoints: seedRun.checkpoints,
      ms: performance.now() - t0,
      cpuMs: cpuMsSince(c0),
    });
  }
  return out;
}

// ---------------------------------------------------------------- summary

export function summarize(all: Run[]): string {
  // Only seeds complete in every cell present, both policies (a run cut short leaves the rest out).
  const cellsPresent = [...new Set(all.filter((r) => r.policy === 'ours').map((r) => r.cell))];
  const complete = new Set(
    [...new Set(all.map((r) => r.seed))].filter((s) =>
      cellsPresent.every((c) =>
        ['ours', 'seed'].every((p) => all.some((r) => r.cell === c && r.seed === s && r.policy === p)),
      ),
    ),
  );
  const runs = all.filter((r) => complete.has(r.seed));
  const lines: string[] = [];
  const log = (s = ''): void => {
    lines.push(s);
  };
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  // Seeds as ranges (a run cut short in parts can leave a gap).
  const ranges: string[] = [];
  seeds.forEach((x, t) => {
    if (t > 0 && x === seeds[t - 1]! + 1) ranges[ranges.length - 1] = `${ranges.at(-1)!.split('–')[0]}–${x}`;
    else ranges.push(String(x));
  });
  log(
    `Seeds ${ranges.join(', ')} (${seeds.length}). Paired differences ours − seed policy, mean ± paired SE.`,
  );
  log();
  log(
    '| cell | comparisons | exact ours / seed | Δ exact | QWK ours / seed | Δ QWK | Spearman ours / seed | held-out cover | per anchor / per student | pass |',
  );
  log('|---|---|---|---|---|---|---|---|---|---|');
  const cellMeans: { exact: number; qwk: number }[] = [];
  let passCount = 0;
  let cellCount = 0;
  for (const cell of CELLS) {
    const ours = new Map(
      runs.filter((r) => r.cell === cell.name && r.policy === 'ours').map((r) => [r.seed, r]),
    );
    const seedRuns = new Map(
      runs.filter((r) => r.cell === cell.name && r.policy === 'seed').map((r) => [r.seed, r]),
    );
    const paired = [...ours.keys()].filter((s) => seedRuns.has(s));
    if (paired.length === 0) continue;
    cell.checkpoints.forEach((cp, i) => {
      const o = paired.map((s) => ours.get(s)!.checkpoints[i]!);
      const d = paired.map((s) => seedRuns.get(s)!.checkpoints[i]!);
      const dEx = o.map((m, t) => m.exact - d[t]!.exact);
      const dQ = o.map((m, t) => m.qwk - d[t]!.qwk);
      const ok = mean(dEx) >= -se(dEx) && mean(dQ) >= -se(dQ);
      cellCount++;
      if (ok) passCount++;
      cellMeans.push({ exact: mean(dEx), qwk: mean(dQ) });
      log(
        `| ${cell.name} | ${cp} | ${f(mean(o.map((m) => m.exact)))} / ${f(mean(d.map((m) => m.exact)))} | ${sgn(mean(dEx))} ± ${f(se(dEx))} | ${f(mean(o.map((m) => m.qwk)))} / ${f(mean(d.map((m) => m.qwk)))} | ${sgn(mean(dQ))} ± ${f(se(dQ))} | ${f(mean(o.map((m) => m.spearman)))} / ${f(mean(d.map((m) => m.spearman)))} | ${f(mean(o.map((m) => m.anchorCoverage).filter(Number.isFinite)), 2)} | ${f(mean(o.map((m) => m.perAnchor ?? Number.NaN)), 1)} / ${f(mean(o.map((m) => m.perStudent ?? Number.NaN)), 1)} | ${ok ? 'yes' : '**no**'} |`,
      );
    });
  }
  log();
  log(
    `Checkpoint cells passing (Δ ≥ −1 paired SE on exact and QWK): ${passCount}/${cellCount}. Mean over cells: Δ exact ${sgn(mean(cellMeans.map((c) => c.exact)))}, Δ QWK ${sgn(mean(cellMeans.map((c) => c.qwk)))}.`,
  );
  log();
  log(
    'Own stopping (budget as in the cell): early stops, comparisons used, and grades at the stop against the seed policy at its budget.',
  );
  log();
  log(
    '| cell | early | mean comparisons (share of seed budget) | target share | exact ours@stop / seed@budget | Δ exact | QWK ours@stop / seed@budget | Δ QWK | pass |',
  );
  log('|---|---|---|---|---|---|---|---|---|');
  for (const cell of CELLS) {
    const ours = runs.filter((r) => r.cell === cell.name && r.policy === 'ours' && r.stop);
    const seedRuns = new Map(
      runs.filter((r) => r.cell === cell.name && r.policy === 'seed').map((r) => [r.seed, r]),
    );
    const paired = ours.filter((r) => seedRuns.has(r.seed));
    if (paired.length === 0) continue;
    const last = cell.checkpoints.length - 1;
    const early = paired.filter((r) => r.stop!.early).length / paired.length;
    const used = mean(paired.map((r) => r.stop!.metrics.comparisons)) / cell.budget;
    const dEx = paired.map((r) => r.stop!.metrics.exact - seedRuns.get(r.seed)!.checkpoints[last]!.exact);
    const dQ = paired.map((r) => r.stop!.metrics.qwk - seedRuns.get(r.seed)!.checkpoints[last]!.qwk);
    const ok = early >= 0.8 && used <= cell.stopShare && mean(dEx) >= -se(dEx) && mean(dQ) >= -se(dQ);
    log(
      `| ${cell.name} | ${f(early, 2)} | ${f(mean(paired.map((r) => r.stop!.metrics.comparisons)), 0)} (${f(used, 2)}) | ≤ ${cell.stopShare} | ${f(mean(paired.map((r) => r.stop!.metrics.exact)))} / ${f(mean(paired.map((r) => seedRuns.get(r.seed)!.checkpoints[last]!.exact)))} | ${sgn(mean(dEx))} ± ${f(se(dEx))} | ${f(mean(paired.map((r) => r.stop!.metrics.qwk)))} / ${f(mean(paired.map((r) => seedRuns.get(r.seed)!.checkpoints[last]!.qwk)))} | ${sgn(mean(dQ))} ± ${f(se(dQ))} | ${ok ? 'yes' : '**no**'} |`,
    );
  }
  log();
  log('Claims and judge-quality signal per judge (ours; stop = where its own stopping stops or the budget).');
  log();
  log(
    '| judge | runs | stops early | claimed − true Spearman where it stopped early | range where it stopped early: consistent − true · low − true · truth in [low, consistent + 0.02] | signal fires at the stop (at 120 · 360 · 600) | bounded / unknown at the stop | mean extra SD applied | misfit flags per run | held-out anchor 80% cover (± SE), by checkpoint | inversions ours / seed |',
  );
  log('|---|---|---|---|---|---|---|---|---|---|---|');
  // The claim's range where the stop fired: its top and bottom against the truth, and how often
  // the truth lies in it (runs of older engines have no range: '–').
  const rangeOf = (stopped: Run[]): string => {
    const rs = stopped.filter((r) => r.stop!.claimedConsistent != null);
    if (rs.length === 0) return '–';
    const top = rs.map((r) => r.stop!.claimedConsistent! - r.stop!.metrics.spearman);
    const lows = rs.filter((r) => r.stop!.claimedLow != null);
    const low = lows.map((r) => r.stop!.claimedLow! - r.stop!.metrics.spearman);
    // Honest as a range: the truth is not below the bottom, nor above the top by more than the
    // claim tolerance (0.02: the top is an estimate, and the truth sits on either side of it).
    const covers = lows.filter(
      (r) =>
        r.stop!.claimedLow! <= r.stop!.metrics.spearman &&
        r.stop!.metrics.spearman <= r.stop!.claimedConsistent! + 0.02,
    ).length;
    return `${sgn(mean(top))} · ${low.length ? sgn(mean(low)) : '–'} · ${lows.length ? f(covers / lows.length, 2) : '–'}`;
  };
  for (const j of Object.keys(JUDGES)) {
    const cells = CELLS.filter((c) => c.judge === j).map((c) => c.name);
    const ours = runs.filter((r) => cells.includes(r.cell) && r.policy === 'ours');
    const seedRuns = runs.filter((r) => cells.includes(r.cell) && r.policy === 'seed');
    if (ours.length === 0) continue;
    const stopped = ours.filter((r) => r.stop?.early && r.stop.claimedSpearman !== null);
    const gap = stopped.map((r) => r.stop!.claimedSpearman! - r.stop!.metrics.spearman);
    const covers = [0, 1, 2].map((i) => {
      // Pooled over held-out anchors: each run's coverage is a share of its anchors.
      const xs = ours.map((r) => r.checkpoints[i]?.anchorCoverage ?? Number.NaN).filter(Number.isFinite);
      const anchorsPerRun = 12;
      const p = mean(xs);
      return `${f(p, 3)} ± ${f(Math.sqrt((p * (1 - p)) / (xs.length * anchorsPerRun)), 3)}`;
    });
    const inv = (rs: Run[]) =>
      rs.reduce((t, r) => t + r.checkpoints.reduce((u, m) => u + (m.inversions ?? 0), 0), 0);
    log(
      `| ${j} | ${ours.length} | ${stopped.length} | ${gap.length ? `${sgn(mean(gap))} ± ${f(se(gap))}` : '–'} | ${rangeOf(stopped)} | ${f(ours.filter((r) => r.stop?.signal).length / ours.length, 2)} (${[0, 1, 2].map((i) => f(ours.filter((r) => r.misperceptionAt?.[i] === 'widened').length / ours.length, 2)).join(' · ')}) | ${f(ours.filter((r) => r.stop?.misperception === 'bounded').length / ours.length, 2)} / ${f(ours.filter((r) => r.stop?.misperception === 'unknown').length / ours.length, 2)} | ${f(mean(ours.map((r) => r.stop?.extraSd ?? 0)), 2)} | ${f(mean(ours.map((r) => r.stop?.misfits ?? 0)), 1)} | ${covers.join(' · ')} | ${inv(ours)} / ${inv(seedRuns)} |`,
    );
  }
  log();
  const sum = (rs: Run[], key: 'ms' | 'cpuMs'): number => rs.reduce((t, r) => t + (r[key] ?? 0), 0) / 1000;
  const ours = runs.filter((r) => r.policy === 'ours');
  log(
    `Wall time in runs: ${f(sum(runs, 'ms'), 0)} s (ours ${f(sum(ours, 'ms'), 0)} s)${
      runs.every((r) => r.cpuMs !== undefined)
        ? `; CPU time in runs: ${f(sum(runs, 'cpuMs'), 0)} s (ours ${f(sum(ours, 'cpuMs'), 0)} s; 200-essay cell ${f(
            sum(
              runs.filter((r) => r.cell.endsWith('/200')),
              'cpuMs',
            ),
            0,
          )} s)`
        : ''
    }.`,
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

/** Seeds A-B (or one seed A). */
export function seedRange(spec: string): number[] {
  const [a, b] = spec.split('-').map(Number);
  return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
}

/** Seeds A-B for a tuning script: refuses the reporting seeds (2001+), which no choice may see. */
export function tuningSeeds(spec: string): number[] {
  const seeds = seedRange(spec);
  if (seeds[0]! < 101 || seeds.at(-1)! > 2000) throw new Error('--seeds: tuning seeds are 101–2000');
  return seeds;
}

/** Runs `script` in `jobs` child processes at once (`args(k)` for part k) and waits for all of them. */
export async function runParts(script: string, jobs: number, args: (k: number) => string[]): Promise<void> {
  await Promise.all(
    Array.from(
      { length: jobs },
      (_, k) =>
        new Promise<void>((resolve, reject) => {
          spawn(process.execPath, ['--import', 'tsx', script, ...args(k)], { stdio: 'inherit' }).on(
            'exit',
            (code) => (code === 0 ? resolve() : reject(new Error(`part ${k} exited ${code}`))),
          );
        }),
    ),
  );
}

/** `--cells a,b` checked against CELLS; by default `fallback` (every cell of 60 essays). */
export function cellsArg(
  spec: string | undefined,
  fallback = CELLS.filter((c) => c.students === 60).map((c) => c.name),
): string[] {
  const cells = spec?.split(',') ?? fallback;
  for (const c of cells)
    if (!CELLS.some((x) => x.name === c))
      throw new Error(`--cells: unknown cell ${c}; the cells are ${CELLS.map((x) => x.name).join(', ')}`);
  return cells;
}

async function main(): Promise<void> {
  const summaryFile = arg('--summary');
  if (summaryFile) {
    // Several files may be joined with commas (for example tuning runs of ours + cached seed runs).
    const text = summarize(readJsonl<Run>(summaryFile));
    console.log(text);
    if (process.argv.includes('--write'))
      writeFileSync(new URL('./RESULTS.grid.md', import.meta.url), `${text}\n`);
    return;
  }
  const seeds = seedRange(arg('--seeds') ?? '2001-2030');
  const cells = cellsArg(
    arg('--cells'),
    CELLS.map((c) => c.name),
  );
  const outFile = arg('--out') ?? '/tmp/cj-grid.jsonl';
  // Seed-major order: if a run must be cut short, every cell has the same completed seeds. Within
  // a seed the largest cells come first, so the small ones fill in behind them.
  const size = (c: string): number => CELLS.find((x) => x.name === c)!.budget;
  const bySize = [...cells].sort((x, y) => size(y) - size(x));
  const tasks = seeds.flatMap((s) => bySize.map((c) => ({ c, s })));
  const part = arg('--part');
  if (part) {
    // Parts claim tasks one by one (an exclusive create in the claim directory): a fixed split
    // (task t to part t mod jobs) gave one part every 200-essay cell and left the other idle.
    const claims = arg('--claims');
    const [k, of] = part.split('/').map(Number);
    for (let t = claims ? 0 : k!; t < tasks.length; t += claims ? 1 : of!) {
      if (claims) {
        try {
          closeSync(openSync(`${claims}/${t}`, 'wx'));
        } catch {
          continue;
        }
      }
      const { c, s } = tasks[t]!;
      for (const r of runTask(c, s, arg('--policies') ?? 'both'))
        appendFileSync(outFile, `${JSON.stringify(r)}\n`);
    }
    return;
  }
  const jobs = Number(arg('--jobs') ?? 1);
  writeFileSync(outFile, '');
  const claims = mkdtempSync(path.join(tmpdir(), 'cj-grid-claims-'));
  const t0 = Date.now();
  const self = new URL(import.meta.url).pathname;
  await runParts(self, jobs, (k) => [
    '--seeds',
    arg('--seeds') ?? '2001-2030',
    '--cells',
    cells.join(','),
    '--out',
    outFile,
    '--part',
    `${k}/${jobs}`,
    '--policies',
    arg('--policies') ?? 'both',
    '--claims',
    claims,
  ]);
  rmSync(claims, { recursive: true, force: true });
  console.log(summarize(readJsonl<Run>(outFile)));
  console.log(
    `Wall time ${((Date.now() - t0) / 1000).toFixed(0)} s, ${jobs} job(s); machine: ${execFileSync('nproc').toString().trim()} cores.`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
