// Builds the kubectl-cj release artifacts into dist/cli/ (`npm run build:cli`):
//   kubectl-cj                 one executable file (bundled, shebang) that needs only Node ≥ 20
//   kubectl-cj-<v>.tgz         the npm package: `npm install -g kubectl-cj-<v>.tgz` puts kubectl-cj on PATH
//   kubectl-cj-<v>.tar.gz      the krew archive (kubectl-cj + LICENSE)
//   krew/cj.yaml               the krew plugin manifest, with the archive's sha256
// The bundle is CommonJS: a file without an extension copied alone into an empty directory has no
// package.json saying "type": "module", and Node then reads it as CommonJS.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import YAML from 'yaml';
import { repoRoot } from '../lib/tools.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  engines: { node: string };
};
const out = path.join(repoRoot, 'dist/cli');
const HOME = 'https://github.com/huleedu/cj-operator';
const NODE_RANGE = '>=20';

export function krewManifest(version: string, sha256: string): object {
  return {
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: 'cj' },
    spec: {
      version: `v${version}`,
      homepage: HOME,
      shortDescription: 'Comparative Judgement of essays: submit a class, follow it, read grades',
      description:
        'Submits a folder of student essays as a CJBatch for the cj-operator, follows its progress, ' +
        'and prints the ranking and projected grades. Needs Node.js 20 or newer on PATH.\n',
      caveats: 'kubectl cj runs with Node.js (node on PATH, version 20 or newer).\n',
      platforms: ['linux', 'darwin'].flatMap((os) =>
        ['amd64', 'arm64'].map((arch) => ({
          selector: { matchLabels: { os, arch } },
          uri: `${HOME}/releases/download/v${version}/kubectl-cj-${version}.tar.gz`,
          sha256,
          bin: 'kubectl-cj',
          files: [
            { from: 'kubectl-cj', to: '.' },
            { from: 'LICENSE', to: '.' },
          ],
        })),
      ),
    },
  };
}

async function main() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, 'npm'), { recursive: true });
  mkdirSync(path.join(out, 'krew'), { recursive: true });
  const bin = path.join(out, 'kubectl-cj');
  await build({
    entryPoints: [path.join(repoRoot, 'operator/src/cli/kubectl-cj.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bin,
    define: { __CJ_VERSION__: JSON.stringify(pkg.version) },
    // version() reads import.meta only when __CJ_VERSION__ is not defined, i.e. never here.
    logOverride: { 'empty-import-meta': 'silent' },
    legalComments: 'eof',
    logLevel: 'warning',
  });
  chmodSync(bin, 0o755);

  // npm package: the bundle alone, no dependencies to install.
  const npmDir = path.join(out, 'npm');
  copyFileSync(bin, path.join(npmDir, 'kubectl-cj'));
  chmodSync(path.join(npmDir, 'kubectl-cj'), 0o755);
  copyFileSync(path.join(repoRoot, 'LICENSE'), path.join(npmDir, 'LICENSE'));
  writeFileSync(
    path.join(npmDir, 'README.md'),
    `# kubectl-cj\n\nThe \`kubectl cj\` plugin of [cj-operator](${HOME}): submit a class's essays for Comparative\nJudgement, follow the batch, read the grades. \`kubectl cj --help\` lists the commands.\n`,
  );
  writeFileSync(
    path.join(npmDir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'kubectl-cj',
        version: pkg.version,
        description: 'kubectl plugin for cj-operator: Comparative Judgement of student essays on Kubernetes',
        license: pkg.license,
        homepage: HOME,
        bin: { 'kubectl-cj': 'kubectl-cj' },
        files: ['kubectl-cj', 'LICENSE', 'README.md'],
        engines: { node: NODE_RANGE },
      },
      null,
      2,
    )}\n`,
  );
  execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: npmDir, stdio: 'ignore' });

  // krew archive and manifest.
  const archive = path.join(out, `kubectl-cj-${pkg.version}.tar.gz`);
  copyFileSync(path.join(repoRoot, 'LICENSE'), path.join(out, 'LICENSE'));
  execFileSync('tar', ['-czf', archive, '-C', out, 'kubectl-cj', 'LICENSE']);
  rmSync(path.join(out, 'LICENSE'));
  const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
  writeFileSync(path.join(out, 'krew', 'cj.yaml'), YAML.stringify(krewManifest(pkg.version, sha256)));
  console.log(
    `[build:cli] ${path.relative(repoRoot, bin)} (${Math.round(readFileSync(bin).length / 1024)} kB), kubectl-cj-${pkg.version}.tgz, kubectl-cj-${pkg.version}.tar.gz, krew/cj.yaml`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(repoRoot, 'hack/cli/build.ts'))
  await main();
