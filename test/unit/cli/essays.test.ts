// kubectl-cj's essay reader: every problem names the file (and line), non-UTF-8 bytes with their
// offset; nothing is submitted when any problem is found.

import { isUtf8 } from 'node:buffer';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_ESSAY_CHARS } from '../../../operator/src/api/index.js';
import {
  decodeUtf8,
  invalidUtf8Offset,
  oversizedEssays,
  readAnchors,
  readAssignment,
  readEssays,
  SourceError,
} from '../../../operator/src/cli/essays.js';
import { essayLimitFor } from '../../../operator/src/validation/index.js';

const root = mkdtempSync(path.join(tmpdir(), 'cj-cli-essays-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Deterministic PRNG (mulberry32) for the property test.
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('invalidUtf8Offset', () => {
  it('finds the first bad byte of known cases', () => {
    const at = (...b: number[]) => invalidUtf8Offset(Uint8Array.from(b));
    expect(at(0x61, 0x62)).toBe(-1);
    expect(at(...Buffer.from('naïve 日本 😀'))).toBe(-1);
    expect(at(0x61, 0xe9, 0x62)).toBe(1); // Latin-1 é
    expect(at(0xc0, 0x80)).toBe(0); // overlong NUL
    expect(at(0x61, 0xe0, 0x80, 0x80)).toBe(1); // overlong 3-byte
    expect(at(0xed, 0xa0, 0x80)).toBe(0); // UTF-16 surrogate
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // above U+10FFFF
    expect(at(0xf5, 0x80, 0x80, 0x80)).toBe(0);
    expect(at(0x61, 0x62, 0xe6, 0x97)).toBe(2); // truncated at the end
    expect(at(0xff)).toBe(0);
  });

  it('agrees with Buffer isUtf8 on random bytes (seed 20261122)', () => {
    const r = rng(20261122);
    for (let n = 0; n < 3000; n++) {
      const len = Math.floor(r() * 12);
      const b = Uint8Array.from({ length: len }, () =>
        r() < 0.5 ? Math.floor(r() * 0x80) : 0x80 + Math.floor(r() * 0x80),
      );
      const off = invalidUtf8Offset(b);
      expect(off === -1, `bytes ${Buffer.from(b).toString('hex')}`).toBe(isUtf8(b));
      if (off >= 0) expect(isUtf8(b.subarray(0, off))).toBe(true);
    }
  });
});

describe('readEssays', () => {
  it('reads a folder and reports each bad file by name, with byte offsets for non-UTF-8', () => {
    const dir = path.join(root, 'class');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'e1.txt'), 'A fine essay about phones.');
    writeFileSync(
      path.join(dir, 'e2.txt'),
      Buffer.concat([Buffer.from('Caf'), Buffer.from([0xe9]), Buffer.from(' au lait')]),
    );
    writeFileSync(path.join(dir, 'e3.txt'), '');
    writeFileSync(path.join(dir, 'e4.txt'), ' \n\t ');
    writeFileSync(path.join(dir, 'e5.txt'), 'x'.repeat(MAX_ESSAY_CHARS + 1));
    writeFileSync(path.join(dir, 'e6.txt'), '\ufeffWith a byte order mark.');
    const r = readEssays(dir);
    expect(r.essays.map((e) => [e.id, e.text])).toEqual([
      ['e1', 'A fine essay about phones.'],
      ['e6', 'With a byte order mark.'],
    ]);
    expect(r.problems).toEqual([
      `${dir}/e2.txt: not valid UTF-8 at byte 3 (line 1, byte 0xE9); save the file as UTF-8, e.g. iconv -f WINDOWS-1252 -t UTF-8 e2.txt > e2.txt.utf8 (use the encoding the file was written in)`,
      `${dir}/e3.txt: essay e3 has no text (empty or only whitespace); put the essay text in it or remove the essay`,
      `${dir}/e4.txt: essay e4 has no text (empty or only whitespace); put the essay text in it or remove the essay`,
      expect.stringMatching(
        new RegExp(
          `^${dir}/e5.txt: essay e5 has ${MAX_ESSAY_CHARS + 1} characters .*; shorten the essay or split it$`,
        ),
      ),
    ]);
  });

  it('reads JSONL and names the line of a bad essay; a non-UTF-8 file names line and offset', () => {
    const good = path.join(root, 'set.jsonl');
    writeFileSync(
      good,
      [
        JSON.stringify({ id: 'a1', text: 'First essay.' }),
        '',
        JSON.stringify({ id: 'a2', text: '   ' }),
        '{"id": "a3", "text": ',
        JSON.stringify({ id: 'a4' }),
      ].join('\n'),
    );
    const r = readEssays(good);
    expect(r.essays.map((e) => e.from)).toEqual([`${good} line 1`]);
    expect(r.problems).toEqual([
      `${good} line 3: essay a2 has no text (empty or only whitespace); put the essay text in it or remove the essay`,
      `${good} line 4 is not JSON; each line must be {"id": "...", "text": "..."}`,
      `${good} line 5 needs string fields "id" and "text"`,
    ]);
    const bad = path.join(root, 'latin1.jsonl');
    const line1 = Buffer.from(`${JSON.stringify({ id: 'b1', text: 'ok' })}\n`);
    writeFileSync(
      bad,
      Buffer.concat([
        line1,
        Buffer.from('{"id":"b2","text":"na'),
        Buffer.from([0xef, 0x76, 0x65]),
        Buffer.from('"}'),
      ]),
    );
    expect(readEssays(bad)).toEqual({
      essays: [],
      problems: [
        expect.stringContaining(`${bad}: not valid UTF-8 at byte ${line1.length + 21} (line 2, byte 0xEF)`),
      ],
    });
  });

  it('a missing source is a usage error', () => {
    expect(() => readEssays(path.join(root, 'nope'))).toThrow(SourceError);
  });

  it('decodeUtf8 keeps valid text as is', () => {
    expect(decodeUtf8(Buffer.from('日本 ok'), 'f')).toEqual({ text: '日本 ok' });
  });

  it('names oversized essays by file, with tokens and the limit', () => {
    const limit = essayLimitFor('small', { model: 'tiny-model', contextWindowTokens: 8_192 }, 50);
    const out = oversizedEssays(
      'essay',
      [
        { id: 'e1', text: 'short', from: 'class/e1.txt' },
        { id: 'e2', text: 'w'.repeat(40_000), from: 'class/e2.txt' },
      ],
      limit,
    );
    expect(out).toEqual([
      `class/e2.txt: essay e2 is about 10000 tokens (estimated from 40000 characters), over the limit of ${limit.tokens} tokens per essay for model tiny-model of LLMProviderPool "small" (context window 8192 tokens, less 2048 for instructions and answer and 50 for the assignment, shared by the two essays of a pair); shorten or split the essay, or use a pool whose model has a larger context window (spec.contextWindowTokens)`,
    ]);
  });
});

