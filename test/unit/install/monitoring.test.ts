// The chart's monitoring: the PrometheusRule (behind metrics.prometheusRule.enabled) and the
// dashboards name only metrics the operator exposes, with the labels it gives them, so an alert
// or a panel cannot silently watch a series that never exists.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../../hack/lib/tools.js';
import { UsageMetrics } from '../../../operator/src/metrics/usage.js';
import { find, get, helmTemplate } from './render.js';

const BASE = ['database.existingSecret=cj-database'];

/** Metric names and labels the operator registers: the usage metrics and the outbox relay's. */
function exposed(): Map<string, Set<string>> {
  const registry = new Registry();
  const none = async () => [];
  new UsageMetrics({
    registry,
    source: { batches: none, pools: none, grants: none },
    listPools: () => [],
    listBatches: () => [],
  });
  const m = new Map<string, Set<string>>();
  for (const metric of registry.getMetricsAsArray()) {
    const labels = (metric as unknown as { labelNames: string[] }).labelNames;
    m.set(metric.name, new Set(labels));
  }
  const relay = readFileSync(path.join(repoRoot, 'operator/src/outbox/relay.ts'), 'utf8');
  for (const [, name] of relay.matchAll(/name: '(cj_\w+)'/g)) m.set(name!, new Set());
  return m;
}

/** cj_* names in PromQL, with the label names of their selectors and by/on clauses nearby. */
function uses(expr: string): { name: string; labels: string[] }[] {
  return [...expr.matchAll(/\b(cj_[a-z_]+?)(?:_bucket|_sum|_count)?\b(?:\{([^}]*)\})?/g)].map((x) => ({
    name: x[1]!,
    labels: [...(x[2] ?? '').matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((y) => y[1]!),
  }));
}

// Prometheus adds these to every scraped series (ServiceMonitor target labels).
const TARGET_LABELS = new Set(['namespace', 'job', 'pod', 'instance', 'service', 'endpoint', 'container']);

function checkExprs(exprs: string[]) {
  const known = exposed();
  expect(exprs.length).toBeGreaterThan(3);
  for (const expr of exprs) {
    const found = uses(expr);
    expect(found.length, expr).toBeGreaterThan(0);
    for (const u of found) {
      expect(known.has(u.name), `${u.name} in ${expr}`).toBe(true);
      for (const l of u.labels)
        expect(TARGET_LABELS.has(l) || known.get(u.name)!.has(l), `label ${l} of ${u.name}`).toBe(true);
    }
  }
}

describe('chart: PrometheusRule', () => {
  it('is rendered only when enabled', () => {
    expect(find(helmTemplate('rel', 'cj-system', BASE), 'PrometheusRule')).toBeUndefined();
  });

  const rule = get(
    helmTemplate('rel', 'cj-system', [
      ...BASE,
      'metrics.prometheusRule.enabled=true',
      'metrics.prometheusRule.stuckBatchMinutes=45',
      'metrics.prometheusRule.labels.release=kube-prometheus',
    ]),
    'PrometheusRule',
  );
  const rules = rule.spec.groups.flatMap((g: any) => g.rules);

  it('alerts on a stuck batch, a blocked or unready pool and an outbox backlog, with the set thresholds', () => {
    expect(rules.map((r: any) => r.alert)).toEqual(
      expect.arrayContaining(['CJBatchStuck', 'CJPoolBlocked', 'CJPoolNotReady', 'CJOutboxBacklog']),
    );
    const stuck = rules.find((r: any) => r.alert === 'CJBatchStuck');
    expect(stuck.expr).toContain('> 2700');
    expect(stuck.expr).toContain('suspended="true"');
    expect(stuck.annotations.summary).toContain('{{ $labels.batch }}');
    expect(rule.metadata.labels.release).toBe('kube-prometheus');
    // Scoped to this release's operator: another install's metrics never fire these.
    for (const r of rules) expect(r.expr).toContain('namespace="cj-system"');
  });

  it('names only metrics and labels the operator exposes', () => checkExprs(rules.map((r: any) => r.expr)));
});

describe('chart: dashboards', () => {
  const cm = get(helmTemplate('rel', 'cj-system', [...BASE, 'grafanaDashboard.enabled=true']), 'ConfigMap');
  const batches = JSON.parse(cm.data['cj-batches.json']);

  it("ships the controller dashboard and the teachers' batches and cost dashboard", () => {
    expect(JSON.parse(cm.data['cj-operator.json']).uid).toBe('cj-operator');
    const titles = batches.panels.map((p: any) => p.title).join('\n');
    for (const t of ['Active batches', 'Comparisons per minute', 'Cost by batch', '429s'])
      expect(titles).toContain(t);
  });

  it('names only metrics and labels the operator exposes', () =>
    checkExprs(
      batches.panels
        .flatMap((p: any) => p.targets.map((t: any) => t.expr))
        .filter((e: string) => e.includes('cj_')),
    ));
});
