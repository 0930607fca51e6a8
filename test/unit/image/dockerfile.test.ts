// What `docker build` would trip over, checked without Docker (the e2e tier builds and runs the
// image for real): every COPY source exists and is in the build context (.dockerignore), the
// TypeScript build needs nothing the context lacks, what must not ship is set aside, and the entry
// points' import graph (in dist/, built by `npm test` before this tier) needs only production
// dependencies, which are all the runtime stage installs (`npm ci --omit=dev`).
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const ignored = readFileSync(path.join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

/** Sources of the `COPY` lines that read the build context (not `--from=` another stage). */
function contextCopies(): string[] {
  return dockerfile
    .split('\n')
    .filter((l) => /^COPY\s/.test(l) && !l.includes('--from='))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
}

// Docker's .dockerignore globs: `*` within a path segment, a leading `**/` any directories.
const isIgnored = (p: string) =>
  ignored.some((pattern) => {
    const glob = pattern
      .replace(/\./g, '\\.')
      .replace(/^\*\*\//, '\0')
      .replace(/\*/g, '[^/]*')
      .replace('\0', '(?:.*/)?');
    return new RegExp(`^${glob}(/|$)`).test(p);
  });

describe('Dockerfile', () => {
  it('copies only sources that exist and are in the build context', () => {
    const copies = contextCopies();
    expect(copies).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', '.']));
    for (const src of copies.filter((c) => c !== '.')) {
      expect(existsSync(path.join(root, src)), `${src} exists`).toBe(true);
      expect(isIgnored(src), `${src} is excluded by .dockerignore`).toBe(false);
    }
  });

  it('copies the directory of every file: dependency before each npm ci (npm links it there)', () => {
    const local = Object.values({ ...pkg.dependencies, ...pkg.devDependencies } as Record<string, string>)
      .filter((v) => v.startsWith('file:'))
      .map((v) => v.slice('file:'.length).split('/')[0]!);
    expect(local).toContain('vendor');
    const stages = dockerfile.split(/^FROM /m).filter((s) => /^RUN npm ci/m.test(s));
    expect(stages).toHaveLength(2); // deps and build
    for (const stage of stages) {
      const ci = stage.search(/^RUN npm ci/m);
      for (const dir of local) {
        const copy = stage.search(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
        expect(copy, `${stage.split('\n')[0]}: COPY ${dir} before npm ci`).toBeGreaterThan(-1);
        expect(copy).toBeLessThan(ci);
      }
    }
  });

  it("builds from what it copies: tsconfig.build.json's inputs are in the build context", () => {
    expect(dockerfile).toMatch(/^COPY \. \.$/m); // the build stage copies the whole context
    const build = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
    for (const glob of build.include as string[]) {
      const top = glob.split('/')[0]!;
      expect(isIgnored(top), `${glob} needs ${top}/, excluded by .dockerignore`).toBe(false);
    }
    expect(isIgnored(build.extends.replace('./', ''))).toBe(false);
  });

  it('leaves documents out of the context, vendored ones included', () => {
    for (const doc of ['README.md', 'vendor/postgres/PATCHES.md', 'vendor/postgres/README.md'])
      expect(isIgnored(doc), `${doc} is in the build context`).toBe(true);
    expect(isIgnored('vendor/postgres/src/index.js')).toBe(false);
  });

  it('ships neither hack/ nor the fake Anthropic server; the fake-judge target has it', () => {
    expect(dockerfile).toContain('rm -rf dist/hack');
    expect(dockerfile).toContain('mv dist/runtime/src/fake-anthropic /fake/runtime/src/');
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
    expect(runtimeStage).not.toContain('/fake');
    expect(dockerfile).toMatch(/FROM deps AS fake-judge[\s\S]*COPY --from=build \/fake \/app\/dist/);
  });

  it('runs as a non-root user with the operator as the default command', () => {
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
    expect(runtimeStage).toMatch(/^FROM deps AS runtime$/m);
    expect(runtimeStage).toMatch(/^USER 65532:65532$/m);
    const deps = dockerfile.slice(dockerfile.indexOf(' AS deps'), dockerfile.indexOf(' AS build'));
    expect(deps).toMatch(/npm ci --omit=dev/);
    expect(runtimeStage).toContain('CMD ["/app/dist/operator/src/main.js"]');
  });

  it("needs only production dependencies at run time (the entry points' import graph)", () => {
    const entries = [
      'dist/operator/src/main.js',
      'dist/runtime/src/main.js',
      'dist/operator/src/cli/kubectl-cj.js',
    ];
    for (const e of entries) expect(existsSync(path.join(root, e)), `${e} (run npm run build)`).toBe(true);
    const deps = new Set(Object.keys(pkg.dependencies));
    const builtins = new Set(builtinModules);
    const seen = new Set<string>();
    const packages = new Map<string, string>();
    const stack = entries.map((e) => path.join(root, e));
    while (stack.length) {
      const file = stack.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          expect(target.startsWith(path.join(root, 'dist')), `${file} imports ${spec} outside dist/`).toBe(
            true,
          );
          stack.push(target);
        } else if (!spec.startsWith('node:') && !builtins.has(spec)) {
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          packages.set(name, path.relative(root, file));
        }
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    expect([...packages.keys()]).toEqual(
      expect.arrayContaining(['zod', 'postgres', '@kubernetes/client-node']),
    );
    for (const [name, from] of packages) expect(deps.has(name), `${name} (imported by ${from})`).toBe(true);
  });
});
