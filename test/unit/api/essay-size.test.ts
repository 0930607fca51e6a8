// Essay size and emptiness: the static bound is consistent with the smallest context window, the
// token estimate is conservative, and the schema (the CEL rules' twins) names the essay and the fix.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  CJBatchSpecSchema,
  DEFAULT_CONTEXT_WINDOW_TOKENS,
  essayTokenLimit,
  estimateTokens,
  LLMProviderPoolSpecSchema,
  MAX_ESSAY_CHARS,
} from '../../../operator/src/api/index.js';

const sample = (f: string) => YAML.parse(readFileSync(`config/samples/${f}`, 'utf8'));
const batchSpec = (mutate: (s: any) => void) => {
  const s = structuredClone(sample('cjbatch-small.yaml').spec);
  mutate(s);
  return s;
};
const issues = (spec: unknown) => {
  const r = CJBatchSpecSchema.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
};

describe('essay size bounds', () => {
  it('the static bound fits the default context window even at one token per character', () => {
    const largestAssignment = 1_000 + 20_000 + 20_000; // title, instructions, rubric maxLength
    expect(MAX_ESSAY_CHARS).toBeLessThanOrEqual(
      essayTokenLimit(DEFAULT_CONTEXT_WINDOW_TOKENS, largestAssignment),
    );
  });

  it('estimates 4 ASCII characters or 1 other character per token', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
    expect(estimateTokens('日本語')).toBe(3);
    expect(estimateTokens('café au lait')).toBe(Math.ceil(11 / 4) + 1);
    // Never below the common 4.5 characters per token of English prose.
    const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(100);
    expect(estimateTokens(prose)).toBeGreaterThanOrEqual(prose.length / 4.5);
  });

  it('refuses empty and whitespace-only essays and anchors, naming them', () => {
    expect(issues(batchSpec((s) => (s.essays.inline[2].text = '')))).toEqual([
      {
        path: 'essays.inline.2.text',
        message:
          'essay essay-03 has no text (empty or only whitespace); put the essay text in it or remove the essay',
      },
    ]);
    expect(issues(batchSpec((s) => (s.essays.inline[0].text = ' \n\t\u00a0 ')))[0]?.message).toContain(
      'essay essay-01 has no text',
    );
    expect(issues(batchSpec((s) => (s.anchors[1].text = '   ')))).toEqual([
      {
        path: 'anchors.1.text',
        message:
          'anchor anchor-d has no text (empty or only whitespace); put the anchor text in it or remove the anchor',
      },
    ]);
  });

  it('refuses an essay over the static bound with its size, estimated tokens and the fix', () => {
    expect(issues(batchSpec((s) => (s.essays.inline[1].text = 'a'.repeat(MAX_ESSAY_CHARS))))).toEqual([]);
    expect(issues(batchSpec((s) => (s.essays.inline[1].text = 'a'.repeat(MAX_ESSAY_CHARS + 1))))).toEqual([
      {
        path: 'essays.inline.1.text',
        message: `essay essay-02 has ${MAX_ESSAY_CHARS + 1} characters (about 12500 tokens or more), over the limit of ${MAX_ESSAY_CHARS} characters that keeps a comparison prompt within the context window of the model; shorten the essay or split it`,
      },
    ]);
    // Characters are code points, as CEL's size() counts them.
    expect(issues(batchSpec((s) => (s.essays.inline[1].text = '😀'.repeat(MAX_ESSAY_CHARS))))).toEqual([]);
  });

  it('a pool may state its model context window, within bounds', () => {
    const pool = sample('llmproviderpool.yaml').spec;
    expect(LLMProviderPoolSpecSchema.safeParse({ ...pool, contextWindowTokens: 8_192 }).success).toBe(true);
    expect(LLMProviderPoolSpecSchema.safeParse({ ...pool, contextWindowTokens: 100 }).success).toBe(false);
    expect(LLMProviderPoolSpecSchema.safeParse({ ...pool, contextWindowTokens: 1.5e4 + 0.5 }).success).toBe(
      false,
    );
  });
});

describe('grade names', () => {
  it('allow words and symbols, refuse line breaks, tabs, control characters and padding', () => {
    for (const g of ['A', 'B+', 'Merit', 'Grade 5', 'É', '5/6'])
      expect(issues(batchSpec((s) => (s.gradeScale.grades[5] = s.anchors[3].grade = g))), g).toEqual([]);
    for (const g of [' \n\t ', 'A\nB', 'A\tB', ' A', 'A ', 'A  B', 'A\u0007'])
      expect(
        issues(batchSpec((s) => (s.gradeScale.grades[5] = g))).map((i) => i.path),
        JSON.stringify(g),
      ).toContain('gradeScale.grades.5');
  });
});
