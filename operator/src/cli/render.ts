// What kubectl-cj prints: the status line, the teacher's results table, the explain text. Pure
// functions of the batch and its results (unit-tested without a cluster).
import type { BatchResults, EssayResult } from '../../../contract/src/results.js';

// ---------------------------------------------------------------- status
export interface BatchView {
  status?: {
    phase?: string;
    round?: number;
    comparisons?: { completed?: number; failed?: number; pending?: number };
    budget?: { total?: number; source?: string };
    stability?: { rankCorrelation?: number; reliability?: number; meanGradeConfidence?: number };
    cost?: {
      estimatedUSD?: string;
      inputTokens?: number;
      outputTokens?: number;
      cacheReadTokens?: number;
      cacheWriteTokens?: number;
    };
    estimate?: {
      comparisons?: number;
      inputTokens?: number;
      outputTokens?: number;
      cacheReadTokens?: number;
      cacheWriteTokens?: number;
      estimatedUSD?: string;
      wallTime?: string;
    };
    throughput?: {
      comparisonsPerMinute?: number;
      poolShare?: number;
      fairShare?: number;
      remaining?: number;
      eta?: string;
    };
    completionTime?: string;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    startTime?: string;
    result?: { resultsConfigMap?: string };
  };
}

export function statusLine(b: BatchView, now = Date.now()): string {
  const s = b.status ?? {};
  const done = s.comparisons?.completed ?? 0;
  const total = s.budget?.total ?? 0;
  const width = 24;
  const filled = total ? Math.min(width, Math.round((done / total) * width)) : 0;
  const elapsed = s.startTime ? (now - Date.parse(s.startTime)) / 1000 : 0;
  const rate = elapsed > 0 ? done / elapsed : 0;
  // The operator's ETA (the last minute's pace against the comparisons still expected); without
  // one (an older operator, or too little history yet) the budget at the average pace, an upper bound.
  const left = s.throughput?.eta
    ? etaText(s.throughput, now)
    : rate > 0 && total > done
      ? ` ~${Math.ceil((total - done) / rate)}s left (at most)`
      : '';
  const stab =
    s.stability?.rankCorrelation !== undefined ? ` stability ${s.stability.rankCorrelation.toFixed(3)}` : '';
  const cost = s.cost?.estimatedUSD ? ` $${Number(s.cost.estimatedUSD).toFixed(4)}` : '';
  const failed = s.comparisons?.failed ? ` (${s.comparisons.failed} failed)` : '';
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${total || '?'}${failed} ${s.phase ?? 'Pending'} round ${s.round ?? 0}${stab}${cost}${s.phase === 'Comparing' || s.phase === 'Scoring' ? left : ''}`;
}

/** ` ETA ~2m10s (42/min, 50% of the pool)`: time left, pace and the batch's part of its pool. */
export function etaText(
  t: NonNullable<NonNullable<BatchView['status']>['throughput']>,
  now = Date.now(),
): string {
  const left = Math.max(0, (Date.parse(t.eta!) - now) / 1000);
  const pace = [
    t.comparisonsPerMinute !== undefined ? `${t.comparisonsPerMinute}/min` : undefined,
    t.poolShare !== undefined ? `${Math.round(t.poolShare * 100)}% of the pool` : undefined,
  ].filter(Boolean);
  return ` ETA ~${hms(left)}${pace.length ? ` (${pace.join(', ')})` : ''}`;
}

/** Elapsed seconds as "1h2m5s". */
const hms = (sec: number) => {
  const t = Math.max(0, Math.round(sec));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${t % 60}s`;
};

/**
 * The estimate made when the batch started beside the actuals so far (or final): comparisons,
 * tokens, cost, time. Empty when the operator made no estimate (an older operator).
 */
