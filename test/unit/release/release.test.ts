// npm run release: the pure parts (semver order, the CHANGELOG section), then the script itself in
// a temporary copy of the tree, with the image step off (no Docker here): every file that names
// the version is updated, the chart package and the CLI bundle carry the new version, SHA256SUMS
// matches, and a refused version leaves the tree as it was.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, requireTool, toolPaths } from '../../../hack/lib/tools.js';
import { compareSemver, ReleaseError, releaseChangelog } from '../../../hack/release.js';

describe('compareSemver', () => {
  it('orders by semver.org precedence', () => {
    const sorted = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.10.0',
    ];
    for (let i = 1; i < sorted.length; i++)
      expect(compareSemver(sorted[i - 1]!, sorted[i]!), sorted[i]).toBeLessThan(0);
    expect(compareSemver('0.2.0+build.5', '0.2.0')).toBe(0);
    expect(() => compareSemver('0.2', '0.1.0')).toThrow(ReleaseError);
  });
});

describe('releaseChangelog', () => {
  const text = `# Changelog\n\n## [Unreleased]\n\n### Added\n\n- a thing\n\n## [0.1.0] - 2026-11-30\n\n- first\n\n[Unreleased]: https://x/r/compare/v0.1.0...HEAD\n[0.1.0]: https://x/r/releases/tag/v0.1.0\n`;
  it('turns Unreleased into the version, keeps an empty Unreleased, and links both', () => {
    expect(releaseChangelog(text, '0.2.0', '0.1.0', '2026-12-24')).toBe(
      `# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-24\n\n### Added\n\n- a thing\n\n## [0.1.0] - 2026-11-30\n\n- first\n\n[Unreleased]: https://x/r/compare/v0.2.0...HEAD\n[0.2.0]: https://x/r/compare/v0.1.0...v0.2.0\n[0.1.0]: https://x/r/releases/tag/v0.1.0\n`,
    );
  });
  it('refuses an empty Unreleased section', () => {
    expect(() => releaseChangelog(text.replace('- a thing\n', ''), '0.2.0', '0.1.0', '2026-12-24')).toThrow(
      /no entries/,
    );
  });
});

describe('npm run release in a copy of the tree (image off)', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cj-release-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const copy = () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot })
      .toString()
      .split('\0')
      .filter((f) => f && !f.startsWith('node_modules/'));
    for (const f of files) cpSync(path.join(repoRoot, f), path.join(tmp, f), { recursive: true });
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(tmp, 'node_modules'));
  };
  const release = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'hack/release.ts', ...args], {
      cwd: tmp,
      encoding: 'utf8',
    });
  const read = (f: string) => readFileSync(path.join(tmp, f), 'utf8');

  it('refuses a bad version and changes nothing; releases 0.2.0 with every artifact', () => {
    copy();
    const prev = JSON.parse(read('package.json')).version as string;
    const before = read('package.json') + read('CHANGELOG.md') + read('charts/cj-operator/Chart.yaml');
    let r = release('0.2');
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('0.2 is not a semantic version');
    r = release(`0.2.0-${'1'.repeat(100)}`);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('a version has at most 64 characters; got 106');
    r = release('0.0.1', '--image', 'no');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`0.0.1 is not above the current version ${prev}`);
    r = release('0.2.0', '--imag', 'no');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Unknown option '--imag'/);
    expect(read('package.json') + read('CHANGELOG.md') + read('charts/cj-operator/Chart.yaml')).toBe(before);

    r = release('0.2.0', '--date', '2026-12-24', '--image', 'no');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('image: not built (--image no)');
    expect(JSON.parse(read('package.json')).version).toBe('0.2.0');
    const lock = JSON.parse(read('package-lock.json'));
    expect([lock.version, lock.packages[''].version]).toEqual(['0.2.0', '0.2.0']);
    expect(read('charts/cj-operator/Chart.yaml')).toMatch(/^version: 0\.2\.0$/m);
    expect(read('charts/cj-operator/Chart.yaml')).toMatch(/^appVersion: "0\.2\.0"$/m);
    expect(read('charts/cj-operator/README.md')).toContain('Chart version 0.2.0, app version 0.2.0');
    expect(read('config/manager/deployment.yaml')).toContain('ghcr.io/huleedu/cj-operator:0.2.0');
    expect(read('config/manager/deployment.yaml')).not.toContain(`cj-operator:${prev}`);
    expect(read('README.md')).toContain('download/v0.2.0/kubectl-cj-0.2.0.tgz');
    expect(read('docs/install.md')).toMatch(/newTag: 0\.2\.0$/m);
    const log = read('CHANGELOG.md');
    expect(log).toMatch(/## \[Unreleased\]\n\n## \[0\.2\.0\] - 2026-12-24\n\n### /);
    expect(log).toContain(`[0.2.0]: https://github.com/huleedu/cj-operator/compare/v${prev}...v0.2.0`);

    const out = path.join(tmp, 'dist/release/0.2.0');
    // The bundle alone in an empty directory, as a user copies it onto PATH.
    const alone = mkdtempSync(path.join(os.tmpdir(), 'cj-release-bin-'));
    copyFileSync(path.join(out, 'kubectl-cj'), path.join(alone, 'kubectl-cj'));
    chmodSync(path.join(alone, 'kubectl-cj'), 0o755);
    const shown = execFileSync(path.join(alone, 'kubectl-cj'), ['--version'], { encoding: 'utf8' });
    rmSync(alone, { recursive: true, force: true });
    expect(shown.trim()).toBe('kubectl-cj 0.2.0');
    const chart = execFileSync(
      requireTool(toolPaths().helm, 'helm'),
      ['show', 'chart', path.join(out, 'cj-operator-0.2.0.tgz')],
      { encoding: 'utf8' },
    );
    expect(chart).toMatch(/^version: 0\.2\.0$/m);
    expect(chart).toMatch(/^appVersion: 0\.2\.0$/m);
    expect(readFileSync(path.join(out, 'krew-cj.yaml'), 'utf8')).toContain('version: v0.2.0');
    const sums = readFileSync(path.join(out, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(sums.map((l) => l.split('  ')[1]).sort()).toEqual(
      [
        'cj-operator-0.2.0.tgz',
        'krew-cj.yaml',
        'kubectl-cj',
        'kubectl-cj-0.2.0.tar.gz',
        'kubectl-cj-0.2.0.tgz',
      ].sort(),
    );
    for (const l of sums) {
      const [sum, f] = l.split('  ');
      expect(
        createHash('sha256')
          .update(readFileSync(path.join(out, f!)))
          .digest('hex'),
        f,
      ).toBe(sum);
    }
  }, 180_000);
});
