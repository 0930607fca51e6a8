// Conflict-safe, idempotent finalizer add/remove.
//
// A JSON patch carries a `test` op on what we read (the whole finalizers list, or the
// resourceVersion when the list is absent), so a concurrent writer's finalizer is never
// clobbered: the patch fails (422/409) instead, and we re-read and retry. Adding a present
// finalizer or removing an absent one makes no request.
import { ApiError, isNotFound, type JsonPatchOp, type KubeClient, type KubeObject } from './rest.js';

const MAX_ATTEMPTS = 8;

const retryable = (err: unknown) =>
  err instanceof ApiError && (err.status === 409 || err.status === 422 || err.status === 500);

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** Adds `finalizer`; returns the object as written (or as read, if nothing changed). */
export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  objPath: string,
  obj: T,
  finalizer: string,
): Promise<T> {
  let cur = obj;
  for (let attempt = 1; ; attempt++) {
    const list = cur.metadata?.finalizers;
    if (list?.includes(finalizer)) return cur;
    const ops: JsonPatchOp[] =
      list && list.length > 0
        ? [
            { op: 'test', path: '/metadata/finalizers', value: list },
            { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
          ]
        : [
            { op: 'test', path: '/metadata/resourceVersion', value: cur.metadata?.resourceVersion ?? '' },
            { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
          ];
    try {
      return await client.jsonPatch<T>(objPath, ops);
    } catch (err) {
      if (!retryable(err) || attempt >= MAX_ATTEMPTS) throw err;
      cur = await client.get<T>(objPath);
    }
  }
}

/**
 * Removes `finalizer`; returns the object as written, or undefined when the object is gone
 * (removing the last finalizer of a deleted object lets the apiserver delete it).
 */
export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  objPath: string,
  obj: T,
  finalizer: string,
): Promise<T | undefined> {
  let cur = obj;
  for (let attempt = 1; ; attempt++) {
    const i = cur.metadata?.finalizers?.indexOf(finalizer) ?? -1;
    if (i < 0) return cur;
    const ops: JsonPatchOp[] = [
      { op: 'test', path: `/metadata/finalizers/${i}`, value: finalizer },
      { op: 'remove', path: `/metadata/finalizers/${i}` },
    ];
    try {
      return await client.jsonPatch<T>(objPath, ops);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (!retryable(err) || attempt >= MAX_ATTEMPTS) throw err;
      try {
        cur = await client.get<T>(objPath);
      } catch (getErr) {
        if (isNotFound(getErr)) return undefined;
        throw getErr;
      }
    }
  }
}
