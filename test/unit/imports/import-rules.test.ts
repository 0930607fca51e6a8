// The import rules of biome.json (noRestrictedImports per room) fail the lint when broken: each case
// is a deliberately wrong import in a fixture file at a path of the room it breaks, linted with the
// repository's own configuration; the same files with allowed imports pass.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const biome = path.join(root, 'node_modules/.bin/biome');
const dir = mkdtempSync(path.join(tmpdir(), 'cj-import-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = JSON.parse(readFileSync(path.join(root, 'biome.json'), 'utf8'));
delete config.$schema;
delete config.vcs;
writeFileSync(path.join(dir, 'biome.json'), JSON.stringify(config));

/** [file in the room, a wrong import, an allowed import] */
const CASES: [string, string, string][] = [
  [
    'contract/src/x.ts',
    "import { a } from '../../operator/src/api/index.js';",
    "import { a } from './tiers.js';",
  ],
  [
    'contract/src/x.ts',
    "import { a } from '../../runtime/src/store/rounds.js';",
    "import { a } from './job.js';",
  ],
  ['contract/src/x.ts', "import { a } from 'node:fs';", "import { a } from 'zod';"],
  ['runtime/src/cj/x.ts', "import { a } from '../store/rounds.js';", "import { a } from './fit.js';"],
  [
    'runtime/src/cj/x.ts',
    "import { a } from '../llm/prompt.js';",
    "import { a } from '../../../contract/src/tiers.js';",
  ],
  ['runtime/src/cj/x.ts', "import { a } from 'node:http';", "import { a } from './rng.js';"],
  ['runtime/src/llm/x.ts', "import { a } from '../store/claims.js';", "import { a } from './prompt.js';"],
  [
    'runtime/src/llm/x.ts',
    "import { a } from '../cj/plan.js';",
    "import { a } from '../../../contract/src/cost.js';",
  ],
  [
    'runtime/src/store/x.ts',
    "import { a } from '../llm/types.js';",
    "import { a } from '../../../contract/src/outcome.js';",
  ],
  [
    'runtime/src/store/x.ts',
    "import { a } from '../worker/pool-limiter.js';",
    "import { a } from './db.js';",
  ],
  [
    'runtime/src/worker/x.ts',
    "import { a } from '../../../operator/src/api/index.js';",
    "import { a } from '../llm/comparer.js';",
  ],
  [
    'runtime/src/worker/x.ts',
    "import { a } from '../store/db.js';",
    "import { a } from '../store/index.js';",
  ],
  ['runtime/src/worker/x.ts', "import postgres from 'postgres';", "import { a } from '../store/claims.js';"],
  [
    'operator/src/controllers/x.ts',
    "import { a } from '../../../runtime/src/llm/prompt.js';",
    "import { a } from '../../../runtime/src/store/rounds.js';",
  ],
  [
    'operator/src/controllers/x.ts',
    "import { a } from '../../../runtime/src/store/db.js';",
    "import { a } from '../../../runtime/src/store/index.js';",
  ],
  ['operator/src/main.ts', "import postgres from 'postgres';", "import { a } from './config.js';"],
  [
    'operator/src/cli/x.ts',
    "import { a } from '../controllers/cjbatch/finalize.js';",
    "import { a } from '../../../contract/src/results.js';",
  ],
  [
    'operator/src/cli/x.ts',
    "import { a } from '../../../runtime/src/store/index.js';",
    "import { a } from '../api/index.js';",
  ],
];

/** Files with a noRestrictedImports error, after linting `files` (path → source) in the fixture tree. */
function lint(files: [string, string][]): string[] {
  rmSync(path.join(dir, 'src'), { recursive: true, force: true });
  for (const [f, src] of files) {
    const p = path.join(dir, 'src', f);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, `${src}\nexport const b = a;\n`);
  }
  // The fixture tree sits under src/ so the paths match the rooms relative to the config.
  writeFileSync(
    path.join(dir, 'biome.json'),
    JSON.stringify({
      ...config,
      overrides: config.overrides.map((o: { includes: string[] }) => ({
        ...o,
        includes: o.includes.map((g) => `src/${g}`),
      })),
    }),
  );
  const r = spawnSync(biome, ['lint', '--max-diagnostics=200', 'src'], { cwd: dir, encoding: 'utf8' });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(out, out).not.toMatch(/Configuration resulted in errors|deserialize/);
  return [...out.matchAll(/^src\/(\S+?):\d+:\d+ lint\/style\/noRestrictedImports/gm)].map((m) => m[1]!);
}

describe('import rules (biome.json noRestrictedImports)', () => {
  it('every deliberately wrong import fails the lint, each in its own room', () => {
    CASES.forEach(([file, bad], i) => {
      const f = file.replace(/\.ts$/, `-${i}.ts`);
      expect(lint([[f, bad]]), `${f}: ${bad}`).toEqual([f]);
    });
  }, 120_000);

  it('the allowed imports pass', () => {
    const files = CASES.map(([file, , good], i): [string, string] => [
      file.replace(/\.ts$/, `-${i}.ts`),
      good,
    ]);
    expect(lint(files)).toEqual([]);
  }, 60_000);
});
