/**
 * A fake Anthropic API on loopback, in the real wire format, for tests, benchmarks and the demo.
 *
 * Endpoints: `POST /v1/messages`, `POST /v1/messages/count_tokens`, Message Batches
 * (`POST /v1/messages/batches`, `GET /v1/messages/batches[/{id}[/results]]`,
 * `POST /v1/messages/batches/{id}/cancel`, `DELETE /v1/messages/batches/{id}`), plus
 * `/_admin/limits`, `/_admin/faults`, `/_admin/stats`, `/_admin/requests` (with `recordRequests`) for tests.
 *
 * Realism: Bearer or `x-api-key` auth (401 `authentication_error` otherwise); token buckets for
 * RPM / ITPM / OTPM (capacity = one minute, continuous refill) with `anthropic-ratelimit-*`
 * headers on every response and `retry-after` on 429; ITPM counts `input_tokens +
 * cache_creation_input_tokens`, OTPM counts actual output; `cache_control` on the prefix creates
 * a cache entry (TTL 5m/1h, refreshed on hit, usable once the first response has begun);
 * `temperature`/`top_p`/`top_k` are rejected as on API version 2026-10-21; batch `custom_id`s
 * are validated synchronously, `params` lazily (per-line `errored`).
 *
 * Nothing here logs API keys or essay text.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDelimitedPairs, sha256Hex } from '../llm/prompt.js';
import { Judge, type JudgeOptions, judgeModeFor, loadProfile, type Profile, uniforms } from './judge.js';

export interface FakeLimits {
  rpm?: number;
  itpm?: number;
  otpm?: number;
}

export type ForcedStatus = number | { status: number; retryAfterS?: number; errorCode?: string };

export interface FakeFaults {
  /** Local pair ids (e.g. `P3`) whose answers are left out of multi-pair responses. */
  dropPairIds?: string[];
  /** Local pair ids whose answers are made invalid (winner "C") in multi-pair responses. */
  corruptPairIds?: string[];
  /** The next N successful message responses carry malformed (non-JSON) text. */
  malformedNext?: number;
  /** The next N successful message responses stop with this reason. */
  stopReasonNext?: { reason: 'max_tokens' | 'refusal'; count: number };
  /** Statuses forced on the next message requests, in order (429 gets `retry-after`). */
  nextStatuses?: ForcedStatus[];
  /** Fraction of batch lines that end `errored` / `expired` (deterministic per batch and line). */
  batchErrorRate?: number;
  batchExpireRate?: number;
  /** Fractions of message requests answered 529 / 429 (seeded, deterministic); override the options. */
  inject529?: number;
  inject429?: number;
  /** `retry-after` on injected and burst 429s; overrides `injectedRetryAfterS`. */
  injectedRetryAfterS?: number;
  /**
   * Bursts of 429s: of every `every` message requests (counted from when it is set), the first
   * `length` are refused with 429 and `retry-after` (deterministic). Checked before `inject*`.
   */
  burst429?: { every: number; length: number; retryAfterS?: number };
}

export interface FakeAnthropicOptions extends JudgeOptions {
  port?: number;
  host?: string;
  /** Valid API keys; when unset any non-empty key is accepted. */
  apiKeys?: string[];
  /** Keys that authenticate but may not use the Messages API (403). */
  forbiddenKeys?: string[];
  /** Keys whose org has reached its spend cap (429 enforced_spend_limit_reached). */
  spendCappedKeys?: string[];
  /** Path of a profile JSON file (alternative to `profile`). */
  profilePath?: string;
  limits?: FakeLimits;
  inject429?: number;
  inject529?: number;
  /** `retry-after` (seconds, may be fractional for fast tests) on injected 429s. Default 1. */
  injectedRetryAfterS?: number;
  /** Time to answer a message request; with `latencyMaxMs`, the least of a range. */
  latencyMs?: number;
  /**
   * Upper end of the answer latency: each message request waits a time drawn uniformly from
   * [latencyMs, latencyMaxMs] (seeded, deterministic per request), like a real judge's 2-6 s.
   */
  latencyMaxMs?: number;
  /** Time from batch creation to `ended`. Default 200 ms. */
  batchLatencyMs?: number;
  /** Minimum prefix tokens for caching (below it, no error and no caching). Default 0. */
  cacheMinTokens?: number;
  /** Round token `remaining` headers to the nearest 1,000 like the real API. Default true. */
  roundTokenHeaders?: boolean;
  faults?: FakeFaults;
  now?: () => number;
  /** Keep the last N bodies of `POST /v1/messages` (for prompt assertions); default 0 = none. */
  recordRequests?: number;
}

