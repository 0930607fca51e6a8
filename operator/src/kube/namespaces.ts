// One informer over a list of namespaces (namespaced mode: the operator holds a Role in each
// watched namespace and no ClusterRole, so it cannot list or watch across the cluster). It is an
// Informer to its users (the controllers, the reconcilers' caches): one list+watch per namespace
// underneath, one cache view on top.
import { Informer, type InformerHandler, type InformerOptions } from './informer.js';
import type { GVR, KubeClient, KubeObject } from './rest.js';

class MultiNamespaceInformer<T extends KubeObject> extends Informer<T> {
  private readonly parts: Informer<T>[];
  constructor(client: KubeClient, gvr: GVR, opts: InformerOptions, namespaces: readonly string[]) {
    super(client, gvr, opts);
    this.parts = namespaces.map((namespace) => new Informer<T>(client, gvr, { ...opts, namespace }));
  }
  override async start(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.start()));
  }
  override async stop(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stop()));
  }
  override hasSynced(): boolean {
    return this.parts.every((p) => p.hasSynced());
  }
  override isHealthy(maxSilenceMs?: number): boolean {
    return this.parts.every((p) => p.isHealthy(maxSilenceMs));
  }
  override get(namespace: string | undefined, name: string): T | undefined {
    for (const p of this.parts) {
      const o = p.get(namespace, name);
      if (o) return o;
    }
    return undefined;
  }
  override list(namespace?: string): T[] {
    return this.parts.flatMap((p) => p.list(namespace));
  }
  override keys(): string[] {
    return this.parts.flatMap((p) => p.keys());
  }
  override onEvent(handler: InformerHandler<T>): void {
    for (const p of this.parts) p.onEvent(handler);
  }
  override restartWatch(): void {
    for (const p of this.parts) p.restartWatch();
  }
}

/**
 * An informer for `gvr` over `namespaces` (undefined: the whole cluster, which needs a
 * ClusterRole; one namespace: a plain namespaced informer).
 */
export function scopedInformer<T extends KubeObject>(
  client: KubeClient,
  gvr: GVR,
  opts: Omit<InformerOptions, 'namespace'>,
  namespaces: readonly string[] | undefined,
): Informer<T> {
  if (!namespaces) return new Informer<T>(client, gvr, opts);
  if (namespaces.length === 1) return new Informer<T>(client, gvr, { ...opts, namespace: namespaces[0]! });
  return new MultiNamespaceInformer<T>(client, gvr, opts, namespaces);
}
