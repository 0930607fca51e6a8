// `npm run release -- <version>`: cuts a release of the one version the project carries
// (CHANGELOG.md says which artifacts share it). In the working tree:
//   1. checks the version is semver (semver.org 2.0.0) and above package.json's, and that the
//      CHANGELOG's [Unreleased] section has entries;
//   2. sets it in package.json and package-lock.json, the chart's version and appVersion, the
//      kustomize base's image, the install lines of the docs, and turns [Unreleased] into
//      [<version>] - <date> (with a new empty [Unreleased] and the compare links);
//   3. regenerates the chart README, builds the CLI bundle (its --version is the package's), the
//      npm package and krew archive (`npm run build:cli`), packages the chart (`helm package`),
//      and builds the image ghcr.io/huleedu/cj-operator:<version> when Docker is available
//      (`--image auto`, the default; `--image no` never, `--image yes` or fail);
//   4. puts the artifacts and their SHA256SUMS in dist/release/<version>/ and prints the git
//      commands that commit and tag it (it never commits, tags or pushes itself).
//   npm run release -- 0.2.0 [--date 2026-12-24] [--image auto|yes|no]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, requireTool, toolPaths } from './lib/tools.js';

export const IMAGE = 'ghcr.io/huleedu/cj-operator';
// semver.org's recommended regular expression (numbered groups).
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

const MAX_VERSION_LENGTH = 64;

export class ReleaseError extends Error {}

/** Semver precedence: negative when a < b (build metadata ignored, prereleases below releases). */
export function compareSemver(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (!pa || !pb) throw new ReleaseError(`not semver: ${pa ? b : a}`);
  for (let i = 1; i <= 3; i++) if (Number(pa[i]) !== Number(pb[i])) return Number(pa[i]) - Number(pb[i]);
  if (!pa[4] || !pb[4]) return (pa[4] ? -1 : 0) - (pb[4] ? -1 : 0);
  const xa = pa[4].split('.');
  const xb = pb[4].split('.');
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    if (xa[i] === undefined) return -1;
    if (xb[i] === undefined) return 1;
    const na = /^\d+$/.test(xa[i]!);
    const nb = /^\d+$/.test(xb[i]!);
    if (na && nb && Number(xa[i]) !== Number(xb[i])) return Number(xa[i]) - Number(xb[i]);
    if (na !== nb) return na ? -1 : 1;
    if (xa[i]! < xb[i]!) return -1;
    if (xa[i]! > xb[i]!) return 1;
  }
  return 0;
}

