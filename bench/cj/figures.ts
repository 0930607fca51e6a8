/**
 * The small statistics and number formats every bench/cj summary prints: means, paired standard
 * errors and signed differences, one definition for all the tables.
 */

/** Mean (0 for an empty list, so an empty table row prints rather than throws). */
export const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** Standard error of the mean (of paired differences, where the tables use it); NaN below 2. */
export const se = (xs: number[]): number => {
  if (xs.length < 2) return Number.NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((t, x) => t + (x - m) ** 2, 0) / (xs.length - 1) / xs.length);
};

/** Fixed decimals; '–' for NaN or infinity. */
export const f = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** Signed fixed decimals with a typographic minus; '–' for NaN or infinity. */
export const sgn = (x: number, d = 3): string =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}` : '–';
