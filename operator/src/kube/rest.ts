// A small Kubernetes REST client over node:http(s) with one keep-alive agent.
//
// Why not client-node's generated APIs: in 1.4.0 they pick the first patch media type (415 on
// CRDs), create a new https.Agent per watch (FD leak, #2893), and have no client-side watch
// timeout. We take only configuration and authentication from client-node's KubeConfig
// (KUBECONFIG or in-cluster) and speak plain HTTP+JSON with exact content types.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { type RuntimeMetrics, runtimeMetrics } from './metrics.js';

/** Group/version/plural of a resource; `group: ''` is the core group (/api/v1). */
export interface GVR {
  group: string;
  version: string;
  plural: string;
}

/** The common shape of every Kubernetes object we handle. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  managedFields?: unknown[];
  [k: string]: unknown;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** An HTTP error from the apiserver (status ≥ 300), or status 0 for a network failure. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.status === 410;
export const isUnauthorized = (err: unknown): boolean =>
  err instanceof ApiError && (err.status === 401 || err.status === 403);

export const CONTENT_TYPE = {
  json: 'application/json',
  mergePatch: 'application/merge-patch+json',
  jsonPatch: 'application/json-patch+json',
  strategicMergePatch: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** The REST path of a collection, an object or an object's subresource. */
export function resourcePath(gvr: GVR, namespace?: string, name?: string, subresource?: string): string {
  let p = gvr.group === '' ? `/api/${gvr.version}` : `/apis/${gvr.group}/${gvr.version}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${gvr.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (name && subresource) p += `/${subresource}`;
  return p;
}

/** Appends query parameters (undefined values are skipped). */
export function withQuery(path: string, q: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  if (!s) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${s}`;
}

export interface KubeClientOptions {
  /** e.g. https://10.0.0.1:6443 or http://127.0.0.1:8080 (tests). */
  server: string;
  /** TLS material for the agent (ca, cert, key, servername, rejectUnauthorized). */
  tls?: https.AgentOptions;
  /** Returns the auth headers for a request (cached by the caller if expensive). */
  authHeaders?: () => Promise<Record<string, string>>;
  registry?: Registry;
  /** Default per-request timeout (not for watches). */
  timeoutMs?: number;
  userAgent?: string;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const AUTH_REFRESH_MS = 60_000;

export class KubeClient {
  readonly server: URL;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly metrics: RuntimeMetrics;
  private readonly host: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: KubeClientOptions) {
    this.server = new URL(opts.server);
    const isHttps = this.server.protocol === 'https:';
    this.mod = isHttps ? https : http;
    this.agent = isHttps
      ? new https.Agent({ ...opts.tls, keepAlive: true, maxSockets: 64 })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.metrics = runtimeMetrics(opts.registry);
    this.host = this.server.host;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * From KUBECONFIG / ~/.kube/config, or the in-cluster service account. TLS material is read
   * once; auth headers are re-derived every minute so rotated service-account tokens are used.
   */
  static async fromDefault(opts: { registry?: Registry; timeoutMs?: number } = {}): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return KubeClient.fromKubeConfig(kc, opts);
  }

