/**
 * The fake server's judge: picks a winner between two essays from a quality signal.
 *
 * Quality comes from a profile (essay id or sha256 of the essay text → quality on a logit
 * scale, as a Bradley–Terry ability) or, for essays not in the profile, from a text heuristic
 * (vocabulary variety, sentence length, connectives, paragraphing, surface errors).
 *
 * Decision, for essays in positions A and B:
 *   with probability `lapse` the judge answers at random (a lapse), otherwise
 *   P(A wins) = sigmoid((qA - qB) / temperature + bias)   (bias > 0 favours position A).
 * and its confidence is "low" for qualities within 0.5 of each other, "medium" within 1.5, else
 * "high" (the `heuristic` mode, every pool's unless its model says otherwise).
 *
 * The `standard` mode (a pool whose model is `fake-standard-judge`) is the engine benchmark's
 * standard judge instead (runtime/src/cj/judge-model.ts, STANDARD_JUDGE: lapse 0.05, position bias
 * 0.15 probits, scale 1 on the quality scale), answering every pair with "high" confidence as a
 * sure LLM would: its batches converge like the engine's simulations, so they validate the
 * estimate's convergence stop (bench/estimate). The heuristic mode's soft "low" answers on close
 * pairs carry so little information that its batches run to the budget.
 *
 * The uniform draws come from sha256(seed | sha(A) | sha(B)), so the verdict depends only on
 * the seed, the two texts and their order: the same pair gets the same verdict in a single
 * request, in a bundle, or in a batch. No Math.random.
 */
import { readFileSync } from 'node:fs';
import { STANDARD_JUDGE_MODEL } from '../../../contract/src/pool-runtime.js';
import { judgeProbability, STANDARD_JUDGE } from '../cj/judge-model.js';
import { sha256Hex } from '../llm/prompt.js';

export type JudgeMode = 'heuristic' | 'standard';
export { STANDARD_JUDGE_MODEL };
/** The judge a request's model asks for. */
export const judgeModeFor = (model: unknown): JudgeMode =>
  model === STANDARD_JUDGE_MODEL ? 'standard' : 'heuristic';

export interface ProfileEntry {
  id?: string;
  sha256?: string;
  /** Convenience: the sha256 is computed from the text (trimmed). */
  text?: string;
  quality: number;
}

export interface Profile {
  essays: ProfileEntry[];
}

export interface JudgeOptions {
  seed?: string | number;
  lapse?: number;
  bias?: number;
  temperature?: number;
  profile?: Profile;
}

export interface JudgeVerdict {
  winner: 'A' | 'B';
  confidence: 'low' | 'medium' | 'high';
  justification: string;
  lapsed: boolean;
}

export function loadProfile(path: string): Profile {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Profile | ProfileEntry[];
  return Array.isArray(raw) ? { essays: raw } : raw;
}

/** Two uniforms in [0,1) from a string key. */
export function uniforms(key: string): [number, number, number] {
  const h = sha256Hex(key);
  const u = (i: number) => Number.parseInt(h.slice(i * 8, i * 8 + 8), 16) / 2 ** 32;
  return [u(0), u(1), u(2)];
}

const CONNECTIVES = [
  'however',
  'therefore',
  'for example',
  'for instance',
  'furthermore',
  'moreover',
  'in conclusion',
  'although',
  'because',
  'consequently',
  'on the other hand',
  'evidence',
  'research',
  'whereas',
  'nevertheless',
  'as a result',
];

export const ERROR_MARKERS = [
  /\bi\b/g, // lowercase pronoun "i"
  /\balot\b/gi,
  /\b(becuase|beleive|thier|definately|untill|wich|realy|dont|cant|wont|doesnt|isnt)\b/gi,
  /\b(u|ur|gonna|wanna|kinda|lol)\b/gi,
  /[!?]{2,}/g,
  /(^|[.!?]\s+)[a-z]/g, // sentence starting in lowercase
];

