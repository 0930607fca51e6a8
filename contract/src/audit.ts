// A teacher's spot check of the AI judge (`kubectl cj audit`): which judged pairs to show, what
// travels through the `<batch>-audit` ConfigMap, and the LLM–human agreement with its Wilson
// interval. Pure: the operator and the CLI share it (docs/teachers.md, "Checking the AI judge").
import { z } from 'zod';

/** Annotation the CLI sets on the batch: `requested` (send pairs), then `submitted` (read answers). */
export const AUDIT_ANNOTATION = 'cj.huleedu.io/audit';
/**
 * Annotation the CLI changes with every step: the operator echoes it in status.audit.nonce, so the
 * CLI knows the state it reads answers this step (and the change is a watch event even when the
 * step repeats, e.g. answers sent again after a refusal).
 */
export const AUDIT_NONCE_ANNOTATION = 'cj.huleedu.io/audit-nonce';
/** Annotation with the number of pairs asked for (AUDIT_MIN_PAIRS … AUDIT_MAX_PAIRS). */
export const AUDIT_PAIRS_ANNOTATION = 'cj.huleedu.io/audit-pairs';
export const AUDIT_DEFAULT_PAIRS = 20;
export const AUDIT_MIN_PAIRS = 4;
export const AUDIT_MAX_PAIRS = 100;
/** The ConfigMap's keys: pairs.json (operator → CLI), essays.json (the texts), answers.json (CLI → operator). */
export const AUDIT_KEYS = { pairs: 'pairs.json', essays: 'essays.json', answers: 'answers.json' } as const;
/** Essay texts in the ConfigMap stay well under its 1 MiB limit; fewer pairs when they would not. */
export const AUDIT_MAX_TEXT_BYTES = 800_000;
/** The human judge's name in the store and the event, unless the teacher gives one. */
export const AUDIT_DEFAULT_JUDGE = 'teacher';

export const auditConfigMapName = (batch: string) => `${batch}-audit`;

/** A judged comparison: the LLM's verdict (essay ids) and the fitted model's P(a beats b). */
export interface JudgedPair {
  a: string;
  b: string;
  llmWinner: string;
  /** P(a beats b) from the final scores. */
  pModel: number;
}

/** What the teacher is shown: two essays, in an order that says nothing about the LLM's verdict. */
export interface AuditPair {
  id: string;
  a: string;
  b: string;
}

/** One answer: the essay the teacher preferred, or null for a skipped pair. */
export interface AuditAnswer {
  id: string;
  winner: string | null;
  /** Seconds the teacher took (for the report; not used in the figure). */
  seconds?: number;
}

export interface AuditAnswers {
  judge: string;
  answers: AuditAnswer[];
}

/** Deterministic uniform [0, 1) stream from a seed (mulberry32). */
function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = t;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

/** P(a beats b) under Bradley–Terry from the latent scores. */
export const pBeats = (thetaA: number, thetaB: number) => 1 / (1 + Math.exp(thetaB - thetaA));

/**
 * Up to `n` pairs: half where the LLM's verdict and the model disagree most (the model gave the
 * LLM's pick the lowest probability), the rest at random among the others; each unordered pair
 * once, shuffled, each shown in a random order. The LLM's verdict is not part of what is returned.
 */
export function selectAuditPairs(judged: readonly JudgedPair[], n: number, seed: number): AuditPair[] {
  const byPair = new Map<string, JudgedPair>();
  for (const j of judged) if (!byPair.has(pairKey(j.a, j.b))) byPair.set(pairKey(j.a, j.b), j);
  const unique = [...byPair.values()];
  const pLlm = (j: JudgedPair) => (j.llmWinner === j.a ? j.pModel : 1 - j.pModel);
  const disagree = [...unique].sort(
    (x, y) => pLlm(x) - pLlm(y) || (pairKey(x.a, x.b) < pairKey(y.a, y.b) ? -1 : 1),
  );
  const hard = disagree.slice(0, Math.ceil(n / 2));
  const chosen = new Set(hard.map((j) => pairKey(j.a, j.b)));
  const rest = unique.filter((j) => !chosen.has(pairKey(j.a, j.b)));
  const r = rng(seed);
  shuffle(rest, r);
  const all = [...hard, ...rest.slice(0, Math.max(0, n - hard.length))];
  shuffle(all, r);
  // The LLM saw a first; the teacher sees either first, so position says nothing about either.
  return all.map((j, i) =>
    r() < 0.5 ? { id: `p${i + 1}`, a: j.a, b: j.b } : { id: `p${i + 1}`, a: j.b, b: j.a },
  );
}