/** One recorded `POST /v1/messages` request (see `recordRequests`). */
export interface RecordedRequest {
  at: number;
  correlationId?: string;
  body: Record<string, unknown>;
}

export interface MessageLogEntry {
  status: number;
  pairs: number;
  inputTokens: number;
  cacheRead: number;
  cacheWrite: number;
  outputTokens: number;
  correlationId?: string;
  reason?: string;
}

export interface FakeStats {
  httpRequests: number;
  messages: { total: number; ok: number; byStatus: Record<string, number> };
  rateLimited: number;
  injected429: number;
  injected529: number;
  /** 429s sent by `burst429`. */
  burst429: number;
  authFailures: number;
  pairsJudged: number;
  tokens: { input: number; output: number; cacheRead: number; cacheWrite: number };
  batches: {
    created: number;
    requestsSubmitted: number;
    retrieves: number;
    resultsFetched: number;
    canceled: number;
  };
  messageLog: MessageLogEntry[];
  limits: FakeLimits;
}

export interface FakeAnthropic {
  url: string;
  port: number;
  close(): Promise<void>;
  stats(): FakeStats;
  setLimits(l: FakeLimits): void;
  setFaults(f: FakeFaults): void;
  /** The last `recordRequests` message request bodies, oldest first (also `GET /_admin/requests`). */
  requests(): RecordedRequest[];
}

class ServerBucket {
  level: number;
  private at: number;
  constructor(
    public limit: number,
    now: number,
  ) {
    this.level = limit;
    this.at = now;
  }
  refill(now: number) {
    this.level = Math.min(this.limit, this.level + ((now - this.at) / 60_000) * this.limit);
    this.at = now;
  }
  setLimit(limit: number, now: number) {
    this.refill(now);
    this.limit = limit;
    this.level = Math.min(this.level, limit);
  }
  /** Seconds until `n` tokens are available. */
  secondsUntil(n: number): number {
    return n <= this.level ? 0 : ((n - this.level) / this.limit) * 60;
  }
  resetIso(now: number): string {
    return new Date(now + ((this.limit - this.level) / this.limit) * 60_000).toISOString();
  }
}

type Json = Record<string, unknown>;

const CUSTOM_ID_RE = /^[a-zA-Z0-9_-]{1,64}$/;

interface StoredBatch {
  id: string;
  createdAt: number;
  endsAt: number;
  cancelAt: number | null;
  requests: Array<{ custom_id: string; params: Json }>;
  results: Json[] | null;
  canceled: boolean;
}

