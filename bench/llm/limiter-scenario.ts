/**
 * The pool-wide limiter scenario shared by the test (test/unit/worker/limiter-processes.test.ts)
 * and the benchmark (bench/llm/run.ts): N `runtime compare` worker PROCESSES, one shard each,
 * sharing one pool (one PostgresRateLimiter row) against the fake server limited to `rpm`. After
 * `halveAfterMs` (from the first request) the server's limit is halved through `POST /_admin/limits`; the workers learn it
 * only from the `anthropic-ratelimit-*` response headers.
 *
 * Measured from the server's side (its request counters, sampled every 100 ms):
 *  - sustained rate over the steady window (after the ramp, before the halving) vs the limit;
 *  - 429s from the real limit (our overshoot; none are injected) over all requests;
 *  - settle time: the first time after the halving from which every 6 s window stays at or
 *    under the new limit (+1 request of rounding);
 *  - nothing lost: every worker exits 0 and every row ends succeeded.
 */
import { type FakeAnthropic, startFakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import type { Sql } from '../../runtime/src/store/db.js';
import { readProgress } from '../../runtime/src/store/progress.js';
import { profilePath } from '../../test/unit/llm/helpers.js';
import { poolConfig, seedBatch, spawnWorker, workerEnv } from '../../test/unit/worker/helpers.js';

export interface LimiterScenarioOptions {
  db: { url: string; sql: Sql };
  processes?: number;
  rpm?: number;
  rows?: number;
  /** Halve the server limit this long after the first request. */
  halveAfterMs?: number;
  latencyMs?: number;
  steadyFromMs?: number;
}

export interface LimiterScenarioResult {
  processes: number;
  rpm: number;
  rows: number;
  durationS: number;
  steadyWindowS: number;
  sustainedRpm: number;
  sustainedFraction: number;
  requests: number;
  overshoot429: number;
  overshootFraction: number;
  settleS: number | null;
  afterHalvingRpm: number;
  exitCodes: number[];
  completed: number;
  failed: number;
  pending: number;
  lost: number;
}

export async function runLimiterScenario(o: LimiterScenarioOptions): Promise<LimiterScenarioResult> {
  const processes = o.processes ?? 4;
  const rpm = o.rpm ?? 600;
  const rows = o.rows ?? 260;
  const halveAfter = o.halveAfterMs ?? 20_000;
  const steadyFrom = o.steadyFromMs ?? 5_000;
  const srv: FakeAnthropic = await startFakeAnthropic({
    profilePath,
    seed: 9,
    lapse: 0.05,
    latencyMs: o.latencyMs ?? 100,
    limits: { rpm, itpm: 100_000_000, otpm: 10_000_000 },
  });
  try {
    const b = await seedBatch(o.db.sql, rows, processes);
    const pool = poolConfig(
      srv.url,
      {
        tier: 'custom',
        limits: {
          requestsPerMinute: rpm,
          inputTokensPerMinute: 100_000_000,
          outputTokensPerMinute: 10_000_000,
          maxConcurrency: 64,
        },
        promptCaching: { enabled: false },
      },
      { concurrency: 4, limiter: { rampUp: { initialFraction: 0.25, durationMs: 3_000 } } },
    );
    const samples: Array<{ t: number; total: number; ok: number; limited: number }> = [];
    const t0 = Date.now();
    let halvedAt: number | null = null;
    let halve: NodeJS.Timeout | undefined;
    // The halving is timed from the first request: process start-up is not the limiter's.
    const sample = () => {
      const s = srv.stats();
      const t = Date.now() - t0;
      samples.push({ t, total: s.messages.total, ok: s.messages.ok, limited: s.rateLimited });
      if (s.messages.total > 0 && !halve) {
        halve = setTimeout(async () => {
          halvedAt = Date.now() - t0;
          await fetch(`${srv.url}/_admin/limits`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ rpm: rpm / 2 }),
          });
        }, halveAfter);
      }
    };
    const timer = setInterval(sample, 100);
    const ws = Array.from({ length: processes }, (_, i) =>
      spawnWorker(workerEnv(o.db.url, b, i, pool), `limiter-${i}`),
    );
    const exitCodes = await Promise.all(ws.map((w) => w.exit));
    clearInterval(timer);
    if (halve) clearTimeout(halve);
    sample();
    for (const [i, c] of exitCodes.entries()) {
      if (c !== 0) process.stderr.write(`worker ${i} exited ${c}:\n${ws[i]!.output().slice(-3000)}\n`);
    }
    // Work starts when the first request arrives (process start-up is not the limiter's).
    // Rates use the samples' own timestamps: the sampler may be delayed on a busy machine.
    const first = samples.find((x) => x.total > 0)?.t ?? 0;
    const from = (t: number) => samples.find((x) => x.t >= t) ?? samples[samples.length - 1]!;
    const upTo = (t: number) => {
      let best = samples[0]!;
      for (const x of samples) if (x.t <= t) best = x;
      return best;
    };
    const perMin = (a: (typeof samples)[number], b: (typeof samples)[number], k: 'ok' | 'total') =>
      b.t > a.t ? ((b[k] - a[k]) / (b.t - a.t)) * 60_000 : 0;
    const end = samples[samples.length - 1]!.t;
    const hAt = halvedAt ?? end;
    const s1 = from(first + steadyFrom);
    const s2 = upTo(hAt);
    const steadyWindowS = (s2.t - s1.t) / 1000;
    const sustainedRpm = perMin(s1, s2, 'ok');
    const final = samples[samples.length - 1]!;
    // Settle: earliest s after the halving from which every >= 6 s window is under the new limit.
    const win = 6000;
    const within = (a: (typeof samples)[number], b: (typeof samples)[number]) =>
      b.total - a.total <= ((rpm / 2) * (b.t - a.t)) / 60_000 + 1;
    let settle: number | null = null;
    if (halvedAt !== null && end - hAt > win) {
      const after = samples.filter((x) => x.t >= hAt);
      for (const [i, a] of after.entries()) {
        if (a.t + win > end) break;
        const ok = after.slice(i).every((x) => {
          if (x.t + win > end) return true;
          return within(x, from(x.t + win));
        });
        if (ok) {
          settle = (a.t - hAt) / 1000;
          break;
        }
      }
    }
    const tail = from(Math.min(end, hAt + 10_000));
    const afterHalvingRpm = end - tail.t > 3000 ? perMin(tail, final, 'total') : 0;
    const p = await readProgress(o.db.sql, b.uid);
    return {
      processes,
      rpm,
      rows,
      durationS: (end - first) / 1000,
      steadyWindowS,
      sustainedRpm,
      sustainedFraction: sustainedRpm / rpm,
      requests: final.total,
      overshoot429: final.limited,
      overshootFraction: final.total > 0 ? final.limited / final.total : 0,
      settleS: settle,
      afterHalvingRpm,
      exitCodes,
      completed: p.completed,
      failed: p.failed,
      pending: p.pending,
      lost: rows - p.completed - p.failed,
    };
  } finally {
    await srv.close();
  }
}