export function estimateVsActual(b: BatchView, now = Date.now()): string {
  const s = b.status ?? {};
  const e = s.estimate;
  if (!e) return '';
  const c = s.cost ?? {};
  const tokens = (x: { inputTokens?: number; cacheReadTokens?: number; cacheWriteTokens?: number } = {}) =>
    (x.inputTokens ?? 0) + (x.cacheReadTokens ?? 0) + (x.cacheWriteTokens ?? 0);
  const done = (s.comparisons?.completed ?? 0) + (s.comparisons?.failed ?? 0);
  const end = s.completionTime ? Date.parse(s.completionTime) : now;
  const elapsed = s.startTime ? hms((end - Date.parse(s.startTime)) / 1000) : '?';
  const finished = s.phase === 'Succeeded' || s.phase === 'Failed';
  const rows = [
    ['', 'ESTIMATE', finished ? 'ACTUAL' : 'SO FAR'],
    ['comparisons', String(e.comparisons ?? '?'), String(done)],
    ['input tokens', String(tokens(e)), String(tokens(c))],
    ['output tokens', String(e.outputTokens ?? '?'), String(c.outputTokens ?? 0)],
    [
      'cost (USD)',
      e.estimatedUSD ? Number(e.estimatedUSD).toFixed(4) : '—',
      c.estimatedUSD ? Number(c.estimatedUSD).toFixed(4) : '—',
    ],
    ['wall time', e.wallTime ?? '?', elapsed],
  ];
  const w = [0, 1, 2].map((j) => Math.max(...rows.map((r) => r[j]!.length)));
  return rows
    .map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padStart(w[2]!)}`)
    .join('\n');
}

/**
 * The teacher's table: the class's essays, best first. RANK counts the class's essays only (the
 * stored `rank` runs over essays and anchors together, so it skips the anchors' places).
 */
export function resultsTable(r: BatchResults): string {
  const rows = r.essays.filter((e) => !e.anchor).sort((x, y) => x.rank - y.rank);
  const lines = ['RANK  ESSAY                SCORE ±   SE  GRADE  P(GRADE)  80% INTERVAL'];
  for (const [t, e] of rows.entries()) {
    const g = e.grade;
    lines.push(
      `${String(t + 1).padStart(4)}  ${e.essayId.padEnd(18).slice(0, 18)} ${e.score.toFixed(2).padStart(7)} ± ${e.se.toFixed(2)}  ${(g?.assigned ?? '-').padEnd(5)}  ${g ? g.assignedProbability.toFixed(2).padStart(8) : '       -'}  ${g ? `${g.interval80[0]}–${g.interval80[1]}` : ''}${e.flags?.length ? '  !' : ''}`,
    );
  }
  lines.push('', `grades: ${r.gradeDistribution.map((g) => `${g.grade} ${g.count}`).join(', ')}`);
  const inverted = gradeInversions(r);
  if (inverted.length > 0)
    lines.push(
      `! grade inversions (an essay graded above a higher-scored one; please report): ${inverted
        .map(
          ([hi, lo]) =>
            `${lo.essayId} (${lo.grade!.assigned}, ${lo.score.toFixed(2)}) over ${hi.essayId} (${hi.grade!.assigned}, ${hi.score.toFixed(2)})`,
        )
        .join('; ')}`,
    );
  const flagged = rows.filter((e) => e.flags?.length);
  if (flagged.length > 0)
    lines.push(
      `! possible prompt injection (judged as data; worth a read): ${flagged
        .map((e) => `${e.essayId} (${e.flags!.map((f) => f.replace('injection:', '')).join(', ')})`)
        .join('; ')}`,
    );
  return lines.join('\n');
}

/**
 * Pairs [higher-scored, lower-scored] of class essays whose headline grades contradict the scores
 * (the engine guarantees none; a table that showed one would cost the teacher's trust in all of
 * it). Grade order is the batch's (`gradeDistribution`, lowest first); each inverted essay is
 * reported once, against the lowest-graded essay that scored above it.
 */
export function gradeInversions(r: BatchResults): [EssayResult, EssayResult][] {
  const order = new Map(r.gradeDistribution.map((g, i) => [g.grade, i]));
  const graded = r.essays
    .filter((e) => !e.anchor && e.grade && order.has(e.grade.assigned))
    .sort((x, y) => y.score - x.score);
  const out: [EssayResult, EssayResult][] = [];
  let lowest: EssayResult | undefined; // lowest grade among strictly higher scores so far
  let pending: EssayResult | undefined; // lowest grade among essays with the current score
  graded.forEach((e, t) => {
    if (t > 0 && e.score < graded[t - 1]!.score && pending) {
      if (!lowest || order.get(pending.grade!.assigned)! < order.get(lowest.grade!.assigned)!)
        lowest = pending;
      pending = undefined;
    }
    if (lowest && order.get(e.grade!.assigned)! > order.get(lowest.grade!.assigned)!) out.push([lowest, e]);
    if (!pending || order.get(e.grade!.assigned)! < order.get(pending.grade!.assigned)!) pending = e;
  });
  return out;
}

// ---------------------------------------------------------------- explain
export interface Summary {
  stoppedBecause?: string;
  rounds?: number;
  checks?: { name: string; value: number | null; target: number; pass: boolean }[];
  judge?: {
    positionConsistency?: number;
    reversedPairs?: number;
    lapse?: number;
    bias?: number;
    aWinShare?: number;
    extraSd?: number;
    extraSdApplied?: number;
    anchorSpread?: number | null;
    misperception?: 'widened' | 'bounded' | 'unknown';
    misperceptionP?: number | null;
    misperceptionDf?: number;
    extraSdUpper?: number | null;
  };
  reliability?: { eap?: number; splitHalf?: number };
  expectedSpearman?: number;
  expectedSpearmanConsistent?: number | null;
  expectedSpearmanLow?: number | null;
  meanModalProbability?: number;
  comparisonsPerAnchor?: number | null;
  comparisonsPerStudent?: number | null;
  misfit?: { flagged: number; essays: string[] };
  connected?: boolean;
  anchorCalibration?: {
    heldOut: number;
    exact?: number;
    adjacent?: number;
    qwk?: number;
    coverage80?: number;
  } | null;
}

function misperceptionText(j: NonNullable<Summary['judge']>): string {
  const f = (v: unknown, d = 2) => (typeof v === 'number' ? v.toFixed(d) : 'n/a');
  const test = j.misperceptionDf
    ? ` (test p = ${f(j.misperceptionP, 3)}, ${j.misperceptionDf} df; upper bound ${f(j.extraSdUpper)} logits)`
    : '';
  switch (j.misperception) {
    case 'widened':
      return `shown${test}: claims and grade probabilities are widened by it`;
    case 'bounded':
      return `not shown, and bounded${test}: it cannot lower the expected Spearman by more than 0.02`;
    case 'unknown':
      return j.misperceptionDf
        ? `not shown, but the anchors cannot rule it out${test}`
        : 'cannot be tested: it needs 2 anchors in each of 3 grades between anchored grades';
    default:
      return 'n/a (older engine)';
  }
}

/** ", range low–high" when the anchors leave the claim a range (bottom: the misperception they cannot rule out). */
function claimRange(summary: Summary, f: (v: unknown, d?: number) => string): string {
  const hi = summary.expectedSpearmanConsistent;
  if (typeof hi !== 'number') return '';
  const lo = summary.expectedSpearmanLow;
  if (summary.judge?.misperception === 'widened') return ` (${f(hi)} if the judge were consistent)`;
  if (typeof lo !== 'number') return ` if the judge is consistent (the anchors cannot bound it)`;
  return hi - lo > 0.0005
    ? ` if the judge is consistent; as low as ${f(lo)} at the misperception the anchors cannot rule out`
    : '';
}

export function explainText(summary: Summary): string {
  const f = (v: unknown, d = 3) => (typeof v === 'number' ? v.toFixed(d) : 'n/a');
  const lines = [`Stopped because: ${summary.stoppedBecause} after ${summary.rounds} rounds.`];
  for (const c of summary.checks ?? [])
    lines.push(`  ${c.pass ? '✓' : '✗'} ${c.name}: ${f(c.value)} (target ${f(c.target)})`);
  const j = summary.judge ?? {};
  lines.push(
    '',
    'Judge quality:',
    `  position consistency (both orders agree): ${f(j.positionConsistency)} over ${j.reversedPairs ?? 0} reversed pairs`,
    `  model lapse rate (effective, below the judge's true rate): ${f(j.lapse)}; first-position bias: ${f(j.bias)} logits; A-wins share: ${f(j.aWinShare)}`,
    '',
    `  misperception (a persistent per-essay offset, seen only through the anchors' known grades): ${misperceptionText(j)}`,
    `  extra per-essay SD applied: ${f(j.extraSdApplied)} logits; held-out anchors' estimate ${f(j.extraSd)}; anchors' within-grade spread / band width: ${f(j.anchorSpread, 2)}`,
    '',
    `Reliability: EAP ${f(summary.reliability?.eap)}, split-half ${f(summary.reliability?.splitHalf)}; expected Spearman with the true order ${f(summary.expectedSpearman)}${claimRange(summary, f)}`,
    `Mean P(modal grade): ${f(summary.meanModalProbability)}; graph connected: ${summary.connected}`,
    '  (EAP reliability, expected Spearman and grade confidence are model-based: they assume the judge errs',
    '  at random. A judge that is consistently wrong about some essays is only seen through the anchors;',
    '  the extra SD above widens them when the anchors show it, and the range says what they cannot rule out.)',
  );
  if (summary.comparisonsPerAnchor !== undefined)
    lines.push(
      `Comparisons per anchor ${f(summary.comparisonsPerAnchor, 1)}, per student ${f(summary.comparisonsPerStudent, 1)}`,
    );
  if (summary.misfit && summary.misfit.flagged > 0)
    lines.push(`Misfitting essays (judge inconsistent about them): ${summary.misfit.essays.join(', ')}`);
  const cal = summary.anchorCalibration;
  if (cal)
    lines.push(
      `Held-out anchors (${cal.heldOut}): exact ${f(cal.exact)}, adjacent ${f(cal.adjacent)}, QWK ${f(cal.qwk)}, 80% interval coverage ${f(cal.coverage80)}`,
    );
  return lines.join('\n');
}
