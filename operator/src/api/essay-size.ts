// How big an essay may be. Every comparison prompt holds the fixed instructions, the assignment,
// two essays and the answer, and all of it must fit the model's context window; an essay that
// cannot fit would fail every comparison it takes part in. So essays are bounded twice:
//
// - statically, in the CRD (always on): at most MAX_ESSAY_CHARS characters. At the worst case of
//   one token per character (scripts without spaces, symbols), two such essays plus the largest
//   assignment and the reserve fit the smallest context window we support
//   (DEFAULT_CONTEXT_WINDOW_TOKENS; a unit test keeps the numbers consistent);
// - per model, in the webhook, the controller and the CLI: the estimated tokens of each essay at
//   most `essayTokenLimit(pool context window, assignment tokens)`.
//
// Token counts are estimates (no tokenizer ships with the operator): one token per 4 ASCII
// characters plus one per other character, which is above the real count for English prose
// (about 4.5 characters per token) and close for other scripts. The runtime reconciles real
// counts after each call; these bounds only keep impossible prompts out.

import { estimateTokensUpperBound } from '../../../contract/src/tokens.js';

export {
  DEFAULT_CONTEXT_WINDOW_TOKENS,
  MIN_CONTEXT_WINDOW_TOKENS,
} from '../../../contract/src/pool-runtime.js';
export const MAX_CONTEXT_WINDOW_TOKENS = 10_000_000;
/** Tokens reserved in every prompt for the fixed instructions, the delimiters and the answer. */
export const PROMPT_RESERVE_TOKENS = 2_048;
/** Static bound of one essay or anchor text, in characters (a CEL rule with its own message). */
export const MAX_ESSAY_CHARS = 50_000;
/**
 * The CRD's maxLength: twice the bound. It bounds the CEL cost of the rules that read essays, and
 * the apiserver skips CEL rules once maxLength fails, so up to this length the rule's message
 * (naming the essay, its size and the fix) is what kubectl prints; beyond it, kubectl's generic
 * "Too long" naming the field.
 */
export const ESSAY_TEXT_MAX_LENGTH = 2 * MAX_ESSAY_CHARS;

/** Conservative token estimate, shared with the runtime's bundling (one place for the rule). */
export const estimateTokens = estimateTokensUpperBound;

/** Characters as CEL's size() counts them (code points, not UTF-16 units). */
export const codePoints = (text: string): number => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

/** Most tokens one essay may have so that a pair prompt fits `contextWindowTokens`. */
export function essayTokenLimit(contextWindowTokens: number, assignmentTokens: number): number {
  return Math.max(0, Math.floor((contextWindowTokens - PROMPT_RESERVE_TOKENS - assignmentTokens) / 2));
}

// The CEL rules below and their TypeScript twins produce the same messages.

/**
 * An essay must have some text: not empty and not only whitespace or zero-width characters. The CRD's CEL rule checks
 * only emptiness (size() is constant-cost); trim() over 500 essays of 50,000 characters exceeds
 * the apiserver's cost budget. The rule's TypeScript twin also refuses whitespace-only text, so
 * the webhook (and the controller, and the CLI) refuse it with the same message.
 */
export function isBlank(text: string): boolean {
  // Stops at the first visible character, so an ordinary essay costs a few steps.
  for (const ch of text) if (!INVISIBLE.has(ch) && ch.trim() !== '') return false;
  return true;
}
/** Characters that show nothing but are not whitespace to String.trim (zero-width and friends). */
const INVISIBLE = new Set(['\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', '\u00AD', '\u180E', '\u034F']);
export const NOT_BLANK_CEL = 'size() > 0';

export const emptyEssayMessage = (what: string, id: string) =>
  `${what} ${id} has no text (empty or only whitespace); put the ${what} text in it or remove the ${what}`;

export const longEssayMessage = (what: string, id: string, chars: number) =>
  `${what} ${id} has ${chars} characters (about ${Math.floor(chars / 4)} tokens or more), over the limit of ${MAX_ESSAY_CHARS} characters that keeps a comparison prompt within the context window of the model; shorten the ${what} or split it`;

/** The CEL messageExpression twin of `longEssayMessage` (`%d` via format, never string(int)). */
export const longEssayCelMessage = (what: string) =>
  `'${what} %s has %d characters (about %d tokens or more), over the limit of ${MAX_ESSAY_CHARS} characters that keeps a comparison prompt within the context window of the model; shorten the ${what} or split it'.format([self.id, size(self.text), size(self.text) / 4])`;

/**
 * A NUL character cannot be stored (Postgres text) and is never part of an essay; it usually means
 * a binary or UTF-16 file. Checked by the twin of the emptiness rule only (webhook, controller,
 * CLI): CEL's contains() over every essay has the same cost problem as trim().
 */
export const nulMessage = (what: string, id: string, at: number) =>
  `${what} ${id} contains a NUL character (U+0000) at character ${at}, which cannot be stored; remove it (it usually comes from a binary or UTF-16 file)`;

/** The twin check of the emptiness rule: empty, whitespace-only or holding NUL. */
export function emptyOrNulProblem(what: string, id: string, text: string): string | undefined {
  if (isBlank(text)) return emptyEssayMessage(what, id);
  const nul = text.indexOf('\u0000');
  return nul >= 0 ? nulMessage(what, id, nul) : undefined;
}

/** Static problems of one essay or anchor text (the twin of the CRD rules), or undefined. */
export function essayTextProblem(what: string, id: string, text: string): string | undefined {
  const empty = emptyOrNulProblem(what, id, text);
  if (empty) return empty;
  const chars = codePoints(text);
  if (chars > MAX_ESSAY_CHARS) return longEssayMessage(what, id, chars);
  return undefined;
}