/** The CHANGELOG with [Unreleased] released as `version` on `date`, and its compare links. */
export function releaseChangelog(text: string, version: string, prev: string, date: string): string {
  const head = /^## \[Unreleased\][^\n]*\n/m.exec(text);
  if (!head) throw new ReleaseError('CHANGELOG.md has no "## [Unreleased]" section');
  const start = head.index + head[0].length;
  const next = text.slice(start).search(/^## \[/m);
  const body = next < 0 ? text.slice(start) : text.slice(start, start + next);
  if (!/^- /m.test(body))
    throw new ReleaseError('CHANGELOG.md: the [Unreleased] section has no entries; write what changed first');
  const link = /^\[Unreleased\]: (.*)\/compare\/v(\S+)\.\.\.HEAD$/m.exec(text);
  if (!link) throw new ReleaseError('CHANGELOG.md has no "[Unreleased]: …/compare/v<prev>...HEAD" link');
  const out = `${text.slice(0, head.index)}## [Unreleased]\n\n## [${version}] - ${date}\n${body.replace(/^\n*/, '\n')}${next < 0 ? '' : text.slice(start + next)}`;
  return out.replace(
    link[0],
    `[Unreleased]: ${link[1]}/compare/v${version}...HEAD\n[${version}]: ${link[1]}/compare/v${prev}...v${version}`,
  );
}

/** Files that name the version, and how each is rewritten from `prev` to `version`. */
export function versionEdits(prev: string, version: string): { file: string; edit: (s: string) => string }[] {
  const all = (s: string, from: string, to: string) => s.split(from).join(to);
  const docs = (s: string) =>
    all(
      all(s, `download/v${prev}/kubectl-cj-${prev}.tgz`, `download/v${version}/kubectl-cj-${version}.tgz`),
      `${IMAGE}:${prev}`,
      `${IMAGE}:${version}`,
    ).replace(new RegExp(`newTag: ${prev.replace(/\./g, '\\.')}$`, 'm'), `newTag: ${version}`);
  return [
    {
      file: 'package.json',
      edit: (s) => s.replace(/^( {2}"version": )"[^"]+"/m, `$1"${version}"`),
    },
    {
      file: 'package-lock.json',
      edit: (s) => {
        const lock = JSON.parse(s);
        lock.version = version;
        if (lock.packages?.['']) lock.packages[''].version = version;
        return `${JSON.stringify(lock, null, 2)}\n`;
      },
    },
    {
      file: 'charts/cj-operator/Chart.yaml',
      edit: (s) =>
        s
          .replace(/^version: .*$/m, `version: ${version}`)
          .replace(/^appVersion: .*$/m, `appVersion: "${version}"`),
    },
    {
      file: 'config/manager/deployment.yaml',
      edit: (s) => all(s, `${IMAGE}:${prev}`, `${IMAGE}:${version}`),
    },
    { file: 'README.md', edit: docs },
    { file: 'docs/teachers.md', edit: docs },
    { file: 'docs/install.md', edit: docs },
  ];
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export async function release(argv: string[], root = repoRoot): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { date: { type: 'string' }, image: { type: 'string', default: 'auto' } },
    allowPositionals: true,
    strict: true,
  });
  const version = positionals[0];
  if (positionals.length !== 1 || !version)
    throw new ReleaseError('usage: npm run release -- <version> [--date YYYY-MM-DD] [--image auto|yes|no]');
  // Bounded before the pattern (whose prerelease part backtracks on long digit runs).
  if (version.length > MAX_VERSION_LENGTH)
    throw new ReleaseError(`a version has at most ${MAX_VERSION_LENGTH} characters; got ${version.length}`);
  if (!SEMVER.test(version))
    throw new ReleaseError(
      `${version} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 0.2.0; semver.org)`,
    );
  const image = values.image!;
  if (!['auto', 'yes', 'no'].includes(image)) throw new ReleaseError(`--image ${image}: use auto, yes or no`);
  const date = values.date ?? new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new ReleaseError(`--date ${date}: use YYYY-MM-DD`);
  const file = (f: string) => path.join(root, f);
  const prev = (JSON.parse(readFileSync(file('package.json'), 'utf8')) as { version: string }).version;
  if (compareSemver(version, prev) <= 0)
    throw new ReleaseError(`${version} is not above the current version ${prev} (package.json)`);
  const withDocker = image === 'yes' || (image === 'auto' && dockerAvailable());
  if (image === 'yes' && !dockerAvailable())
    throw new ReleaseError('--image yes: docker is not available (docker info failed)');

  // Check everything before writing anything: a refused release leaves the tree as it was.
  const changelog = releaseChangelog(readFileSync(file('CHANGELOG.md'), 'utf8'), version, prev, date);
  const edits = versionEdits(prev, version).map(({ file: f, edit }) => {
    const before = readFileSync(file(f), 'utf8');
    const after = edit(before);
    if (after === before) throw new ReleaseError(`${f}: found no version ${prev} to replace`);
    return [f, after] as const;
  });
  for (const [f, text] of edits) writeFileSync(file(f), text);
  writeFileSync(file('CHANGELOG.md'), changelog);
  console.log(`[release] ${prev} → ${version}: ${edits.map(([f]) => f).join(', ')}, CHANGELOG.md`);

  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
  run(process.execPath, ['--import', 'tsx', 'hack/chart-readme.ts']);
  run(process.execPath, ['--import', 'tsx', 'hack/cli/build.ts']);
  const out = file(`dist/release/${version}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  run(requireTool(toolPaths().helm, 'helm'), ['package', file('charts/cj-operator'), '-d', out]);
  const cli = file('dist/cli');
  for (const f of ['kubectl-cj', `kubectl-cj-${version}.tgz`, `kubectl-cj-${version}.tar.gz`])
    copyFileSync(path.join(cli, f), path.join(out, f));
  copyFileSync(path.join(cli, 'krew', 'cj.yaml'), path.join(out, 'krew-cj.yaml'));
  // As users run it: alone in a directory (inside this tree, package.json's "type" would apply).
  const alone = mkdtempSync(path.join(os.tmpdir(), 'kubectl-cj-'));
  copyFileSync(path.join(out, 'kubectl-cj'), path.join(alone, 'kubectl-cj'));
  chmodSync(path.join(alone, 'kubectl-cj'), 0o755);
  const shown = execFileSync(path.join(alone, 'kubectl-cj'), ['--version'], { encoding: 'utf8' }).trim();
  rmSync(alone, { recursive: true, force: true });
  if (shown !== `kubectl-cj ${version}`)
    throw new ReleaseError(`the CLI bundle says "${shown}", not ${version}`);
  if (withDocker) {
    run('docker', ['build', '-t', `${IMAGE}:${version}`, '.']);
    writeFileSync(path.join(out, 'IMAGE'), `${IMAGE}:${version}\n`);
  } else
    console.log(
      `[release] image: not built (${image === 'no' ? '--image no' : 'docker is not available'}); later: docker build -t ${IMAGE}:${version} .`,
    );
  const files = readdirSync(out)
    .filter((f) => f !== 'SHA256SUMS')
    .sort();
  writeFileSync(
    path.join(out, 'SHA256SUMS'),
    files.map((f) => `${sha256(path.join(out, f))}  ${f}\n`).join(''),
  );
  console.log(`[release] ${path.relative(root, out)}: ${files.join(', ')}, SHA256SUMS
[release] next: git commit -am "release ${version}" && git tag -a v${version} -m v${version} && git push --follow-tags${withDocker ? ` && docker push ${IMAGE}:${version}` : ''}`);
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(repoRoot, 'hack/release.ts'))
  release(process.argv.slice(2)).catch((err) => {
    console.error(`release: ${err instanceof Error ? err.message : err}`);
    process.exit(err instanceof ReleaseError ? 2 : 1);
  });
