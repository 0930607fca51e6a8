import { describe, expect, it } from 'vitest';
import { AuthCheckCache } from '../../../operator/src/controllers/llmproviderpool/reconciler.js';

const refused = { ok: false, reason: 'AuthFailed', message: 'the provider refused the API key (HTTP 401)' };
const fine = { ok: true, reason: 'Authenticated', message: 'the API key authenticated' };
const lost = { ok: false, reason: 'Unreachable', message: 'cannot reach http://x: timeout' };

describe('AuthCheckCache', () => {
  it("reuses the provider's answers until the TTL ends", () => {
    let t = 0;
    const c = new AuthCheckCache(1000, () => t);
    c.set('uid/1/rv1', refused);
    c.set('uid/2/rv1', fine);
    t = 999;
    expect(c.get('uid/1/rv1')).toEqual(refused);
    expect(c.get('uid/2/rv1')).toEqual(fine);
    t = 1000;
    expect(c.get('uid/1/rv1')).toBeUndefined();
  });

  it('never reuses Unreachable, and it drops an older answer for the same key', () => {
    let t = 0;
    const c = new AuthCheckCache(1000, () => t);
    c.set('k', lost);
    expect(c.get('k')).toBeUndefined();
    c.set('k', fine);
    t = 10;
    c.set('k', lost);
    expect(c.get('k')).toBeUndefined();
  });
});
