// Heuristic detection of essay text aimed at the grader. The webhook warns with it at admission
// and the worker records it with each comparison; the verdict still stands (the rubric tells the
// judge to ignore such text, and the CJ engine can down-weight flagged comparisons).

export type InjectionKind =
  | 'addresses_grader'
  | 'instruction_override'
  | 'verdict_request'
  | 'delimiter_spoof'
  | 'role_play';

/**
 * Run on untrusted essay text at admission and in every worker, so each must take time linear in
 * the text: no two adjacent quantifiers that can match the same characters (`\s*\/?\s*`), no
 * `\s*` that can run across line breaks from every line start. test/unit/llm/redos.test.ts checks
 * each one with a static ReDoS checker (recheck) and times its worst inputs at n and 4n.
 */
export const INJECTION_PATTERNS: ReadonlyArray<readonly [InjectionKind, RegExp]> = [
  [
    'addresses_grader',
    /\b(dear|hello|hi|attention|note to (the )?)\s*(grader|marker|examiner|teacher|judge|reviewer|assessor|ai|model|chatbot|claude|gpt)\b/i,
  ],
  ['addresses_grader', /\b(to|for) (the|any) (ai|grader|marker|examiner|language model|judge)\b/i],
  [
    'addresses_grader',
    /\b(you are|you're) (an? )?(ai|grader|marker|examiner|language model|assistant|judge)\b/i,
  ],
  ['addresses_grader', /\bas an ai\b/i],
  [
    'instruction_override',
    /\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(instructions?|rubric|rules|prompt|criteria|guidelines|above|previous)\b/i,
  ],
  ['instruction_override', /\b(system prompt|new instructions?|developer mode|jailbreak)\b/i],
  [
    'verdict_request',
    /\b(pick|choose|select|prefer|rank|grade|mark|rate|score)\b[^.!?\n]{0,30}\b(this|my|me)\b[^.!?\n]{0,30}\b(essay|response|answer|one|higher|highest|best|winner|first|top)\b/i,
  ],
  [
    'verdict_request',
    /\b(give|award)\b[^.!?\n]{0,20}\b(full marks|top marks|an? a\+?|the highest|maximum|a perfect)\b/i,
  ],
  ['verdict_request', /"?winner"?\s*[:=]\s*"?[ab]\b/i],
  ['delimiter_spoof', /<\/?\s*(pair|essay_a|essay_b|system|instructions?)\b/i],
  // The same tags pre-escaped or in look-alike brackets (fullwidth, angle quotes).
  ['delimiter_spoof', /(&lt;|[＜‹〈<])\s*(?:\/\s*)?(pair|essay_a|essay_b)\b/i],
  // Conversation role tags and chat-template tokens: an attempt to start a new turn. Only
  // horizontal whitespace around the role: a `\s*` here would rescan every following blank line
  // from each line start (quadratic in the number of line breaks).
  ['delimiter_spoof', /(?:^|\n)[^\S\n]*(human|assistant|system)[^\S\n]*:/i],
  [
    'delimiter_spoof',
    /<\|?\s*(im_start|im_end|endoftext|eot_id|start_header_id|end_header_id)\s*\|?>|\[\/?(inst|sys)\]|<<\/?sys>>/i,
  ],
  // A JSON verdict in the essay, in the answer's own shape.
  ['verdict_request', /"(pair_id|judgements)"\s*:/i],
  ['role_play', /\b(pretend|act as|roleplay|role-play|you must now)\b/i],
];

/** Heuristic detection of essay text aimed at the grader. Returns distinct kinds, in a stable order. */
export function detectInjection(text: string): InjectionKind[] {
  const kinds = new Set<InjectionKind>();
  for (const [kind, re] of INJECTION_PATTERNS) {
    if (re.test(text)) kinds.add(kind);
  }
  return [...kinds].sort();
}
