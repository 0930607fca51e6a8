// The batch's other children (the worker Secret, the results ConfigMaps) and the ConfigMaps its
// spec reads. A child is created only when its name is free and replaced only when the batch owns
// it: an object of that name that belongs to someone else is never taken over.
import type { Sql } from '../../../../runtime/src/store/index.js';
import { batchRoleName, createBatchRole, workerDatabaseUrl } from '../../../../runtime/src/store/tenancy.js';
import type { CJBatch, LLMProviderPool } from '../../api/index.js';
import { poolKeyOf, RESOURCES } from '../../api/index.js';
import { isNotFound, type KubeClient, type KubeObject, resourcePath } from '../../kube/rest.js';
import { ownedObjectMeta } from './jobs.js';

export const FIELD_MANAGER = 'cj-operator';
const { configMaps: CONFIGMAPS, secrets: SECRETS } = RESOURCES;

/** An object the batch needs to create exists and belongs to someone else. */
export class ForeignChildError extends Error {}

type Client = Pick<KubeClient, 'get' | 'create' | 'apply'>;

/** The batch's ConfigMap `name`, or undefined when there is none. */
export async function getConfigMap(client: Client, batch: CJBatch, name: string) {
  try {
    return await client.get<{ data?: Record<string, string> }>(
      resourcePath(CONFIGMAPS, batch.metadata.namespace, name),
    );
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Server-side apply of a ConfigMap that only this batch may own: created when missing, and
 * refused (ForeignChildError) when an object of that name exists without this batch as its
 * owner, instead of a forced apply taking a stranger's object over.
 */
export async function applyOwnedConfigMap(client: Client, batch: CJBatch, name: string, body: object) {
  const path = resourcePath(CONFIGMAPS, batch.metadata.namespace, name);
  for (let attempt = 0; attempt < 2; attempt++) {
    let cur: KubeObject | undefined;
    try {
      cur = await client.get<KubeObject>(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (cur) {
      if (!cur.metadata?.ownerReferences?.some((o) => o.uid === batch.metadata.uid))
        throw new ForeignChildError(
          `ConfigMap "${name}" already exists in ${batch.metadata.namespace} and does not belong to this batch; the operator will not take it over: rename the CJBatch or delete that object`,
        );
      await client.apply(path, body, FIELD_MANAGER);
      return;
    }
    try {
      await client.create(resourcePath(CONFIGMAPS, batch.metadata.namespace), body);
      return;
    } catch (err) {
      if ((err as { status?: number }).status !== 409) throw err; // created meanwhile: check again
    }
  }
}

/**
 * The `<batch>-worker` Secrets: each holds its batch role's database URL, never the operator's.
 * The password exists only there: when the Secret is missing (first start, or a tenant deleted it)
 * the role gets a fresh password and the Secret is created, never forced over someone else's
 * object. Remembers the batches (uid) whose Secret this process has verified.
 */
export class WorkerSecrets {
  private readonly checked = new Set<string>();
  constructor(
    private readonly client: Client,
    private readonly sql: Sql,
    private readonly config: { databaseUrl: string; maxBatchDbConnections: number },
  ) {}

  /** Returns a problem to show when the name is taken by an object the batch does not own. */
  async ensure(batch: CJBatch, pool: LLMProviderPool): Promise<string | undefined> {
    const uid = batch.metadata.uid!;
    if (this.checked.has(uid)) return undefined;
    const name = `${batch.metadata.name}-worker`;
    const path = resourcePath(SECRETS, batch.metadata.namespace, name);
    let existing: { metadata?: KubeObject['metadata']; data?: Record<string, string> } | undefined;
    try {
      existing = await this.client.get(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === uid))
      return `Secret ${name} exists and is not owned by this batch; delete or rename it (the operator never takes over an object it did not create)`;
    if (existing && secretUser(existing.data?.DATABASE_URL) === batchRoleName(uid)) {
      this.checked.add(uid);
      return undefined;
    }
    const creds = await createBatchRole(this.sql, {
      uid,
      poolKey: poolKeyOf(pool),
      connectionLimit: batchConnectionLimit(batch, this.config.maxBatchDbConnections),
    });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: ownedObjectMeta(batch, name),
      type: 'Opaque',
      stringData: { DATABASE_URL: workerDatabaseUrl(this.config.databaseUrl, creds) },
    };
    // Ours but stale (a Secret from before per-batch roles): replace its data.
    if (existing) await this.client.apply(path, secret, FIELD_MANAGER);
    else await this.client.create(resourcePath(SECRETS, batch.metadata.namespace), secret);
    this.checked.add(uid);
    return undefined;
  }

  /** The batch is gone: forget it. */
  forget(uid: string): void {
    this.checked.delete(uid);
  }
}

/** The user name in a database URL, if it parses. */
function secretUser(b64: string | undefined): string | undefined {
  if (!b64) return undefined;
  try {
    return decodeURIComponent(new URL(Buffer.from(b64, 'base64').toString()).username);
  } catch {
    return undefined;
  }
}

/**
 * A batch's database connections: each comparison pod opens at most 4, the scoring pod 2, and a
 * replacement pod may overlap its predecessor; capped by the platform's MAX_BATCH_DB_CONNECTIONS.
 */
export function batchConnectionLimit(batch: CJBatch, max: number): number {
  const parallelism = batch.spec.workers?.parallelism ?? 2;
  return Math.min(max, parallelism * 4 + 4);
}
