// Durations as the API writes them: Go-style strings ("500ms", "30s", "1h30m") that CEL's
// duration() parses too, so the CRD can compare them. One grammar for the CRD, the controller
// and the Job contract.

/** Go duration string that CEL's duration() accepts; at least one unit, no sign, no fraction. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "1h30m", "500ms" etc. into milliseconds; throws on anything else. */
export function parseDuration(s: string): number {
  if (!new RegExp(DURATION_PATTERN).test(s))
    throw new Error(`invalid duration "${s}" (use e.g. 500ms, 30s, 1h30m)`);
  let ms = 0;
  for (const m of s.matchAll(/([0-9]+)(ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}
