// The install tests (helm.test.ts, kustomize.test.ts) hold the live RBAC to docs/install.md's
// permission table, read by permissionTable: it reads the doc as written and refuses, naming the
// doc and line, a table it cannot read (rather than checking fewer grants).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INSTALL_DOC, permissionTable } from '../../integration/install-helpers.js';

const doc = readFileSync(INSTALL_DOC, 'utf8');
const row = (r: ReturnType<typeof permissionTable>[number]) =>
  `${r.resource}${r.subresource ? `/${r.subresource}` : ''} [${r.name ?? ''}] ${r.verbs.join(' ')}`;

describe("docs/install.md's permission table", () => {
  it('reads every row, with subresources, object names and placeholders', () => {
    const rows = permissionTable(doc).map(row);
    expect(rows).toContain('jobs.batch [] create get list watch patch delete');
    expect(rows).toContain('cjbatches/status [] patch');
    expect(rows).toContain('llmproviderpools/status [] patch');
    expect(rows).toContain('leases.coordination.k8s.io [cj-operator-leader] get update');
    expect(rows).toContain('secrets [<release>-webhook-tls] get patch');
    // One entry per resource item of each table line.
    const section = doc.slice(doc.indexOf('## Permissions'));
    const table = section.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.length).toBe(table.reduce((n, l) => n + l.split('|')[1]!.split(',').length, 0));
  });

  it.each([
    ['## Permissions', '## Rights', /docs\/install\.md: .*no "## Permissions" heading/],
    ['| resource | verbs | why |', '| resource | verb | why |', /docs\/install\.md:\d+: .*header/],
    [
      '| `configmaps` | get create patch |',
      '| configmaps | get create patch |',
      /install\.md:\d+: .*"configmaps"/,
    ],
    [
      '| `configmaps` | get create patch |',
      '| `configmaps` | get, create |',
      /install\.md:\d+: .*"get, create"/,
    ],
    ['| `configmaps` | get create patch |', '| `configmaps` | get | a | b |', /install\.md:\d+: .*5 cells/],
  ])('fails naming the doc and line: %s → %s', (from, to, error) => {
    expect(doc.includes(from)).toBe(true);
    expect(() => permissionTable(doc.replace(from, to))).toThrow(error);
  });
});