const WORD_RE = /[a-z']+/g;
// The lookbehind starts a match only at the first mark of a run ("!!!!" is scanned once, not
// from every mark).
const SENTENCE_END_RE = /(?<![.!?])[.!?]+\s/;
const PARAGRAPH_BREAK_RE = /\n\s*\n/;
/** The regexes run on essay text (checked for ReDoS in test/unit/llm/redos.test.ts). */
export const HEURISTIC_PATTERNS: readonly RegExp[] = [
  WORD_RE,
  SENTENCE_END_RE,
  PARAGRAPH_BREAK_RE,
  ...ERROR_MARKERS,
];

/** Heuristic quality on a rough logit scale (about -3..3). Deterministic. */
export function heuristicQuality(text: string): number {
  const words = text.toLowerCase().match(WORD_RE) ?? [];
  const n = words.length;
  if (n === 0) return -4;
  const types = new Set(words).size;
  const ttr = types / Math.sqrt(2 * n); // Guiraud-like, stable across lengths
  const sentences = text.split(SENTENCE_END_RE).filter((s) => s.trim().length > 0).length || 1;
  const avgLen = n / sentences;
  const lenPenalty = avgLen < 8 ? (8 - avgLen) * 0.15 : avgLen > 30 ? (avgLen - 30) * 0.08 : 0;
  const lower = text.toLowerCase();
  const connectives = CONNECTIVES.reduce((acc, c) => acc + (lower.includes(c) ? 1 : 0), 0);
  const paragraphs = text.split(PARAGRAPH_BREAK_RE).filter((p) => p.trim().length > 0).length;
  const errors = ERROR_MARKERS.reduce((acc, re) => acc + (text.match(re)?.length ?? 0), 0);
  const lengthScore = Math.min(n, 300) / 300;
  const q =
    1.2 * (ttr - 5) +
    0.25 * connectives +
    0.2 * Math.min(paragraphs, 5) +
    1.0 * lengthScore -
    0.25 * Math.min(errors, 12) -
    lenPenalty;
  return Math.max(-4, Math.min(4, q));
}

export class Judge {
  private readonly byId = new Map<string, number>();
  private readonly bySha = new Map<string, number>();
  readonly seed: string;
  readonly lapse: number;
  readonly bias: number;
  readonly temperature: number;

  constructor(opts: JudgeOptions = {}) {
    this.seed = String(opts.seed ?? 0);
    this.lapse = opts.lapse ?? 0;
    this.bias = opts.bias ?? 0;
    this.temperature = opts.temperature ?? 1;
    for (const e of opts.profile?.essays ?? []) {
      if (e.id) this.byId.set(e.id, e.quality);
      const sha = e.sha256 ?? (e.text !== undefined ? sha256Hex(e.text.trim()) : undefined);
      if (sha) this.bySha.set(sha, e.quality);
    }
  }

  quality(text: string, id?: string): number {
    if (id && this.byId.has(id)) return this.byId.get(id)!;
    return this.bySha.get(sha256Hex(text.trim())) ?? heuristicQuality(text);
  }

  judge(essayA: string, essayB: string, mode: JudgeMode = 'heuristic'): JudgeVerdict {
    const qa = this.quality(essayA);
    const qb = this.quality(essayB);
    const [u1, u2] = uniforms(`${this.seed}|${sha256Hex(essayA.trim())}|${sha256Hex(essayB.trim())}`);
    if (mode === 'standard') {
      // The lapse is inside judgeProbability (a lapsed answer is a coin flip).
      const winner = u2 < judgeProbability(qa, qb, STANDARD_JUDGE) ? 'A' : 'B';
      return { winner, confidence: 'high', justification: justificationFor(winner), lapsed: false };
    }
    const lapsed = u1 < this.lapse;
    const pA = lapsed ? 0.5 : 1 / (1 + Math.exp(-((qa - qb) / this.temperature + this.bias)));
    const winner = u2 < pA ? 'A' : 'B';
    const gap = Math.abs(qa - qb);
    const confidence = lapsed ? 'low' : gap > 1.5 ? 'high' : gap > 0.5 ? 'medium' : 'low';
    return { winner, confidence, justification: justificationFor(winner), lapsed };
  }
}

const justificationFor = (winner: 'A' | 'B') =>
  winner === 'A'
    ? 'Essay A answers the question more fully, with clearer argument, better organisation and more precise language than essay B.'
    : 'Essay B answers the question more fully, with clearer argument, better organisation and more precise language than essay A.';
