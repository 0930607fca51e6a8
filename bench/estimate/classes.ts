// The classes of the estimate's benchmark (converge.ts) and of its check on the local stack
// (test/integration/cli-estimate.test.ts): bench/cj worlds (qualities N(0, 1.5²), 6 grade bands,
// anchors 2 per grade, fewer in small classes), with the sample essays' texts for the fake server
// to judge by its profile (text → quality) under the standard judge.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { makeWorld, type World } from '../cj/world.js';

export const GRADES = ['F', 'E', 'D', 'C', 'B', 'A'];
/** Anchors of a class of `items`: 2 per grade of 6, fewer in small classes (a quarter of it). */
export const anchorsFor = (items: number) => Math.min(12, Math.round(items / 4));

export function classWorld(items: number, seed: number): World {
  const anchors = anchorsFor(items);
  return makeWorld(seed, { students: items - anchors, anchors, grades: GRADES.length, sd: 1.5 });
}

export interface ClassTexts {
  essays: { id: string; text: string; quality: number }[];
  anchors: { id: string; grade: string; text: string; quality: number }[];
}

/**
 * The world's essays as texts: sample essays in turn, each made unique by a closing line (the
 * fake server tells essays apart by their text's hash), so tokens are a real class's.
 */
export function classTexts(world: World, repoRoot: string): ClassTexts {
  const fx = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/essays/essays.json'), 'utf8'));
  const samples: string[] = [...fx.essays, ...fx.anchors].map((e: { text: string }) => e.text.trim());
  const text = (id: string, i: number) => `${samples[i % samples.length]}\n\n(Draft ${id}.)`;
  return {
    essays: world.studentIds.map((id, i) => ({ id, text: text(id, i), quality: world.theta.get(id)! })),
    anchors: world.anchorIds.map((id, i) => ({
      id,
      grade: GRADES[world.grade.get(id)!]!,
      text: text(id, world.studentIds.length + i),
      quality: world.theta.get(id)!,
    })),
  };
}