function shuffle<T>(xs: T[], r: () => number) {
  for (let i = xs.length - 1; i > 0; i--) {
    const k = Math.floor(r() * (i + 1));
    [xs[i], xs[k]] = [xs[k]!, xs[i]!];
  }
}

/** Wilson score interval for k successes in n trials (95% by default). */
export function wilson(k: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/** A bad answers.json: the message names the key and what is wrong. */
export class AuditAnswersError extends Error {}

const JUDGE_RE = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,62}$/;
/** A judge's name: 1–63 letters, digits, spaces or ._@- (it is stored and published as given). */
export const validJudge = (s: string) => JUDGE_RE.test(s);

/**
 * answers.json as the CLI writes it, checked against the pairs that were asked: every id one of
 * them, at most once, the winner one of that pair's two essays (or null: skipped). The ConfigMap is
 * the tenant's to edit, so nothing in it is trusted.
 */
export function parseAuditAnswers(text: string, pairs: readonly AuditPair[]): AuditAnswers {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AuditAnswersError(`${AUDIT_KEYS.answers} is not JSON: ${(err as Error).message}`);
  }
  const o = raw as { judge?: unknown; answers?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.answers))
    throw new AuditAnswersError(`${AUDIT_KEYS.answers} must be {"judge": "...", "answers": [...]}`);
  const judge = o.judge ?? AUDIT_DEFAULT_JUDGE;
  if (typeof judge !== 'string' || !JUDGE_RE.test(judge))
    throw new AuditAnswersError(
      `${AUDIT_KEYS.answers}: judge must be 1–63 letters, digits, spaces or ._@- (e.g. "ms-lee")`,
    );
  const byId = new Map(pairs.map((p) => [p.id, p]));
  const seen = new Set<string>();
  const answers: AuditAnswer[] = [];
  for (const [i, a] of (o.answers as unknown[]).entries()) {
    const x = a as { id?: unknown; winner?: unknown; seconds?: unknown };
    const p = typeof x?.id === 'string' ? byId.get(x.id) : undefined;
    if (!p)
      throw new AuditAnswersError(`${AUDIT_KEYS.answers}: answers[${i}].id is not one of the pairs asked`);
    if (seen.has(p.id)) throw new AuditAnswersError(`${AUDIT_KEYS.answers}: pair ${p.id} is answered twice`);
    seen.add(p.id);
    if (x.winner !== null && x.winner !== p.a && x.winner !== p.b)
      throw new AuditAnswersError(
        `${AUDIT_KEYS.answers}: answers[${i}].winner must be "${p.a}", "${p.b}" or null (skipped)`,
      );
    const seconds =
      typeof x.seconds === 'number' && Number.isFinite(x.seconds) && x.seconds >= 0 ? x.seconds : undefined;
    answers.push({
      id: p.id,
      winner: x.winner as string | null,
      ...(seconds === undefined ? {} : { seconds }),
    });
  }
  return { judge, answers };
}

const EssayId = z.string().min(1);
const Count = z.number().int().min(0);

/** One audited pair: what the teacher, the LLM (its majority over the pair's verdicts) and the model said. */
export const AuditDecisionSchema = z.object({
  essayA: EssayId.describe('Shown first to the teacher.'),
  essayB: EssayId,
  human: EssayId.describe("The teacher's choice."),
  llm: EssayId.describe("The AI judge's choice."),
  model: EssayId.describe('The essay with the higher final score.'),
});
export type AuditDecision = z.infer<typeof AuditDecisionSchema>;