  /** From a loaded kubeconfig at its current context (the CLI picks the file and context). */
  static async fromKubeConfig(
    kc: KubeConfig,
    opts: { registry?: Registry; timeoutMs?: number; userAgent?: string } = {},
  ): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const probe: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(probe);
    // applyToHTTPSOptions creates an Agent we do not use; take only the TLS material.
    (probe.agent as https.Agent | undefined)?.destroy();
    const tls: https.AgentOptions = {};
    if (probe.ca) tls.ca = probe.ca;
    if (probe.cert) tls.cert = probe.cert;
    if (probe.key) tls.key = probe.key;
    if (probe.servername) tls.servername = probe.servername;
    if (probe.rejectUnauthorized !== undefined) tls.rejectUnauthorized = probe.rejectUnauthorized;
    if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
    let cached: { at: number; headers: Record<string, string> } | undefined;
    const authHeaders = async (): Promise<Record<string, string>> => {
      if (cached && Date.now() - cached.at < AUTH_REFRESH_MS) return cached.headers;
      const o: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(o);
      (o.agent as https.Agent | undefined)?.destroy();
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.headers ?? {})) {
        if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
      }
      if (o.auth) headers.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
      cached = { at: Date.now(), headers };
      return headers;
    };
    return new KubeClient({ server: cluster.server, tls, authHeaders, ...opts });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  private async open(
    method: string,
    path: string,
    payload: string | undefined,
    contentType: string | undefined,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<http.ClientRequest> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.opts.userAgent ?? 'cj-operator',
      ...(this.opts.authHeaders ? await this.opts.authHeaders() : {}),
    };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? CONTENT_TYPE.json;
      // Always frame the body: Node does not chunk DELETE bodies.
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const url = new URL(path, this.server);
    const req = this.mod.request(url, { method, agent: this.agent, headers, signal, timeout: timeoutMs });
    if (timeoutMs)
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
    return req;
  }

  /** One request; resolves with the parsed JSON body (undefined when empty); throws ApiError. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const started = process.hrtime.bigint();
    let code = '<error>';
    try {
      const req = await this.open(
        method,
        path,
        payload,
        contentType,
        opts.timeoutMs ?? this.timeoutMs,
        opts.signal,
      );
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(payload);
      });
      code = String(status);
      if (status >= 300) throw apiErrorFrom(status, text, method, path);
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (err) {
      if (err instanceof ApiError) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new ApiError(0, 'NetworkError', `${method} ${path}: ${msg}`, undefined);
    } finally {
      this.metrics.restRequests.inc({ code, method, host: this.host });
      this.metrics.restDuration.observe(
        { verb: method, host: this.host },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, undefined, opts);
  }
  create<T>(path: string, obj: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, obj, CONTENT_TYPE.json, opts);
  }
  replace<T>(path: string, obj: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, obj, CONTENT_TYPE.json, opts);
  }
  mergePatch<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, body, CONTENT_TYPE.mergePatch, opts);
  }
  jsonPatch<T>(path: string, ops: JsonPatchOp[], opts?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, ops, CONTENT_TYPE.jsonPatch, opts);
  }
  /** Server-side apply of `obj` (which must carry apiVersion, kind, metadata.name) at its object path. */
  apply<T>(
    path: string,
    obj: unknown,
    fieldManager: string,
    force = true,
    opts?: RequestOptions,
  ): Promise<T> {
    return this.request<T>(
      'PATCH',
      withQuery(path, { fieldManager, force: force ? 'true' : undefined }),
      obj,
      CONTENT_TYPE.apply,
      opts,
    );
  }
  delete<T = unknown>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, body, CONTENT_TYPE.json, opts);
  }

  /**
   * One watch stream on `path` (a collection path with query; `watch=1` is added). Calls
   * `onEvent` for every line; resolves when the server ends the stream (timeoutSeconds) or
   * `signal` aborts; rejects with ApiError on a non-200 answer or a broken stream.
   */
  async watch(
    path: string,
    onEvent: (type: WatchEventType, obj: unknown) => void,
    signal: AbortSignal,
    onConnect?: () => void,
  ): Promise<void> {
    const full = /[?&]watch=/.test(path) ? path : withQuery(path, { watch: 1 });
    if (signal.aborted) return;
    let code = '<error>';
    try {
      const req = await this.open('GET', full, undefined, undefined, undefined, undefined);
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        };
        const onAbort = () => {
          req.destroy();
          finish();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        req.on('error', (err) => finish(signal.aborted ? undefined : err));
        req.on('response', (res) => {
          const status = res.statusCode ?? 0;
          code = String(status);
          if (status !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              finish(apiErrorFrom(status, Buffer.concat(chunks).toString('utf8'), 'GET', full)),
            );
            res.on('error', (err) => finish(err));
            return;
          }
          onConnect?.();
          res.setEncoding('utf8');
          let buf = '';
          res.on('data', (chunk: string) => {
            buf += chunk;
            let nl = buf.indexOf('\n');
            while (nl >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) {
                let ev: { type?: WatchEventType; object?: unknown } | undefined;
                try {
                  ev = JSON.parse(line);
                } catch {
                  req.destroy();
                  finish(new ApiError(0, 'BadWatchLine', `watch ${path}: bad JSON line`, line.slice(0, 200)));
                  return;
                }
                if (ev?.type) onEvent(ev.type, ev.object);
                if (settled) return;
              }
              nl = buf.indexOf('\n');
            }
          });
          res.on('end', () => finish());
          res.on('aborted', () => finish(signal.aborted ? undefined : new Error('watch stream aborted')));
          res.on('error', (err) => finish(signal.aborted ? undefined : err));
          res.on('close', () =>
            finish(signal.aborted || res.complete ? undefined : new Error('watch stream closed')),
          );
        });
        req.end();
      });
    } catch (err) {
      if (err instanceof ApiError) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new ApiError(0, 'NetworkError', `watch ${path}: ${msg}`, undefined);
    } finally {
      this.metrics.restRequests.inc({ code, method: 'WATCH', host: this.host });
    }
  }
}

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

function apiErrorFrom(status: number, text: string, method: string, path: string): ApiError {
  let body: unknown = text;
  let reason = http.STATUS_CODES[status]?.replace(/\s+/g, '') ?? 'Unknown';
  let message = `${method} ${path}: HTTP ${status}`;
  try {
    const parsed = JSON.parse(text) as { kind?: string; reason?: string; message?: string };
    body = parsed;
    if (parsed && parsed.kind === 'Status') {
      if (parsed.reason) reason = parsed.reason;
      if (parsed.message) message = `${message}: ${parsed.message}`;
    }
  } catch {
    if (text) message = `${message}: ${text.slice(0, 300)}`;
  }
  return new ApiError(status, reason, message, body);
}
