/**
 * Verdict parsing. The model answers with JSON (constrained by `output_config.format`), but a
 * response can still be unusable: `stop_reason` other than `end_turn` (truncated at
 * `max_tokens`, a refusal), text that is not JSON, or JSON that does not match the schema. We
 * check `stop_reason` first, then parse, then validate with zod.
 *
 * Answers are matched by `pair_id`, never by position. Enum values are compared
 * case-insensitively (the API does not guarantee enum casing). A justification longer than 50
 * words is cut to 50 words rather than rejected: the winner is what matters, and a re-ask costs a
 * call.
 */
import { z } from 'zod';
import type { Confidence, Winner } from './types.js';

export const MAX_JUSTIFICATION_WORDS = 50;

const verdictObjectSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['pair_id', 'winner', 'confidence', 'justification'],
  properties: {
    pair_id: { type: 'string' },
    winner: { type: 'string', enum: ['A', 'B'] },
    confidence: { type: 'string', enum: ['low', 'medium', 'high'] },
    justification: { type: 'string' },
  },
} as const;

/** JSON Schema for `output_config.format` when one pair is asked. */
export const singleVerdictJsonSchema: Record<string, unknown> = verdictObjectSchema;

/** JSON Schema for `output_config.format` when several pairs are asked in one call. */
export const bundleVerdictJsonSchema: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  required: ['judgements'],
  properties: { judgements: { type: 'array', items: verdictObjectSchema } },
};

export function truncateWords(text: string, max: number): string {
  const words = text.trim().split(/\s+/).filter(Boolean);
  return words.length <= max ? words.join(' ') : `${words.slice(0, max).join(' ')}…`;
}

const upper = (v: unknown) => (typeof v === 'string' ? v.trim().toUpperCase() : v);
const lower = (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() : v);

export const VerdictSchema = z.object({
  pair_id: z.string().trim().min(1).max(64),
  winner: z.preprocess(upper, z.enum(['A', 'B'])),
  confidence: z.preprocess(lower, z.enum(['low', 'medium', 'high'])),
  justification: z
    .string()
    .transform((s) => truncateWords(s, MAX_JUSTIFICATION_WORDS))
    .refine((s) => s.length > 0, 'empty justification'),
});
export type Verdict = { pair_id: string; winner: Winner; confidence: Confidence; justification: string };

/** Why one response could not be used at all. */
export type ResponseProblem =
  | { kind: 'refused' }
  | { kind: 'truncated' }
  | { kind: 'bad_stop_reason'; stopReason: string | null }
  | { kind: 'not_json' }
  | { kind: 'wrong_shape' };

export interface ParsedResponse {
  /** Valid verdicts keyed by `pair_id` (only ids that were asked). */
  verdicts: Map<string, Verdict>;
  /** Ids that were asked but are missing, duplicated, or invalid in the answer. */
  unanswered: string[];
  /** Set when the whole response was unusable (then every asked id is in `unanswered`). */
  problem?: ResponseProblem;
}

interface MessageLike {
  stop_reason: string | null;
  content: ReadonlyArray<{ type: string; text?: string }>;
}

function extractText(message: MessageLike): string {
  return message.content
    .filter((b) => b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('');
}

function parseJsonLoose(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    // Tolerate a fenced block or stray prose around a single JSON object.
    const start = trimmed.indexOf('{');
    const end = trimmed.lastIndexOf('}');
    if (start >= 0 && end > start) return JSON.parse(trimmed.slice(start, end + 1));
    throw new Error('not json');
  }
}

/**
 * Parse a Messages response into verdicts for the asked ids. Never throws.
 * `asked` is the list of local pair ids sent in the prompt.
 */
export function parseVerdictResponse(message: MessageLike, asked: readonly string[]): ParsedResponse {
  const all = () => ({ verdicts: new Map<string, Verdict>(), unanswered: [...asked] });
  if (message.stop_reason === 'refusal') return { ...all(), problem: { kind: 'refused' } };
  if (message.stop_reason === 'max_tokens' || message.stop_reason === 'model_context_window_exceeded') {
    return { ...all(), problem: { kind: 'truncated' } };
  }
  if (message.stop_reason !== 'end_turn' && message.stop_reason !== 'stop_sequence') {
    return { ...all(), problem: { kind: 'bad_stop_reason', stopReason: message.stop_reason } };
  }
  let json: unknown;
  try {
    json = parseJsonLoose(extractText(message));
  } catch {
    return { ...all(), problem: { kind: 'not_json' } };
  }
  let items: unknown[];
  if (json && typeof json === 'object' && Array.isArray((json as { judgements?: unknown }).judgements)) {
    items = (json as { judgements: unknown[] }).judgements;
  } else if (Array.isArray(json)) {
    items = json;
  } else if (json && typeof json === 'object') {
    items = [json];
  } else {
    return { ...all(), problem: { kind: 'wrong_shape' } };
  }
  const askedSet = new Set(asked);
  const seen = new Map<string, number>();
  const valid = new Map<string, Verdict>();
  for (const item of items) {
    const r = VerdictSchema.safeParse(item);
    if (!r.success) {
      // Count the id as seen (invalid answer) when we can read it.
      const id = (item as { pair_id?: unknown } | null)?.pair_id;
      if (typeof id === 'string') seen.set(id.trim(), (seen.get(id.trim()) ?? 0) + 2);
      continue;
    }
    const v = r.data as Verdict;
    if (!askedSet.has(v.pair_id)) continue; // extra id: ignored
    seen.set(v.pair_id, (seen.get(v.pair_id) ?? 0) + 1);
    valid.set(v.pair_id, v);
  }
  const verdicts = new Map<string, Verdict>();
  const unanswered: string[] = [];
  for (const id of asked) {
    const v = valid.get(id);
    // Exactly one valid answer per id; duplicates or invalid siblings make the id unanswered.
    if (v && seen.get(id) === 1) verdicts.set(id, v);
    else unanswered.push(id);
  }
  return { verdicts, unanswered };
}
