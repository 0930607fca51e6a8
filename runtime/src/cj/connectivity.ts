/**
 * Connectivity of the comparison graph (union–find). Scores of essays in different components
 * are not on a common scale: the prior only centres each component, so comparing across them
 * would be silently wrong (as with choix's ILSR at α > 0). We report every component instead, and
 * treat two components as linked when both contain an anchor with a fixed (calibrated) score.
 */
export interface Component {
  /** Item indices, ascending. */
  items: number[];
  /** Whether the component contains an anchor with a fixed score (so it sits on the anchor scale). */
  fixedScale: boolean;
}

export interface Connectivity {
  components: Component[];
  /** Component index of each item. */
  componentOf: Int32Array;
  /** True when all items share one scale: one component, or every component has a fixed anchor. */
  connected: boolean;
}

export function connectivity(
  n: number,
  edges: Iterable<[number, number]>,
  fixed: ArrayLike<boolean>,
): Connectivity {
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (const [a, b] of edges) {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
  const byRoot = new Map<number, number>();
  const componentOf = new Int32Array(n);
  const components: Component[] = [];
  for (let i = 0; i < n; i++) {
    const r = find(i);
    let ci = byRoot.get(r);
    if (ci === undefined) {
      ci = components.length;
      byRoot.set(r, ci);
      components.push({ items: [], fixedScale: false });
    }
    const c = components[ci]!;
    c.items.push(i);
    if (fixed[i]) c.fixedScale = true;
    componentOf[i] = ci;
  }
  const connected = components.length <= 1 || components.every((c) => c.fixedScale);
  return { components, componentOf, connected };
}
