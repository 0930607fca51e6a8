/**
 * Seeded pseudo-random numbers. The engine never calls Math.random: a plan is a pure function of
 * its input, so the same state and `seed` always give the same pairs and the same posterior draws.
 *
 * Generator: sfc32 (Chris Doty-Humphrey's "small fast counter"), seeded through a 32-bit string
 * hash (cyrb53-style mixing) so that a seed string plus a purpose tag ("select", "draws") gives
 * independent streams.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (Box–Muller, one value per call). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

function hash32(text: string, salt: number): number {
  let h = 0x811c9dc5 ^ salt;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Creates a generator from a seed and a stream tag (the same seed with two tags gives two streams). */
export function createRng(seed: string | number, stream = ''): Rng {
  const text = `${seed}/${stream}`;
  let a = hash32(text, 1);
  let b = hash32(text, 2);
  let c = hash32(text, 3);
  let d = hash32(text, 4) | 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return {
    next,
    normal(): number {
      const u = 1 - next();
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    int(n: number): number {
      return Math.floor(next() * n);
    },
  };
}

/** Fisher–Yates shuffle in place. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
