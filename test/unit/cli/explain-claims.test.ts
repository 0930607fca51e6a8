// `kubectl cj explain` says what the anchors show about a judge's misperception and the claim's range.
import { describe, expect, it } from 'vitest';
import { explainText } from '../../../operator/src/cli/render.js';

const base = { stoppedBecause: 'converged', rounds: 20, expectedSpearman: 0.962 };

describe('explain: misperception and the claim range', () => {
  it('gives the range when the anchors cannot rule a misperception out', () => {
    const text = explainText({
      ...base,
      expectedSpearmanConsistent: 0.962,
      expectedSpearmanLow: 0.871,
      judge: { misperception: 'unknown', misperceptionP: 0.41, misperceptionDf: 4, extraSdUpper: 1.35 },
    });
    expect(text).toContain('cannot rule it out (test p = 0.410, 4 df; upper bound 1.35 logits)');
    expect(text).toContain('0.962 if the judge is consistent; as low as 0.871');
  });

  it('says when the claims are widened, and when no test is possible', () => {
    const widened = explainText({
      ...base,
      expectedSpearman: 0.91,
      expectedSpearmanConsistent: 0.962,
      expectedSpearmanLow: 0.88,
      judge: {
        misperception: 'widened',
        misperceptionP: 0.02,
        misperceptionDf: 4,
        extraSdUpper: 1.5,
        extraSdApplied: 0.8,
      },
    });
    expect(widened).toContain('shown (test p = 0.020');
    expect(widened).toContain('0.910 (0.962 if the judge were consistent)');
    const none = explainText({
      ...base,
      expectedSpearmanConsistent: 0.962,
      expectedSpearmanLow: null,
      judge: { misperception: 'unknown', misperceptionDf: 0 },
    });
    expect(none).toContain('cannot be tested');
    expect(none).toContain('if the judge is consistent (the anchors cannot bound it)');
    // Summaries of older engines have neither field.
    expect(explainText(base)).toContain('n/a (older engine)');
  });
});
