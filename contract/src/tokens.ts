// Token estimates without a tokenizer (none ships with the image). Admission bounds essays with
// the upper bound, the runtime sizes bundles with it, and the limiter reserves with the rough
// estimate before a call; real counts are reconciled after each call.

/** Rough token estimate (about 4 characters per token for English prose). Reconciled after the call. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * An upper bound for keeping prompts inside the context window: one token per 4 ASCII characters
 * plus one per other character. Above the real count for English prose (about 4.5 characters per
 * token) and close for other scripts.
 */
export function estimateTokensUpperBound(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const ch of text) {
    if (ch.charCodeAt(0) < 0x80) ascii++;
    else other++;
  }
  return Math.ceil(ascii / 4) + other;
}