export const AuditReportSchema = z.object({
  pairs: Count.describe(
    'Pairs the teacher was asked to judge: half where the AI judge and the final scores disagreed most, half at random.',
  ),
  judged: Count.describe("Pairs the teacher judged (the agreement's denominator)."),
  skipped: Count.describe('Pairs skipped or left unanswered.'),
  agreements: Count.describe(
    'Judged pairs where the teacher chose what the AI judge chose (its majority when it judged the pair more than once).',
  ),
  agreement: z.number().min(0).max(1).describe('agreements / judged (0 when nothing was judged).'),
  interval95: z
    .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
    .describe('Wilson 95% confidence interval of the agreement, [low, high].'),
  /** The fitted model's (final scores') agreement with the teacher, for comparison. */
  modelAgreements: Count.describe(
    'Judged pairs where the teacher chose the essay the final scores rank higher.',
  ),
  decisions: z
    .array(AuditDecisionSchema)
    .describe('Every judged pair: the essays as shown (A first) and what each judge chose (essay ids).'),
});
export type AuditReport = z.infer<typeof AuditReportSchema>;

/**
 * Agreement between the teacher and the LLM judge over the judged (not skipped) pairs. A pair the
 * LLM judged more than once (both orders, or again in a later round) counts its majority; a tie
 * counts its first verdict.
 */
export function auditReport(
  pairs: readonly AuditPair[],
  answers: readonly AuditAnswer[],
  verdicts: readonly { a: string; b: string; winner: string }[],
  theta: ReadonlyMap<string, number>,
): AuditReport {
  const votes = new Map<string, Map<string, number>>();
  const first = new Map<string, string>();
  for (const v of verdicts) {
    const k = pairKey(v.a, v.b);
    if (!votes.has(k)) votes.set(k, new Map());
    const m = votes.get(k)!;
    m.set(v.winner, (m.get(v.winner) ?? 0) + 1);
    if (!first.has(k)) first.set(k, v.winner);
  }
  const byId = new Map(pairs.map((p) => [p.id, p]));
  const decisions: AuditDecision[] = [];
  let skipped = 0;
  for (const ans of answers) {
    const p = byId.get(ans.id);
    if (!p) continue;
    if (ans.winner === null) {
      skipped++;
      continue;
    }
    const k = pairKey(p.a, p.b);
    const m = votes.get(k);
    if (!m) continue; // never judged by the LLM: not a pair the operator would have asked
    const ca = m.get(p.a) ?? 0;
    const cb = m.get(p.b) ?? 0;
    const llm = ca > cb ? p.a : cb > ca ? p.b : first.get(k)!;
    const model = (theta.get(p.a) ?? 0) >= (theta.get(p.b) ?? 0) ? p.a : p.b;
    decisions.push({ essayA: p.a, essayB: p.b, human: ans.winner, llm, model });
  }
  const judged = decisions.length;
  const agreements = decisions.filter((d) => d.human === d.llm).length;
  return {
    pairs: pairs.length,
    judged,
    skipped: skipped + (pairs.length - answers.length),
    agreements,
    agreement: judged ? agreements / judged : 0,
    interval95: wilson(agreements, judged),
    modelAgreements: decisions.filter((d) => d.human === d.model).length,
    decisions,
  };
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** "The teacher agreed with the AI judge on 16 of 20 pairs (80%, 95% CI 58–92%)". */
export function agreementSentence(r: {
  judged: number;
  agreements: number;
  interval95: readonly [number, number];
  judge?: string;
}): string {
  if (r.judged === 0) return 'No pair was judged (all skipped): no agreement figure.';
  return `${r.judge && r.judge !== AUDIT_DEFAULT_JUDGE ? r.judge : 'The teacher'} agreed with the AI judge on ${r.agreements} of ${r.judged} pairs (${pct(r.agreements / r.judged)}, 95% CI ${Math.round(r.interval95[0] * 100)}–${pct(r.interval95[1])})`;
}
