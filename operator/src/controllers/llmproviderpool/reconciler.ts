// The LLMProviderPool reconciler: Ready when the pool's base URL is on the platform's allowlist,
// the API-key Secret exists and opted in to pool use (label cj.huleedu.io/llm-api-key=true), and
// a cheap auth check passes (the token-counting endpoint: authenticated, free, never a model
// call); Degraded with a reason otherwise. Batches on a pool that is not Ready wait; they never
// fail for it. A missing Secret is polled, so creating it later is enough: no manual step.
//
// Order matters for safety: the base URL is checked before the Secret is even read, so a pool
// aimed at a host nobody allowed makes the operator neither read the key nor open a connection
// (no probing of internal addresses with the operator's network identity). A Secret without the
// opt-in label is reported exactly like a missing one, so pool status does not tell a tenant
// which other Secrets exist in the namespace.
import {
  baseUrlProblem,
  DEFAULT_PROVIDER_BASE_URL,
  type EgressPolicy,
  egressPolicyFromEnv,
  redactUrl,
  SECRET_OPT_IN_LABEL,
  SECRET_OPT_IN_VALUE,
  secretOptedIn,
} from '../../../../contract/src/egress.js';
import type { CJBatch, LLMProviderPool, LLMProviderPoolStatus } from '../../api/index.js';
import { RESOURCES } from '../../api/index.js';
import type { ReconcileContext, Reconciler, Request, Result } from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { setKstatusConditions } from '../../kube/kstatus.js';
import { isNotFound, type KubeClient, resourcePath } from '../../kube/rest.js';
import { conditionSetter, patchStatusIfChanged, type SetCondition } from '../../kube/status.js';

/** Degraded reasons only a person can fix (the others are retried and may pass by themselves). */
const NEEDS_A_HUMAN = new Set(['SecretNotFound', 'SecretKeyMissing', 'AuthFailed', 'BaseURLNotAllowed']);

/**
 * The pool's conditions for the outcome of its Secret and key check: Ready/Degraded, and the
 * kstatus pair. A missing Secret or a refused key waits for a human (Stalled); an unreachable
 * provider or a failed check may recover by itself (Reconciling, re-checked every 10 s).
 */
export function setPoolConditions(
  cond: SetCondition,
  ready: { ok: boolean; reason: string; message: string },
): void {
  cond('Ready', ready.ok ? 'True' : 'False', ready.reason, ready.message);
  cond(
    'Degraded',
    ready.ok ? 'False' : 'True',
    ready.reason,
    ready.ok ? 'no problem detected' : ready.message,
  );
  setKstatusConditions(
    cond,
    ready.ok ? {} : NEEDS_A_HUMAN.has(ready.reason) ? { stalled: ready } : { reconciling: ready },
  );
}

const { pools: POOLS, secrets: SECRETS } = RESOURCES;
/** An auth check result is reused this long unless the pool or its Secret changes. */
const AUTH_CHECK_TTL_MS = 5 * 60_000;

/**
 * Auth check results by pool generation and Secret version. Only answers the provider gave are
 * reused: an `Unreachable` (timeout, refused connection) says nothing about the key, and reusing
 * it would park every batch of the pool for the whole TTL after one lost probe, although the pool
 * requeues every few seconds.
 */
export class AuthCheckCache {
  private readonly byKey = new Map<string, { at: number; result: AuthResult }>();
  constructor(
    private readonly ttlMs = AUTH_CHECK_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}
  get(key: string): AuthResult | undefined {
    const hit = this.byKey.get(key);
    return hit && this.now() - hit.at < this.ttlMs ? hit.result : undefined;
  }
  set(key: string, result: AuthResult): void {
    if (result.reason === 'Unreachable') this.byKey.delete(key);
    else this.byKey.set(key, { at: this.now(), result });
  }
}

export type AuthResult = { ok: boolean; reason: string; message: string };
export type AuthCheck = (baseURL: string, apiKey: string, model: string) => Promise<AuthResult>;

