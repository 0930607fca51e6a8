// The plan() timing input shared by `run.ts --only timing` and `timing.ts`: n essays (every
// ~n/12-th an anchor over 6 grades), m random comparisons from a Bradley–Terry judge with lapse and
// position bias, seeded by n so both scripts time the very same call.
import type { plan } from '../../runtime/src/cj/plan.js';
import { createRng } from '../../runtime/src/cj/rng.js';

export const TIMING_SIZES = [
  [60, 600],
  [390, 3900],
  [2000, 20000],
] as const;

export function timingInput(n: number, m: number): Parameters<typeof plan>[0] {
  const rng = createRng(n, 'timing');
  const truth = Float64Array.from({ length: n }, () => 1.5 * rng.normal());
  const grades = ['G1', 'G2', 'G3', 'G4', 'G5', 'G6'];
  const step = Math.max(5, Math.floor(n / 12));
  const essays = Array.from({ length: n }, (_, i) =>
    i % step === 0 ? { id: `e${i}`, anchor: { grade: grades[(i / step) % 6]! } } : { id: `e${i}` },
  );
  const comparisons = Array.from({ length: m }, () => {
    const a = rng.int(n);
    const b = (a + 1 + rng.int(n - 1)) % n;
    const p = 0.025 + 0.95 / (1 + Math.exp(-(truth[a]! - truth[b]! + 0.15)));
    return { a: `e${a}`, b: `e${b}`, winner: (rng.next() < p ? 'a' : 'b') as 'a' | 'b' };
  });
  return { essays, grades, comparisons, settings: { roundSize: Math.ceil(n / 10), budget: 2 * m } };
}
