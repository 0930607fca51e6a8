// The store owns the schema and every query: no tagged SQL and no `postgres` import in product code
// outside runtime/src/store. A grep, so it also catches code no type check would flag.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const STORE = 'runtime/src/store/';
const ROOTS = ['contract', 'operator/src', 'runtime/src'];

const PATTERNS: [string, RegExp][] = [
  ['imports postgres', /from\s+['"]postgres['"]|import\(\s*['"]postgres['"]\s*\)/],
  ['tagged SQL', /\b(?:sql|tx)\s*`/],
  ['tagged SQL on a member', /\.sql\s*(?:<[^>`]*>)?\s*`/],
  ['raw SQL', /\.unsafe\s*(?:<[^>]*>)?\s*\(/],
  ['a transaction', /\b(?:sql|\.sql)\.begin\s*\(/],
];

function files(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(root, rel)).isDirectory()) return files(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

function offences(src: string): string[] {
  return PATTERNS.filter(([, re]) => re.test(src)).map(([what]) => what);
}

describe('SQL lives only in runtime/src/store', () => {
  const all = ROOTS.flatMap(files);

  it('finds the store and the product code it scans', () => {
    expect(all.filter((f) => f.startsWith(STORE)).length).toBeGreaterThan(5);
    expect(all.length).toBeGreaterThan(80);
  });

  it('no file outside the store imports postgres or runs SQL', () => {
    const found = all
      .filter((f) => !f.startsWith(STORE))
      .map((f) => ({ f, why: offences(readFileSync(path.join(root, f), 'utf8')) }))
      .filter((x) => x.why.length > 0)
      .map((x) => `${x.f}: ${x.why.join(', ')}`);
    expect(found).toEqual([]);
  });

  it('the patterns catch what they are meant to', () => {
    expect(offences("import postgres from 'postgres';")).toContain('imports postgres');
    expect(offences('await sql`SELECT 1`')).toContain('tagged SQL');
    expect(offences('await tx`DELETE FROM x`')).toContain('tagged SQL');
    expect(offences('await this.d.sql`SELECT 1`')).toContain('tagged SQL on a member');
    expect(offences('await o.sql<{ n: number }[]>`SELECT 1`')).toContain('tagged SQL on a member');
    expect(offences('sql.unsafe(`SELECT ${x}`)')).toContain('raw SQL');
    expect(offences('return sql.begin(async (tx) => 1)')).toContain('a transaction');
    expect(offences('const s = `plain ${template}`; obj.sqlish = 1;')).toEqual([]);
  });
});