/** POST /v1/messages/count_tokens: authenticates the key without spending tokens. */
export const countTokensAuthCheck: AuthCheck = async (baseURL, apiKey, model) => {
  try {
    const res = await fetch(`${baseURL.replace(/\/$/, '')}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'ping' }] }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.text();
    if (res.status === 401 || res.status === 403)
      return {
        ok: false,
        reason: 'AuthFailed',
        message: `the provider refused the API key (HTTP ${res.status}); update the Secret`,
      };
    if (res.status >= 500 || res.status === 429)
      // Reachable and authenticated far enough to be throttled or overloaded: usable.
      return {
        ok: true,
        reason: 'Reachable',
        message: `auth check answered HTTP ${res.status}; treating the key as valid`,
      };
    if (res.status >= 400)
      return {
        ok: false,
        reason: 'CheckFailed',
        message: `auth check answered HTTP ${res.status}; check spec.model and spec.baseURL`,
      };
    return { ok: true, reason: 'Authenticated', message: 'the API key authenticated' };
  } catch (err) {
    return {
      ok: false,
      reason: 'Unreachable',
      message: `cannot reach ${redactUrl(baseURL)}: ${redactUrl((err as Error).message)}`,
    };
  }
};

export interface PoolDeps {
  client: KubeClient;
  pools: Informer<LLMProviderPool>;
  batches: Informer<CJBatch>;
  recorder: EventRecorder;
  authCheck?: AuthCheck;
  /** Base URLs a pool may send its key to; the environment's (LLM_ALLOWED_BASE_URLS) by default. */
  egress?: EgressPolicy;
  /** Live usage from the shared limiter tables, when available. */
  usage?: (poolKey: string) => Promise<LLMProviderPoolStatus['usage'] | undefined>;
  /** The pool's limiter row: kept at the pool's limits while it exists, removed with it. */
  limiter?: {
    sync(pool: LLMProviderPool): Promise<void>;
    remove(poolKey: string): Promise<void>;
  };
}

export class LLMProviderPoolReconciler implements Reconciler {
  private readonly authCache = new AuthCheckCache();
  private readonly egress: EgressPolicy;
  constructor(private readonly d: PoolDeps) {
    this.egress = d.egress ?? egressPolicyFromEnv();
  }

  async reconcile(req: Request, _ctx: ReconcileContext): Promise<Result | undefined> {
    const pool = this.d.pools.get(req.namespace, req.name);
    if (!pool) {
      // Deleted: its limiter row (and reservations) must not outlive it.
      await this.d.limiter?.remove(`${req.namespace}/${req.name}`);
      return undefined;
    }
    const gen = pool.metadata.generation ?? 0;
    const status: LLMProviderPoolStatus = structuredClone(pool.status ?? {});
    const cond = conditionSetter(status, gen);
    status.observedGeneration = gen;

    const ready = await this.check(pool, req.namespace);
    const wasReady = pool.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    setPoolConditions(cond, ready);
    if (ready.ok && wasReady !== 'True') this.d.recorder.event(pool, 'Normal', 'Ready', ready.message);
    if (!ready.ok && wasReady !== 'False')
      this.d.recorder.event(pool, 'Warning', ready.reason, ready.message);
    const using = this.d.batches
      .list(req.namespace)
      .filter((b) => b.spec.providerPoolRef.name === req.name)
      .filter((b) => !['Succeeded', 'Failed'].includes(b.status?.phase ?? ''));
    status.batches = { count: using.length, names: using.slice(0, 50).map((b) => b.metadata.name!) };
    if (ready.ok) await this.d.limiter?.sync(pool);
    const usage = await this.d.usage?.(`${req.namespace}/${req.name}`).catch(() => undefined);
    if (usage) status.usage = usage;
    await patchStatusIfChanged(
      this.d.client,
      `${resourcePath(POOLS, req.namespace, req.name)}/status`,
      pool.status ?? {},
      status,
    );
    // Poll: a missing Secret may appear, a refused key may be fixed, usage changes.
    return { requeueAfter: ready.ok ? 60_000 : 10_000 };
  }

  /** Egress first, then the Secret (opt-in, key), then the auth check (cached). */
  private async check(
    pool: LLMProviderPool,
    namespace: string,
  ): Promise<{ ok: boolean; reason: string; message: string }> {
    const ref = pool.spec.apiKeySecretRef;
    const egress = baseUrlProblem(pool.spec.baseURL, this.egress);
    if (egress) return { ok: false, reason: 'BaseURLNotAllowed', message: `spec.baseURL: ${egress}` };
    let secret:
      | {
          metadata?: { resourceVersion?: string; labels?: Record<string, string> };
          data?: Record<string, string>;
        }
      | undefined;
    try {
      secret = await this.d.client.get(resourcePath(SECRETS, namespace, ref.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!secret || !secretOptedIn(secret))
      return {
        ok: false,
        reason: 'SecretNotFound',
        message:
          `no Secret "${ref.name}" labelled ${SECRET_OPT_IN_LABEL}=${SECRET_OPT_IN_VALUE} in ${namespace}; ` +
          `create it with key "${ref.key}" and that label (only labelled Secrets are ever used as API keys)`,
      };
    const raw = secret.data?.[ref.key];
    const key = raw ? Buffer.from(raw, 'base64').toString().trim() : undefined;
    if (!key)
      return {
        ok: false,
        reason: 'SecretKeyMissing',
        message: `Secret "${ref.name}" has no key "${ref.key}"; add the API key under that key`,
      };
    const gen = pool.metadata.generation ?? 0;
    const cacheKey = `${pool.metadata.uid}/${gen}/${secret.metadata?.resourceVersion}`;
    const cached = this.authCache.get(cacheKey);
    if (cached) return cached;
    const result = await (this.d.authCheck ?? countTokensAuthCheck)(
      pool.spec.baseURL ?? DEFAULT_PROVIDER_BASE_URL,
      key,
      pool.spec.model,
    );
    this.authCache.set(cacheKey, result);
    return result;
  }
}
