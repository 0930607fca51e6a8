// Reading a teacher's essays for `kubectl cj submit`: a folder (one file per essay, id = file name
// without extension) or a JSONL file ({"id","text"} per line). Every problem is reported with the
// file (and line) it came from, before anything is written to the cluster: bytes that are not
// UTF-8 (with the byte offset), empty or whitespace-only essays, essays over the static size
// bound, and (once the pool is known) essays too large for the pool's model.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { essayTextProblem, isBlank } from '../api/index.js';
import { type EssayLimit, essayTokenProblem } from '../validation/index.js';

export interface FileEssay {
  id: string;
  text: string;
  /** Where it came from, for messages: `essays/e1.txt` or `essays.jsonl line 3`. */
  from: string;
}

export interface ReadResult {
  essays: FileEssay[];
  /** Problems that stop the submission, each naming the file (and line). */
  problems: string[];
}

/**
 * Offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF are invalid), or -1 when all of `b` is UTF-8.
 */
export function invalidUtf8Offset(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    if (i + n >= b.length) return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k]!;
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(2, '0')}`;

/** Decodes `buf` as UTF-8 (a leading BOM is dropped), or returns a message naming `label` and the byte offset. */
export function decodeUtf8(buf: Buffer, label: string): { text: string } | { problem: string } {
  const at = invalidUtf8Offset(buf);
  if (at >= 0) {
    const line = buf.subarray(0, at).filter((x) => x === 0x0a).length + 1;
    const file = path.basename(label);
    return {
      problem:
        `${label}: not valid UTF-8 at byte ${at} (line ${line}, byte ${hex(buf[at]!)}); save the file as UTF-8, ` +
        `e.g. iconv -f WINDOWS-1252 -t UTF-8 ${file} > ${file}.utf8 (use the encoding the file was written in)`,
    };
  }
  const text = buf.toString('utf8');
  return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
}

export class SourceError extends Error {}

export function readEssays(source: string): ReadResult {
  if (!existsSync(source)) throw new SourceError(`${source} does not exist`);
  const essays: FileEssay[] = [];
  const problems: string[] = [];
  const add = (id: string, text: string, from: string) => {
    const p = essayTextProblem('essay', id, text);
    if (p) problems.push(`${from}: ${p}`);
    else essays.push({ id, text, from });
  };
  if (statSync(source).isDirectory()) {
    const files = readdirSync(source)
      .filter((f) => !f.startsWith('.') && statSync(path.join(source, f)).isFile())
      .sort();
    for (const f of files) {
      const label = path.join(source, f);
      const decoded = decodeUtf8(readFileSync(label), label);
      if ('problem' in decoded) problems.push(decoded.problem);
      else add(f.replace(/\.[^.]+$/, ''), decoded.text, label);
    }
    return { essays, problems };
  }
  const decoded = decodeUtf8(readFileSync(source), source);
  if ('problem' in decoded) return { essays, problems: [decoded.problem] };
  decoded.text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const from = `${source} line ${i + 1}`;
    let o: { id?: unknown; text?: unknown };
    try {
      o = JSON.parse(line);
    } catch {
      problems.push(`${from} is not JSON; each line must be {"id": "...", "text": "..."}`);
      return;
    }
    if (typeof o?.id !== 'string' || typeof o.text !== 'string')
      problems.push(`${from} needs string fields "id" and "text"`);
    else add(o.id, o.text, from);
  });
  return { essays, problems };
}

/** Essays (or anchors) too large for one comparison prompt of the pool's model, named by file. */
export function oversizedEssays(
  what: 'essay' | 'anchor',
  items: readonly FileEssay[],
  limit: EssayLimit,
): string[] {
  const out: string[] = [];
  for (const e of items) {
    const p = essayTokenProblem(what, e.id, e.text, limit);
    if (p) out.push(`${e.from}: ${p}`);
  }
  return out;
}

/** Anchors from a JSONL file ({"id","grade","text"} per line); problems named by line. */
export function readAnchors(file: string, problems: string[]): (FileEssay & { grade: string })[] {
  if (!existsSync(file)) throw new SourceError(`${file} does not exist`);
  const decoded = decodeUtf8(readFileSync(file), file);
  if ('problem' in decoded) {
    problems.push(decoded.problem);
    return [];
  }
  const out: (FileEssay & { grade: string })[] = [];
  decoded.text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    const from = `${file} line ${i + 1}`;
    let o: { id?: unknown; grade?: unknown; text?: unknown } | null;
    try {
      o = JSON.parse(raw);
    } catch {
      problems.push(`${from} is not JSON; each line must be {"id": "...", "grade": "...", "text": "..."}`);
      return;
    }
    if (typeof o?.id !== 'string' || typeof o.grade !== 'string' || typeof o.text !== 'string') {
      problems.push(`${from} needs string fields "id", "grade" and "text"`);
      return;
    }
    const p = essayTextProblem('anchor', o.id, o.text);
    if (p) problems.push(`${from}: ${p}`);
    else out.push({ id: o.id, grade: o.grade, text: o.text, from });
  });
  return out;
}

export interface AssignmentFile {
  title: string;
  instructions: string;
  rubric: string;
}

/** The assignment from a JSON file {"title","instructions","rubric"}; a clear error otherwise. */
export function readAssignment(file: string): AssignmentFile {
  if (!existsSync(file)) throw new SourceError(`${file} does not exist`);
  const decoded = decodeUtf8(readFileSync(file), file);
  if ('problem' in decoded) throw new SourceError(decoded.problem);
  let o: Partial<Record<keyof AssignmentFile, unknown>> | null;
  try {
    o = JSON.parse(decoded.text);
  } catch (err) {
    throw new SourceError(
      `${file} is not JSON (${(err as Error).message}); it must be {"title", "instructions", "rubric"}`,
    );
  }
  const missing = (['title', 'instructions', 'rubric'] as const).filter(
    (k) => typeof o?.[k] !== 'string' || isBlank(o[k] as string),
  );
  if (missing.length > 0)
    throw new SourceError(`${file} needs non-empty string fields ${missing.map((k) => `"${k}"`).join(', ')}`);
  return { title: o!.title as string, instructions: o!.instructions as string, rubric: o!.rubric as string };
}
