/**
 * Egress policy for provider API keys: which base URLs a pool may send its key to.
 *
 * The platform (not the tenant) lists the provider endpoints it trusts (`LLM_ALLOWED_BASE_URLS`,
 * Helm value `llm.allowedBaseURLs`); a pool's `spec.baseURL` must fall under one of them. The
 * same check runs at admission, in the pool reconciler before its auth check, when the operator
 * starts a round's workers, and in the worker before its first request, so a pool edited while
 * the webhook was down still never sends a key (or a probe) to a host nobody allowed.
 *
 * An entry is an origin with an optional path prefix: `https://api.anthropic.com`,
 * `https://gateway.example.org/anthropic`. Port `*` admits any port of that host
 * (`http://127.0.0.1:*`, for a local fake server on a random port). Matching is on the parsed
 * URL (scheme, host, port, whole path segments), never on the string, so
 * `https://api.anthropic.com.evil.example` and `https://api.anthropic.com@evil.example` do not
 * pass. URLs carrying credentials, a query or a fragment are refused outright.
 */

/** Where a pool without `spec.baseURL` sends its key. */
export const DEFAULT_PROVIDER_BASE_URL = 'https://api.anthropic.com';
/** The allowlist when the platform configured none: the provider's official endpoint only. */
export const DEFAULT_ALLOWED_BASE_URLS: readonly string[] = [DEFAULT_PROVIDER_BASE_URL];
/** The environment variable the operator reads and passes on to workers. */
export const ALLOWED_BASE_URLS_ENV = 'LLM_ALLOWED_BASE_URLS';

interface Entry {
  protocol: string;
  hostname: string;
  /** '' = the scheme's default port, '*' = any. */
  port: string;
  /** Normalised path prefix without a trailing slash ('' = any path). */
  path: string;
  text: string;
}

export interface EgressPolicy {
  readonly entries: readonly Entry[];
}

const trimSlash = (p: string) => p.replace(/\/+$/, '');

function parseEntry(text: string): Entry {
  // URL() refuses a '*' port: swap it for a placeholder first.
  const wildcard = /^[a-z]+:\/\/[^/]*:\*(\/|$)/i.test(text);
  const u = new URL(wildcard ? text.replace(/:\*(?=\/|$)/, ':1') : text);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`"${text}" is not an http(s) URL`);
  if (u.username || u.password || u.search || u.hash)
    throw new Error(`"${redactUrl(text)}" must be a plain origin with an optional path`);
  return {
    protocol: u.protocol,
    hostname: u.hostname,
    port: wildcard ? '*' : u.port,
    path: trimSlash(u.pathname),
    text,
  };
}

/** Parses a comma- or whitespace-separated list; throws naming the bad entry. */
export function parseEgressPolicy(list: string | readonly string[] | undefined): EgressPolicy {
  const items =
    list === undefined
      ? [...DEFAULT_ALLOWED_BASE_URLS]
      : (typeof list === 'string' ? list.split(/[\s,]+/) : [...list]).filter((s) => s.length > 0);
  const entries = items.map((t) => {
    try {
      return parseEntry(t);
    } catch (e) {
      throw new Error(`${ALLOWED_BASE_URLS_ENV}: ${(e as Error).message}`);
    }
  });
  return { entries };
}

/** The allowlist from the environment (the official endpoint when unset or empty). */
export function egressPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): EgressPolicy {
  const v = env[ALLOWED_BASE_URLS_ENV];
  return parseEgressPolicy(v?.trim() ? v : undefined);
}

/** The list as one string, for messages and for passing on in an environment variable. */
export const policyText = (p: EgressPolicy) => p.entries.map((e) => e.text).join(',');

/** A URL with any user:password@ removed, safe for logs, status and Events. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, '$1***@');
}

/** Credentials, a query or a fragment in a base URL: refused whatever the allowlist says. */
export function urlShapeProblem(baseURL: string | undefined): string | undefined {
  if (baseURL === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(baseURL);
  } catch {
    return `${redactUrl(baseURL)} is not a URL`;
  }
  if (u.username || u.password)
    return 'must not carry credentials (user:password@); the API key comes from spec.apiKeySecretRef only';
  if (u.search || u.hash) return `${redactUrl(baseURL)} must not have a query or fragment`;
  return undefined;
}

/**
 * Undefined when a key may be sent to `baseURL` (or to the default endpoint when it is unset);
 * otherwise why not, in words fit for a field error (no credentials echoed).
 */
export function baseUrlProblem(baseURL: string | undefined, policy: EgressPolicy): string | undefined {
  const target = baseURL ?? DEFAULT_PROVIDER_BASE_URL;
  const shape = urlShapeProblem(target);
  if (shape) return shape;
  const u = new URL(target);
  const path = trimSlash(u.pathname);
  const ok = policy.entries.some(
    (e) =>
      e.protocol === u.protocol &&
      e.hostname === u.hostname &&
      (e.port === '*' || e.port === u.port) &&
      (e.path === '' || path === e.path || path.startsWith(`${e.path}/`)),
  );
  if (ok) return undefined;
  return (
    `${target} is not an allowed provider endpoint; the platform allows ${policyText(policy) || 'none'} ` +
    `(operator setting ${ALLOWED_BASE_URLS_ENV}, Helm value llm.allowedBaseURLs); use one of them or ask the platform team to add yours`
  );
}

/**
 * The label a Secret must carry before any pool may use it as its API key. Without it the
 * operator neither reads the Secret's data nor lets a worker mount it: a tenant cannot have
 * the operator send some other Secret of the namespace (a token, a database password) to a
 * provider.
 */
export const SECRET_OPT_IN_LABEL = 'cj.huleedu.io/llm-api-key';
export const SECRET_OPT_IN_VALUE = 'true';

export const secretOptedIn = (
  s: { metadata?: { labels?: Record<string, string> | undefined } } | undefined,
) => s?.metadata?.labels?.[SECRET_OPT_IN_LABEL] === SECRET_OPT_IN_VALUE;
