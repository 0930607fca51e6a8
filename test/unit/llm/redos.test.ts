// Every regex that runs on text a tenant controls (essay and assignment text, ids, names, the
// pool's URL and durations) must take time linear in that text: essays reach 100k characters
// and are scanned at admission, on the operator's event loop that also renews the leader Lease.
// A static ReDoS checker (the automaton checker of recheck) proves each one safe or linear.
// (The end-to-end cost check, 40,000 line breaks against plain text through the real webhook, is
// in test/integration/drills-tenancy.test.ts.)
import { checkSync } from 'recheck';
import { describe, expect, it } from 'vitest';
import { INJECTION_PATTERNS } from '../../../contract/src/injection.js';
import {
  CONFIGMAP_KEY_PATTERN,
  DECIMAL_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  DURATION_PATTERN,
  GRADE_PATTERN,
  ID_PATTERN,
} from '../../../operator/src/api/index.js';
import { HEURISTIC_PATTERNS } from '../../../runtime/src/fake-anthropic/judge.js';
import { PAIRS_RE } from '../../../runtime/src/llm/prompt.js';

const anchored = (p: string, flags = '') => new RegExp(p, flags);

/** Every regex applied to tenant-controlled text, by where it is used. */
const PATTERNS: [string, RegExp][] = [
  ...INJECTION_PATTERNS.map(([kind, re], i): [string, RegExp] => [`injection ${i} (${kind})`, re]),
  ['prompt pairs (fake judge)', PAIRS_RE],
  ...HEURISTIC_PATTERNS.map((re, i): [string, RegExp] => [`fake judge heuristic ${i}`, re]),
  ['essay / anchor id', anchored(ID_PATTERN)],
  ['object name', anchored(DNS_SUBDOMAIN_PATTERN)],
  ['ConfigMap key', anchored(CONFIGMAP_KEY_PATTERN)],
  ['duration', anchored(DURATION_PATTERN)],
  ['decimal', anchored(DECIMAL_PATTERN)],
  ['grade', anchored(GRADE_PATTERN, 'u')],
  ['pool baseURL', /^https?:\/\/[^\s]+$/],
];

describe('ReDoS: static check of every regex on tenant text', () => {
  it.each(PATTERNS)(
    '%s is safe or linear',
    (_name, re) => {
      // maxRepeatCount 100: bounded gaps such as [^.!?\n]{0,40} stay with the exact automaton
      // checker; above its default (30) recheck falls back to fuzzing, a heuristic that reports
      // bounded repetition as polynomial. Three patterns still go to the fuzzer (a \b, a
      // lookbehind, the prompt's pairs). Without its time limits (an attack string matched for
      // more than 1 s counts as an attack) it counts only the characters its VM reads, so the
      // verdict does not depend on the machine's load (with 1 ms limits all three were
      // "vulnerable", with none "safe").
      const r = checkSync(re.source, re.flags.replace(/g/, ''), {
        timeout: 60_000,
        maxRepeatCount: 100,
        attackTimeout: null,
        incubationTimeout: null,
        seedingTimeout: null,
      });
      expect(r.status, `${re}: ${JSON.stringify(r).slice(0, 400)}`).toBe('safe');
      if ('complexity' in r && r.complexity)
        expect(['safe', 'linear'], String(re)).toContain(r.complexity.type);
    },
    120_000,
  );
});
