// The chart's values schema describes every leaf, and the chart README (generated from it) is up
// to date: a value added without a description, or a README not regenerated, fails here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartReadme, README, schemaLeaves } from '../../../hack/chart-readme.js';

const schema = JSON.parse(readFileSync(path.resolve('charts/cj-operator/values.schema.json'), 'utf8'));

describe('chart values documentation', () => {
  it('every leaf of values.schema.json has a description', () => {
    const leaves = schemaLeaves(schema);
    expect(leaves.length).toBeGreaterThan(50);
    expect(leaves.filter((l) => !l.node.description?.trim()).map((l) => l.key)).toEqual([]);
  });

  it('charts/cj-operator/README.md is generated from the schema (npm run gen:chart-readme)', () => {
    expect(readFileSync(README, 'utf8')).toBe(chartReadme());
  });
});
