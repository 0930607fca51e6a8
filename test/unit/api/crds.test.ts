// The committed CRDs must be exactly what the schemas generate (CI fails on drift), and the
// generated schemas must be structural and documented.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { crdFor, drifted, generate, structural } from '../../../hack/gen-crds.js';
import { TIER_CEILINGS } from '../../../operator/src/api/index.js';

type Json = Record<string, any>;

function walk(node: Json, path: string, visit: (n: Json, p: string) => void) {
  visit(node, path);
  for (const [k, v] of Object.entries(node.properties ?? {})) walk(v as Json, `${path}.${k}`, visit);
  if (node.items) walk(node.items, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    walk(node.additionalProperties, `${path}.*`, visit);
}

const schema = (kind: 'CJBatch' | 'LLMProviderPool') => crdFor(kind).spec.versions[0].schema.openAPIV3Schema;

describe('generated CRDs', () => {
  it('match the committed files in crds/ and the chart (run hack/gen-crds.ts when this fails)', () => {
    expect(drifted()).toEqual([]);
  });

  it('wrap the chart copy in crds.install and keep it when crds.keep', () => {
    const chart = generate().get('charts/cj-operator/templates/crds/cj.huleedu.io_cjbatches.yaml')!;
    expect(chart).toContain('{{- if .Values.crds.install }}\n');
    expect(chart).toContain(
      '    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n',
    );
    expect(chart.trimEnd().endsWith('{{- end }}')).toBe(true);
    // Without the template lines it is the same CRD as crds/.
    const plain = readFileSync('crds/cj.huleedu.io_cjbatches.yaml', 'utf8');
    const stripped = chart
      .split('\n')
      .filter((l) => !l.includes('{{') && !l.includes('helm.sh/resource-policy'))
      .join('\n');
    expect(YAML.parse(stripped)).toEqual(YAML.parse(plain));
  });

  it.each(['CJBatch', 'LLMProviderPool'] as const)('%s: every field has a description and a type', (kind) => {
    const missing: string[] = [];
    walk(schema(kind).properties.spec, 'spec', (n, p) => {
      if (!n.description) missing.push(p);
      if (!n.type && !n['x-kubernetes-int-or-string']) missing.push(`${p} (type)`);
      if (n.$ref || n.oneOf || n.allOf) missing.push(`${p} ($ref/oneOf/allOf)`);
    });
    walk(schema(kind).properties.status, 'status', (n, p) => {
      if (!n.description && !p.endsWith('[]')) missing.push(p);
    });
    expect(missing).toEqual([]);
  });

  it('bounds every string and list in spec (keeps the CEL cost estimate in budget)', () => {
    const unbounded: string[] = [];
    for (const kind of ['CJBatch', 'LLMProviderPool'] as const) {
      walk(schema(kind).properties.spec, `${kind}.spec`, (n, p) => {
        if (n.type === 'string' && n.maxLength === undefined && !n.enum) unbounded.push(p);
        if (n.type === 'array' && n.maxItems === undefined) unbounded.push(p);
      });
    }
    expect(unbounded).toEqual([]);
  });

  it('declares conditions as a map keyed by type, with the status subresource and printer columns', () => {
    for (const kind of ['CJBatch', 'LLMProviderPool'] as const) {
      const crd = crdFor(kind);
      const v = crd.spec.versions[0];
      expect(v.subresources).toEqual({ status: {} });
      expect(crd.spec.names.categories).toEqual(['cj']);
      const cond = v.schema.openAPIV3Schema.properties.status.properties.conditions;
      expect(cond['x-kubernetes-list-type']).toBe('map');
      expect(cond['x-kubernetes-list-map-keys']).toEqual(['type']);
    }
    expect(crdFor('CJBatch').spec.versions[0].additionalPrinterColumns.map((c: Json) => c.name)).toEqual([
      'Phase',
      'Progress',
      'Round',
      'Stability',
      'Pool',
      'Age',
    ]);
    expect(crdFor('CJBatch').spec.names.shortNames).toEqual(['cjb']);
    expect(crdFor('LLMProviderPool').spec.names.shortNames).toEqual(['llmpool']);
  });

  it('generates the tier-ceiling CEL rules from tiers.ts', () => {
    const rules: Json[] = schema('LLMProviderPool').properties.spec['x-kubernetes-validations'];
    const rpm = rules.find((r) => r.fieldPath === '.limits.requestsPerMinute')!;
    for (const [tier, c] of Object.entries(TIER_CEILINGS))
      expect(rpm.rule).toContain(`'${tier}': ${c.requestsPerMinute}`);
    expect(rules.map((r) => r.fieldPath)).toEqual([
      '.limits.requestsPerMinute',
      '.limits.inputTokensPerMinute',
      '.limits.outputTokensPerMinute',
      '.limits.maxConcurrency',
      '.limits',
      '.batching.mode',
      '.retry.initialBackoff',
    ]);
    for (const r of rules) expect(r.messageExpression ?? r.message).toBeTruthy();
  });

  it('builds messageExpressions with format(), never string(int) concatenation', () => {
    // The apiserver cannot bound the size of 'x' + string(int) and refuses the CRD as too
    // expensive ("estimated messageExpression cost exceeds budget"); format() is accepted.
    const all: string[] = [];
    const collect = (n: Json) => {
      for (const r of n['x-kubernetes-validations'] ?? [])
        if (r.messageExpression) all.push(r.messageExpression);
      for (const v of Object.values(n.properties ?? {})) collect(v as Json);
      if (n.items) collect(n.items);
    };
    collect(schema('CJBatch'));
    collect(schema('LLMProviderPool'));
    expect(all.length).toBeGreaterThan(8);
    expect(all.filter((m) => m.includes('string('))).toEqual([]);
  });

  it('makes essays, anchors and the grade scale immutable with oldSelf rules', () => {
    const rules: Json[] = schema('CJBatch').properties.spec['x-kubernetes-validations'];
    for (const f of ['essays', 'anchors', 'gradeScale']) {
      const r = rules.find((x) => x.fieldPath === `.${f}` && x.rule.includes('oldSelf'));
      expect(r?.message).toBe(`spec.${f} is immutable after creation; create a new CJBatch to change it`);
    }
  });

  it('turns integer|string unions into x-kubernetes-int-or-string and refuses other unions', () => {
    const price = schema('LLMProviderPool').properties.spec.properties.pricing.properties.inputPerMTok;
    expect(price['x-kubernetes-int-or-string']).toBe(true);
    expect(price.type).toBeUndefined();
    expect(() => structural({ anyOf: [{ type: 'string' }, { type: 'boolean' }] })).toThrow(/int-or-string/);
    expect(() => structural({ $ref: '#/x' })).toThrow(/structural/);
  });
});
