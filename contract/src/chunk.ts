// One packing rule for "groups of at most n items within a size budget": serial bundles of pairs
// (within the context window) and results ConfigMaps (within the object size limit).

/**
 * Splits `items` in order into groups of at most `maxCount` whose summed `cost` stays within
 * `budget`. An item that alone exceeds the budget gets a group of its own (the call will then
 * fail on its own, not take its neighbours with it).
 */
export function chunkWithin<T>(
  items: readonly T[],
  maxCount: number,
  cost: (item: T) => number,
  budget: number,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let used = 0;
  for (const item of items) {
    const c = cost(item);
    if (cur.length > 0 && (cur.length >= maxCount || used + c > budget)) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(item);
    used += c;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
