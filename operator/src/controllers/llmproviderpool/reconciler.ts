// The LLMProviderPool reconciler: Ready when the API-key Secret exists and a cheap auth check
// passes (the token-counting endpoint: authenticated, free, never a model call); Degraded with a
// reason otherwise. Batches on a pool that is not Ready wait; they never fail for it. A missing
// Secret is polled, so creating it later is enough: no manual step.
import type { CJBatch, LLMProviderPool, LLMProviderPoolStatus } from '../../api/index.js';
import type { ReconcileContext, Reconciler, Request, Result } from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { setKstatusConditions } from '../../kube/kstatus.js';
import { isNotFound, type KubeClient, type KubeObject, resourcePath } from '../../kube/rest.js';
import { conditionSetter, patchStatusIfChanged, type SetCondition } from '../../kube/status.js';

/** Degraded reasons only a person can fix (the others are retried and may pass by themselves). */
const NEEDS_A_HUMAN = new Set(['SecretNotFound', 'SecretKeyMissing', 'AuthFailed']);

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

const POOLS = { group: 'cj.huleedu.io', version: 'v1alpha1', plural: 'llmproviderpools' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
const DEFAULT_BASE_URL = 'https://api.anthropic.com';
/** An auth check result is reused this long unless the pool or its Secret changes. */
const AUTH_CHECK_TTL_MS = 5 * 60_000;

export type AuthCheck = (
  baseURL: string,
  apiKey: string,
  model: string,
) => Promise<{ ok: boolean; reason: string; message: string }>;

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
      message: `cannot reach ${baseURL}: ${(err as Error).message}`,
    };
  }
};

export interface PoolDeps {
  client: KubeClient;
  pools: Informer<KubeObject>;
  batches: Informer<KubeObject>;
  recorder: EventRecorder;
  authCheck?: AuthCheck;
  /** Live usage from the shared limiter tables, when available. */
  usage?: (poolKey: string) => Promise<LLMProviderPoolStatus['usage'] | undefined>;
}

export class LLMProviderPoolReconciler implements Reconciler {
  private readonly authCache = new Map<string, { at: number; result: Awaited<ReturnType<AuthCheck>> }>();
  constructor(private readonly d: PoolDeps) {}

  async reconcile(req: Request, _ctx: ReconcileContext): Promise<Result | undefined> {
    const pool = this.d.pools.get(req.namespace, req.name) as unknown as LLMProviderPool | undefined;
    if (!pool) return undefined;
    const gen = pool.metadata.generation ?? 0;
    const status: LLMProviderPoolStatus = structuredClone(pool.status ?? {});
    const cond = conditionSetter(status, gen);
    status.observedGeneration = gen;

    const ref = pool.spec.apiKeySecretRef;
    let secret: { metadata?: { resourceVersion?: string }; data?: Record<string, string> } | undefined;
    try {
      secret = await this.d.client.get(resourcePath(SECRETS, req.namespace, ref.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const key = secret?.data?.[ref.key]
      ? Buffer.from(secret.data[ref.key]!, 'base64').toString().trim()
      : undefined;
    let ready: { ok: boolean; reason: string; message: string };
    if (!secret)
      ready = {
        ok: false,
        reason: 'SecretNotFound',
        message: `Secret "${ref.name}" not found in ${req.namespace}; create it with key "${ref.key}"`,
      };
    else if (!key)
      ready = {
        ok: false,
        reason: 'SecretKeyMissing',
        message: `Secret "${ref.name}" has no key "${ref.key}"; add the API key under that key`,
      };
    else {
      const cacheKey = `${pool.metadata.uid}/${gen}/${secret.metadata?.resourceVersion}`;
      const cached = this.authCache.get(cacheKey);
      if (cached && Date.now() - cached.at < AUTH_CHECK_TTL_MS) ready = cached.result;
      else {
        ready = await (this.d.authCheck ?? countTokensAuthCheck)(
          pool.spec.baseURL ?? DEFAULT_BASE_URL,
          key,
          pool.spec.model,
        );
        this.authCache.set(cacheKey, { at: Date.now(), result: ready });
      }
    }
    const wasReady = pool.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    setPoolConditions(cond, ready);
    if (ready.ok && wasReady !== 'True')
      this.d.recorder.event(pool as unknown as KubeObject, 'Normal', 'Ready', ready.message);
    if (!ready.ok && wasReady !== 'False')
      this.d.recorder.event(pool as unknown as KubeObject, 'Warning', ready.reason, ready.message);
    const using = this.d.batches
      .list(req.namespace)
      .filter((b) => (b as unknown as CJBatch).spec?.providerPoolRef?.name === req.name)
      .filter((b) => !['Succeeded', 'Failed'].includes((b as unknown as CJBatch).status?.phase ?? ''));
    status.batches = { count: using.length, names: using.slice(0, 50).map((b) => b.metadata!.name!) };
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
}