export async function startFakeAnthropic(opts: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const now = opts.now ?? Date.now;
  const profile: Profile | undefined =
    opts.profile ?? (opts.profilePath ? loadProfile(opts.profilePath) : undefined);
  const judge = new Judge({ ...opts, profile });
  const seed = String(opts.seed ?? 0);
  const faults: FakeFaults = { ...(opts.faults ?? {}) };
  const limits: FakeLimits = { ...(opts.limits ?? {}) };
  const buckets: { rpm?: ServerBucket; itpm?: ServerBucket; otpm?: ServerBucket } = {};
  const applyLimits = () => {
    const t = now();
    for (const k of ['rpm', 'itpm', 'otpm'] as const) {
      const v = limits[k];
      if (v === undefined || v <= 0) delete buckets[k];
      else if (buckets[k]) buckets[k]!.setLimit(v, t);
      else buckets[k] = new ServerBucket(v, t);
    }
  };
  applyLimits();

  const cache = new Map<string, { expiresAt: number; availableAt: number }>();
  const batches = new Map<string, StoredBatch>();
  let counter = 0;
  let injectCounter = 0;
  let burstCounter = 0;
  let latencyCounter = 0;
  const latency = (): number => {
    const lo = opts.latencyMs ?? 0;
    const hi = opts.latencyMaxMs ?? lo;
    if (hi <= lo) return lo;
    const [u] = uniforms(`${seed}|latency|${++latencyCounter}`);
    return lo + u * (hi - lo);
  };
  const recordLimit = opts.recordRequests ?? 0;
  const recorded: RecordedRequest[] = [];
  const stats: FakeStats = {
    httpRequests: 0,
    messages: { total: 0, ok: 0, byStatus: {} },
    rateLimited: 0,
    injected429: 0,
    injected529: 0,
    burst429: 0,
    authFailures: 0,
    pairsJudged: 0,
    tokens: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    batches: { created: 0, requestsSubmitted: 0, retrieves: 0, resultsFetched: 0, canceled: 0 },
    messageLog: [],
    limits,
  };
  let baseUrl = '';
  const newId = (prefix: string) =>
    `${prefix}_${sha256Hex(`${seed}|${prefix}|${++counter}|${now()}`).slice(0, 24)}`;

  const rateHeaders = (t: number): Record<string, string> => {
    const h: Record<string, string> = {};
    const round = opts.roundTokenHeaders ?? true;
    const dims: Array<[string, ServerBucket | undefined, boolean]> = [
      ['requests', buckets.rpm, false],
      ['input-tokens', buckets.itpm, round],
      ['output-tokens', buckets.otpm, round],
    ];
    let tightest: [ServerBucket, string] | undefined;
    for (const [name, b, r] of dims) {
      if (!b) continue;
      b.refill(t);
      const rem = Math.max(0, Math.floor(b.level));
      h[`anthropic-ratelimit-${name}-limit`] = String(b.limit);
      h[`anthropic-ratelimit-${name}-remaining`] = String(r ? Math.round(rem / 1000) * 1000 : rem);
      h[`anthropic-ratelimit-${name}-reset`] = b.resetIso(t);
      if (name !== 'requests' && (!tightest || b.level / b.limit < tightest[0].level / tightest[0].limit)) {
        tightest = [b, name];
      }
    }
    if (tightest) {
      h['anthropic-ratelimit-tokens-limit'] = h[`anthropic-ratelimit-${tightest[1]}-limit`]!;
      h['anthropic-ratelimit-tokens-remaining'] = h[`anthropic-ratelimit-${tightest[1]}-remaining`]!;
      h['anthropic-ratelimit-tokens-reset'] = h[`anthropic-ratelimit-${tightest[1]}-reset`]!;
    }
    return h;
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const requestId = newId('req');
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'application/x-jsonl' : 'application/json',
      'request-id': requestId,
      'anthropic-organization-id': 'org_fake',
      ...headers,
    });
    res.end(payload);
  };
  const sendError = (
    res: ServerResponse,
    status: number,
    type: string,
    message: string,
    headers: Record<string, string> = {},
    details?: Json,
  ) => {
    send(
      res,
      status,
      {
        type: 'error',
        error: { type, message, ...(details ? { details } : {}) },
        request_id: newId('req'),
      },
      headers,
    );
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const authKey = (req: IncomingMessage): string | undefined => {
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim() || undefined;
    const x = req.headers['x-api-key'];
    return typeof x === 'string' && x.trim() ? x.trim() : undefined;
  };

  /** Validate a Messages body as the 2026-10-21 API would; returns an error message or undefined. */
  const validateParams = (p: Json): string | undefined => {
    if (typeof p.model !== 'string' || !p.model) return 'model: Field required';
    if (typeof p.max_tokens !== 'number' || !Number.isInteger(p.max_tokens) || p.max_tokens < 1) {
      return 'max_tokens: Field required';
    }
    if (!Array.isArray(p.messages) || p.messages.length === 0) return 'messages: Field required';
    for (const k of ['temperature', 'top_p', 'top_k']) {
      if (k in p) return `${k}: Extra inputs are not permitted on API version 2026-10-21`;
    }
    if (p.stream === true) return 'stream: not supported by the fake server';
    return undefined;
  };

  const blockText = (content: unknown): string[] => {
    if (typeof content === 'string') return [content];
    if (!Array.isArray(content)) return [];
    return content.map((b) =>
      b && typeof b === 'object' && typeof b.text === 'string' ? (b.text as string) : '',
    );
  };
  const tokens = (s: string) => Math.ceil(s.length / 4);

  /** Token accounting with prompt caching. `commit` false only peeks (for rate-limit checks). */
  const accountInput = (p: Json, t: number, commit: boolean) => {
    const segments: Array<{ text: string; cc?: { ttl?: string } }> = [];
    const sys = p.system;
    if (typeof sys === 'string') segments.push({ text: sys });
    else if (Array.isArray(sys)) {
      for (const b of sys as Json[])
        segments.push({ text: String(b.text ?? ''), cc: b.cache_control as never });
    }
    for (const m of p.messages as Json[]) {
      if (typeof m.content === 'string') segments.push({ text: m.content });
      else if (Array.isArray(m.content)) {
        for (const b of m.content as Json[])
          segments.push({ text: String(b.text ?? ''), cc: b.cache_control as never });
      }
    }
    const total = segments.reduce((a, s) => a + tokens(s.text), 0) + 8 * (p.messages as unknown[]).length;
    let last = -1;
    segments.forEach((s, i) => {
      if (s.cc) last = i;
    });
    let cacheRead = 0;
    let cacheWrite = 0;
    if (last >= 0) {
      const prefixText = segments
        .slice(0, last + 1)
        .map((s) => s.text)
        .join('\u0000');
      const prefixTokens = segments.slice(0, last + 1).reduce((a, s) => a + tokens(s.text), 0);
      if (prefixTokens >= (opts.cacheMinTokens ?? 0)) {
        const ttlMs = segments[last]!.cc?.ttl === '1h' ? 3_600_000 : 300_000;
        const key = sha256Hex(`${String(p.model)}\u0000${prefixText}`);
        const e = cache.get(key);
        if (e && e.expiresAt > t && e.availableAt <= t) {
          cacheRead = prefixTokens;
          if (commit) e.expiresAt = t + ttlMs;
        } else {
          cacheWrite = prefixTokens;
          if (commit) cache.set(key, { expiresAt: t + ttlMs, availableAt: t + (opts.latencyMs ?? 0) });
        }
      }
    }
    return { input: total - cacheRead - cacheWrite, cacheRead, cacheWrite, ttl: segments[last]?.cc?.ttl };
  };

  /** Produce the assistant message for a Messages body (shared by sync and batch paths). */
  const respond = (p: Json, t: number, tier: 'standard' | 'batch', applyFaults: boolean) => {
    const usageIn = accountInput(p, t, true);
    const msgs = p.messages as Json[];
    const userText = blockText(msgs[msgs.length - 1]?.content).join('\n');
    const pairs = parseDelimitedPairs(userText);
    const schema = ((p.output_config as Json | undefined)?.format as Json | undefined)?.schema as
      | Json
      | undefined;
    const bundleShape = pairs.length > 1 || Boolean((schema?.properties as Json | undefined)?.judgements);
    let stopReason = 'end_turn';
    let text: string;
    if (pairs.length === 0) {
      text = 'I could not find any essays to compare in your message.';
    } else {
      stats.pairsJudged += pairs.length;
      let judgements = pairs.map((pair) => {
        const v = judge.judge(pair.essayA, pair.essayB, judgeModeFor(p.model));
        return {
          pair_id: pair.pairId,
          winner: v.winner,
          confidence: v.confidence,
          justification: v.justification,
        };
      });
      if (applyFaults && pairs.length > 1) {
        const drop = new Set(faults.dropPairIds ?? []);
        const corrupt = new Set(faults.corruptPairIds ?? []);
        judgements = judgements
          .filter((j) => !drop.has(j.pair_id))
          .map((j) => (corrupt.has(j.pair_id) ? { ...j, winner: 'C' as never } : j));
      }
      text = bundleShape ? JSON.stringify({ judgements }) : JSON.stringify(judgements[0]);
    }
    if (applyFaults && (faults.malformedNext ?? 0) > 0) {
      faults.malformedNext! -= 1;
      text = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
    } else if (applyFaults && faults.stopReasonNext && faults.stopReasonNext.count > 0) {
      faults.stopReasonNext.count -= 1;
      stopReason = faults.stopReasonNext.reason;
      if (stopReason === 'max_tokens') text = text.slice(0, Math.floor(text.length / 2));
      if (stopReason === 'refusal') text = '';
    }
    const outputTokens = Math.max(1, tokens(text));
    const usage = {
      input_tokens: usageIn.input,
      output_tokens: outputTokens,
      cache_creation_input_tokens: usageIn.cacheWrite,
      cache_read_input_tokens: usageIn.cacheRead,
      cache_creation: {
        ephemeral_5m_input_tokens: usageIn.ttl === '1h' ? 0 : usageIn.cacheWrite,
        ephemeral_1h_input_tokens: usageIn.ttl === '1h' ? usageIn.cacheWrite : 0,
      },
      output_tokens_details: null,
      server_tool_use: null,
      service_tier: tier,
      inference_geo: 'global',
      speed: null,
    };
    stats.tokens.input += usage.input_tokens;
    stats.tokens.output += outputTokens;
    stats.tokens.cacheRead += usage.cache_read_input_tokens;
    stats.tokens.cacheWrite += usage.cache_creation_input_tokens;
    const message = {
      id: newId('msg'),
      type: 'message',
      role: 'assistant',
      model: p.model,
      content: text ? [{ type: 'text', text, citations: null }] : [],
      stop_reason: stopReason,
      stop_sequence: null,
      stop_details: stopReason === 'refusal' ? { type: 'refusal', category: null, explanation: null } : null,
      container: null,
      diagnostics: null,
      usage,
    };
    return { message, pairs: pairs.length, usage };
  };

  const logMessage = (e: MessageLogEntry) => {
    stats.messages.total++;
    stats.messages.byStatus[String(e.status)] = (stats.messages.byStatus[String(e.status)] ?? 0) + 1;
    if (e.status === 200) stats.messages.ok++;
    stats.messageLog.push(e);
    if (stats.messageLog.length > 50_000) stats.messageLog.shift();
  };

  const handleMessages = async (req: IncomingMessage, res: ServerResponse, body: Json) => {
    const correlationId =
      typeof req.headers['x-cj-correlation-id'] === 'string' ? req.headers['x-cj-correlation-id'] : undefined;
    const invalid = validateParams(body);
    if (invalid) {
      logMessage({
        status: 400,
        pairs: 0,
        inputTokens: 0,
        cacheRead: 0,
        cacheWrite: 0,
        outputTokens: 0,
        correlationId,
      });
      sendError(res, 400, 'invalid_request_error', invalid);
      return;
    }
    const t = now();
    // Forced statuses (tests) first, then injected faults, then real rate limits.
    const forced = faults.nextStatuses?.shift();
    const fail = (status: number, reason: string) =>
      logMessage({
        status,
        pairs: 0,
        inputTokens: 0,
        cacheRead: 0,
        cacheWrite: 0,
        outputTokens: 0,
        correlationId,
        reason,
      });
    if (forced !== undefined) {
      const f = typeof forced === 'number' ? { status: forced } : forced;
      fail(f.status, 'forced');
      if (f.status === 429) {
        if (f.errorCode) {
          sendError(
            res,
            429,
            'rate_limit_error',
            'Your organization has reached its monthly spend limit.',
            rateHeaders(t),
            {
              error_code: f.errorCode,
            },
          );
        } else {
          sendError(res, 429, 'rate_limit_error', 'Your account has hit a rate limit.', {
            ...rateHeaders(t),
            'retry-after': String(f.retryAfterS ?? 1),
          });
        }
      } else if (f.status === 529) sendError(res, 529, 'overloaded_error', 'Overloaded');
      else if (f.status === 401) sendError(res, 401, 'authentication_error', 'invalid x-api-key');
      else if (f.status === 403)
        sendError(
          res,
          403,
          'permission_error',
          'Your API key does not have permission to use the specified resource.',
        );
      else if (f.status === 400) sendError(res, 400, 'invalid_request_error', 'forced invalid request');
      else sendError(res, f.status, f.status >= 500 ? 'api_error' : 'invalid_request_error', 'forced error');
      return;
    }
    const retryAfterS = faults.injectedRetryAfterS ?? opts.injectedRetryAfterS ?? 1;
    const burst = faults.burst429;
    if (burst && burst.every > 0 && burstCounter++ % burst.every < burst.length) {
      stats.burst429++;
      fail(429, 'burst');
      sendError(res, 429, 'rate_limit_error', 'Your account has hit a rate limit.', {
        ...rateHeaders(t),
        'retry-after': String(burst.retryAfterS ?? retryAfterS),
      });
      return;
    }
    const rate529 = faults.inject529 ?? opts.inject529 ?? 0;
    const rate429 = faults.inject429 ?? opts.inject429 ?? 0;
    const [u] = uniforms(`${seed}|inject|${++injectCounter}`);
    if (u < rate529) {
      stats.injected529++;
      fail(529, 'injected');
      sendError(res, 529, 'overloaded_error', 'Overloaded');
      return;
    }
    if (u < rate529 + rate429) {
      stats.injected429++;
      fail(429, 'injected');
      sendError(res, 429, 'rate_limit_error', 'Your account has hit a rate limit.', {
        ...rateHeaders(t),
        'retry-after': String(retryAfterS),
      });
      return;
    }
    const peek = accountInput(body, t, false);
    const needIn = peek.input + peek.cacheWrite;
    for (const b of [buckets.rpm, buckets.itpm, buckets.otpm]) b?.refill(t);
    const waits: Array<[string, number, number | undefined]> = [
      ['requests per minute', buckets.rpm?.secondsUntil(1) ?? 0, limits.rpm],
      [
        'input tokens per minute',
        buckets.itpm?.secondsUntil(Math.min(needIn, buckets.itpm.limit)) ?? 0,
        limits.itpm,
      ],
      ['output tokens per minute', buckets.otpm?.secondsUntil(1) ?? 0, limits.otpm],
    ];
    const worst = waits.reduce((a, b) => (b[1] > a[1] ? b : a));
    if (worst[1] > 0) {
      stats.rateLimited++;
      fail(429, 'limit');
      sendError(
        res,
        429,
        'rate_limit_error',
        `This request would exceed the rate limit for your organization of ${worst[2]} ${worst[0]}. For details, refer to: https://docs.claude.com/en/api/rate-limits.`,
        { ...rateHeaders(t), 'retry-after': String(Math.max(1, Math.ceil(worst[1]))) },
      );
      return;
    }
    if (buckets.rpm) buckets.rpm.level -= 1;
    if (buckets.itpm) buckets.itpm.level -= needIn;
    const wait = latency();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const out = respond(body, now(), 'standard', true);
    if (buckets.otpm) {
      buckets.otpm.refill(now());
      buckets.otpm.level -= out.usage.output_tokens;
    }
    logMessage({
      status: 200,
      pairs: out.pairs,
      inputTokens: out.usage.input_tokens,
      cacheRead: out.usage.cache_read_input_tokens,
      cacheWrite: out.usage.cache_creation_input_tokens,
      outputTokens: out.usage.output_tokens,
      correlationId,
    });
    send(res, 200, out.message, rateHeaders(now()));
  };

  const batchView = (b: StoredBatch) => {
    const t = now();
    const ended = b.canceled || t >= b.endsAt;
    if (ended && !b.results) finalize(b);
    const counts = { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0 };
    if (!ended) counts.processing = b.requests.length;
    else for (const r of b.results!) counts[(r.result as Json).type as keyof typeof counts]++;
    return {
      id: b.id,
      type: 'message_batch',
      processing_status: ended ? 'ended' : b.cancelAt ? 'canceling' : 'in_progress',
      request_counts: counts,
      created_at: new Date(b.createdAt).toISOString(),
      expires_at: new Date(b.createdAt + 86_400_000).toISOString(),
      ended_at: ended ? new Date(Math.min(b.endsAt, b.cancelAt ?? b.endsAt)).toISOString() : null,
      cancel_initiated_at: b.cancelAt ? new Date(b.cancelAt).toISOString() : null,
      archived_at: null,
      results_url: ended ? `${baseUrl}/v1/messages/batches/${b.id}/results` : null,
    };
  };

  const finalize = (b: StoredBatch) => {
    b.results = b.requests.map((r) => {
      if (b.canceled) return { custom_id: r.custom_id, result: { type: 'canceled' } };
      const [u] = uniforms(`${seed}|batch|${b.id}|${r.custom_id}`);
      if (u < (faults.batchErrorRate ?? 0)) {
        return {
          custom_id: r.custom_id,
          result: {
            type: 'errored',
            error: {
              type: 'error',
              error: { type: 'api_error', message: 'Internal server error' },
              request_id: null,
            },
          },
        };
      }
      if (u < (faults.batchErrorRate ?? 0) + (faults.batchExpireRate ?? 0)) {
        return { custom_id: r.custom_id, result: { type: 'expired' } };
      }
      const invalid = validateParams(r.params);
      if (invalid) {
        return {
          custom_id: r.custom_id,
          result: {
            type: 'errored',
            error: {
              type: 'error',
              error: { type: 'invalid_request_error', message: invalid },
              request_id: null,
            },
          },
        };
      }
      return {
        custom_id: r.custom_id,
        result: { type: 'succeeded', message: respond(r.params, now(), 'batch', false).message },
      };
    });
  };

  const handleBatches = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    url: URL,
    body: Json | undefined,
  ) => {
    const t = now();
    if (req.method === 'POST' && path === '/v1/messages/batches') {
      const requests = body?.requests;
      if (!Array.isArray(requests) || requests.length === 0) {
        sendError(res, 400, 'invalid_request_error', 'requests: Field required');
        return;
      }
      if (requests.length > 100_000) {
        sendError(res, 400, 'invalid_request_error', 'requests: List should have at most 100000 items');
        return;
      }
      const seen = new Set<string>();
      for (const [i, r] of (requests as Json[]).entries()) {
        const id = r?.custom_id;
        if (typeof id !== 'string' || !CUSTOM_ID_RE.test(id)) {
          sendError(
            res,
            400,
            'invalid_request_error',
            `requests.${i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`,
          );
          return;
        }
        if (seen.has(id)) {
          sendError(
            res,
            400,
            'invalid_request_error',
            `custom_id's must be unique within a batch. Duplicate custom_id found: ${id}`,
          );
          return;
        }
        seen.add(id);
      }
      const b: StoredBatch = {
        id: newId('msgbatch'),
        createdAt: t,
        endsAt: t + (opts.batchLatencyMs ?? 200),
        cancelAt: null,
        requests: (requests as Json[]).map((r) => ({
          custom_id: r.custom_id as string,
          params: (r.params ?? {}) as Json,
        })),
        results: null,
        canceled: false,
      };
      batches.set(b.id, b);
      stats.batches.created++;
      stats.batches.requestsSubmitted += b.requests.length;
      send(res, 200, batchView(b));
      return;
    }
    if (req.method === 'GET' && path === '/v1/messages/batches') {
      const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 20) || 20);
      const all = [...batches.values()].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
      const after = url.searchParams.get('after_id');
      const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
      const page = all.slice(start, start + limit).map(batchView);
      send(res, 200, {
        data: page,
        has_more: start + limit < all.length,
        first_id: page[0]?.id ?? null,
        last_id: page[page.length - 1]?.id ?? null,
      });
      return;
    }
    const m = /^\/v1\/messages\/batches\/([A-Za-z0-9_]+)(\/results|\/cancel)?$/.exec(path);
    const b = m ? batches.get(m[1]!) : undefined;
    if (!m || !b) {
      sendError(res, 404, 'not_found_error', 'Not found');
      return;
    }
    const sub = m[2];
    if (req.method === 'GET' && !sub) {
      stats.batches.retrieves++;
      const view = batchView(b);
      send(res, 200, view, view.processing_status === 'ended' ? {} : { 'retry-after': '10' });
      return;
    }
    if (req.method === 'GET' && sub === '/results') {
      const view = batchView(b);
      if (view.processing_status !== 'ended' || !b.results) {
        sendError(res, 404, 'not_found_error', `Batch ${b.id} has no available results.`);
        return;
      }
      stats.batches.resultsFetched++;
      send(res, 200, `${b.results.map((r) => JSON.stringify(r)).join('\n')}\n`);
      return;
    }
    if (req.method === 'POST' && sub === '/cancel') {
      if (!b.results) {
        b.cancelAt = t;
        b.canceled = true;
        stats.batches.canceled++;
      }
      send(res, 200, batchView(b));
      return;
    }
    if (req.method === 'DELETE' && !sub) {
      if (batchView(b).processing_status !== 'ended') {
        sendError(
          res,
          400,
          'invalid_request_error',
          'Batch is still in progress; cancel it before deleting.',
        );
        return;
      }
      batches.delete(b.id);
      send(res, 200, { id: b.id, type: 'message_batch_deleted' });
      return;
    }
    sendError(res, 404, 'not_found_error', 'Not found');
  };

  const server = createServer((req, res) => {
    void (async () => {
      stats.httpRequests++;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      const raw = await readBody(req);
      let body: Json | undefined;
      if (raw) {
        try {
          body = JSON.parse(raw) as Json;
        } catch {
          sendError(res, 400, 'invalid_request_error', 'Request body is not valid JSON');
          return;
        }
      }
      if (path.startsWith('/_admin/')) {
        if (req.method === 'POST' && path === '/_admin/limits') {
          Object.assign(limits, body ?? {});
          applyLimits();
          send(res, 200, { limits });
        } else if (req.method === 'POST' && path === '/_admin/faults') {
          setFaults((body ?? {}) as FakeFaults);
          send(res, 200, { ok: true });
        } else if (req.method === 'GET' && path === '/_admin/stats') {
          send(res, 200, { ...stats, messageLog: stats.messageLog.slice(-100) });
        } else if (req.method === 'GET' && path === '/_admin/requests') {
          send(res, 200, { requests: recorded });
        } else sendError(res, 404, 'not_found_error', 'Not found');
        return;
      }
      const key = authKey(req);
      if (!key || (opts.apiKeys && !opts.apiKeys.includes(key))) {
        stats.authFailures++;
        if (path === '/v1/messages') fail401Log();
        sendError(
          res,
          401,
          'authentication_error',
          key ? 'invalid x-api-key' : 'x-api-key header is required',
        );
        return;
      }
      if (opts.forbiddenKeys?.includes(key)) {
        sendError(
          res,
          403,
          'permission_error',
          'Your API key does not have permission to use the specified resource.',
        );
        return;
      }
      if (opts.spendCappedKeys?.includes(key) && path === '/v1/messages') {
        sendError(
          res,
          429,
          'rate_limit_error',
          'Your organization has reached its monthly spend limit. Access resumes at 00:00 UTC on the 1st.',
          {},
          { error_code: 'enforced_spend_limit_reached' },
        );
        return;
      }
      if (req.method === 'POST' && path === '/v1/messages') {
        if (recordLimit > 0) {
          const cid = req.headers['x-cj-correlation-id'];
          recorded.push({
            at: now(),
            ...(typeof cid === 'string' ? { correlationId: cid } : {}),
            body: body ?? {},
          });
          if (recorded.length > recordLimit) recorded.splice(0, recorded.length - recordLimit);
        }
        await handleMessages(req, res, body ?? {});
        return;
      }
      if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
        const invalid = typeof body?.model !== 'string' || !Array.isArray(body?.messages);
        if (invalid) {
          sendError(res, 400, 'invalid_request_error', 'model and messages are required');
          return;
        }
        const a = accountInput(body!, now(), false);
        send(res, 200, { input_tokens: a.input + a.cacheRead + a.cacheWrite });
        return;
      }
      if (path.startsWith('/v1/messages/batches')) {
        await handleBatches(req, res, path, url, body);
        return;
      }
      sendError(res, 404, 'not_found_error', 'Not found');
    })().catch(() => {
      if (!res.headersSent) sendError(res, 500, 'api_error', 'Internal server error');
      else res.end();
    });
  });
  function setFaults(f: FakeFaults) {
    // A new burst pattern starts counting afresh.
    if ('burst429' in f) burstCounter = 0;
    Object.assign(faults, f);
  }
  const fail401Log = () =>
    logMessage({ status: 401, pairs: 0, inputTokens: 0, cacheRead: 0, cacheWrite: 0, outputTokens: 0 });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  baseUrl = `http://${host}:${addr.port}`;
  return {
    url: baseUrl,
    port: addr.port,
    stats: () => structuredClone(stats),
    requests: () => structuredClone(recorded),
    setLimits: (l) => {
      Object.assign(limits, l);
      applyLimits();
    },
    setFaults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
