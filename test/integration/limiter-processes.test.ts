// Done-when of issue 4: 4 worker processes sharing one pool at 600 rpm on the fake server.
import { expect, it } from 'vitest';
import { runLimiterScenario } from '../../bench/llm/limiter-scenario.js';
import { useTestDb } from '../unit/worker/pg.js';

const db = useTestDb();

it('4 processes, one pool at 600 rpm: >= 90% sustained, <= 1% overshoot 429s, settle under a halved limit within 10 s, nothing lost', async () => {
  const r = await runLimiterScenario({ db, processes: 4, rpm: 600, rows: 260, halveAfterMs: 20_000 });
  console.log(JSON.stringify(r));
  expect(r.steadyWindowS).toBeGreaterThanOrEqual(12);
  expect(r.exitCodes).toEqual([0, 0, 0, 0]);
  expect(r.sustainedFraction).toBeGreaterThanOrEqual(0.9);
  expect(r.sustainedRpm).toBeLessThanOrEqual(600);
  expect(r.overshootFraction).toBeLessThanOrEqual(0.01);
  expect(r.settleS).not.toBeNull();
  expect(r.settleS!).toBeLessThanOrEqual(10);
  expect(r.afterHalvingRpm).toBeLessThanOrEqual(300);
  expect(r).toMatchObject({ completed: 260, failed: 0, pending: 0, lost: 0 });
}, 150_000);
