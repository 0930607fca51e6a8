// metav1.Condition helpers and "write status only when it changed".
//
// Conditions follow the API conventions: one entry per type, all five fields always present,
// lastTransitionTime moves only when status changes (a reason/message change alone keeps it).
// Status is written with a JSON merge patch on the /status subresource, and only when the
// desired status differs from the current one, so a level-based reconcile that finds nothing
// new makes no write (and does not trigger itself through its own watch).
import type { KubeClient } from './rest.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

/** What a caller supplies; lastTransitionTime is derived. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'> & {
  observedGeneration?: number;
  lastTransitionTime?: string;
};

/** RFC 3339 with second precision, as metav1.Time serialises. */
export function metaTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 with microseconds, as metav1.MicroTime serialises (Lease, events.k8s.io). */
export function microTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Returns a new list with `next` set: an existing condition of the same type is replaced in
 * place (keeping its lastTransitionTime when the status did not change), a new type is appended.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: ConditionInput,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const cond: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason || 'Unknown',
    message: next.message ?? '',
    lastTransitionTime:
      prev && prev.status === next.status && prev.lastTransitionTime
        ? prev.lastTransitionTime
        : (next.lastTransitionTime ?? metaTime(now)),
    observedGeneration: next.observedGeneration ?? prev?.observedGeneration ?? 0,
  };
  if (i >= 0) list[i] = cond;
  else list.push(cond);
  return list;
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'False';
}

/** Removes a condition type; returns a new list. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Structural equality of JSON values (key order ignored; undefined members equal missing ones). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!deepEqual(ao[k], bo[k])) return false;
  return true;
}

/**
 * The RFC 7386 merge patch turning `from` into `to`: removed members become null, nested
 * objects are diffed, arrays and scalars are replaced whole. Undefined when equal.
 */
export function mergePatchDiff(from: unknown, to: unknown): unknown {
  if (deepEqual(from, to)) return undefined;
  if (!isPlainObject(from) || !isPlainObject(to)) return to === undefined ? null : to;
  const patch: Record<string, unknown> = {};
  for (const k of Object.keys(from)) if (from[k] !== undefined && to[k] === undefined) patch[k] = null;
  for (const [k, v] of Object.entries(to)) {
    if (v === undefined) continue;
    const d = mergePatchDiff(from[k], v);
    if (d !== undefined) patch[k] = d;
  }
  return patch;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Writes `desiredStatus` to `<objectPath>/status` with a merge patch when it differs from
 * `currentStatus`; returns whether it wrote. Members of the current status missing from the
 * desired one are removed (null in the patch).
 */
export async function patchStatusIfChanged(
  client: KubeClient,
  objectPath: string,
  currentStatus: unknown,
  desiredStatus: unknown,
): Promise<boolean> {
  const diff = mergePatchDiff(currentStatus ?? {}, desiredStatus ?? {});
  if (diff === undefined) return false;
  const path = objectPath.endsWith('/status') ? objectPath : `${objectPath}/status`;
  await client.mergePatch(path, { status: diff });
  return true;
}

/** Sets one condition on a status object, stamped with the generation the controller acted on. */
export type SetCondition = (type: string, status: ConditionStatus, reason: string, message: string) => void;

export function conditionSetter(target: { conditions?: unknown }, generation: number): SetCondition {
  return (type, status, reason, message) => {
    target.conditions = setCondition(target.conditions as Condition[] | undefined, {
      type,
      status,
      reason,
      message,
      observedGeneration: generation,
    });
  };
}