describe('readAnchors and readAssignment', () => {
  it('name the file and line of each bad anchor', () => {
    const f = path.join(root, 'anchors.jsonl');
    writeFileSync(
      f,
      [
        JSON.stringify({ id: 'a-f', grade: 'F', text: 'Phones. The end.' }),
        JSON.stringify({ id: 'a-b', grade: 'B', text: ' ' }),
        'null',
        '{"id": ',
      ].join('\n'),
    );
    const problems: string[] = [];
    expect(readAnchors(f, problems).map((a) => [a.id, a.grade])).toEqual([['a-f', 'F']]);
    expect(problems).toEqual([
      `${f} line 2: anchor a-b has no text (empty or only whitespace); put the anchor text in it or remove the anchor`,
      `${f} line 3 needs string fields "id", "grade" and "text"`,
      `${f} line 4 is not JSON; each line must be {"id": "...", "grade": "...", "text": "..."}`,
    ]);
    const latin = path.join(root, 'anchors-latin1.jsonl');
    writeFileSync(latin, Buffer.from([0x7b, 0xe9, 0x7d]));
    const p2: string[] = [];
    expect(readAnchors(latin, p2)).toEqual([]);
    expect(p2[0]).toContain(`${latin}: not valid UTF-8 at byte 1 (line 1, byte 0xE9)`);
  });

  it('refuse an assignment that is not JSON or lacks a field, naming the file', () => {
    const f = path.join(root, 'assignment.json');
    writeFileSync(f, JSON.stringify({ title: 'T', instructions: 'I', rubric: 'R' }));
    expect(readAssignment(f)).toEqual({ title: 'T', instructions: 'I', rubric: 'R' });
    writeFileSync(f, JSON.stringify({ title: 'T', rubric: '  ' }));
    expect(() => readAssignment(f)).toThrow(`${f} needs non-empty string fields "instructions", "rubric"`);
    writeFileSync(f, '{"title": ');
    expect(() => readAssignment(f)).toThrow(SourceError);
    expect(() => readAssignment(path.join(root, 'missing.json'))).toThrow('does not exist');
  });
});
