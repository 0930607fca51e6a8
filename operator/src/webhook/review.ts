// AdmissionReview v1 handling, independent of HTTP and TLS so it is unit-testable: a request in,
// a response out. Both kinds go through the shared validation module.
import { isDeepStrictEqual } from 'node:util';
import { GROUP } from '../api/index.js';
import {
  formatErrors,
  type ValidationContext,
  type ValidationResult,
  validateBatch,
  validatePool,
} from '../validation/index.js';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  namespace?: string;
  name?: string;
  object?: KubeObject;
  oldObject?: KubeObject;
  dryRun?: boolean;
}

interface KubeObject {
  metadata?: { namespace?: string; deletionTimestamp?: string };
  spec?: unknown;
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  warnings?: string[];
}

/** Builds the lookups for one namespace (the server passes the request's namespace). */
export type ContextFactory = (namespace: string) => ValidationContext;

// The apiserver truncates long warnings; keep each one readable in kubectl's output.
const MAX_WARNING = 256;

export async function review(body: unknown, contextFor: ContextFactory): Promise<AdmissionReview> {
  const req = (body as AdmissionReview | undefined)?.request;
  if (!req?.uid) throw new BadReview('body is not an AdmissionReview v1 with a request.uid');
  const response = await respond(req, contextFor);
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export class BadReview extends Error {}

async function respond(req: AdmissionRequest, contextFor: ContextFactory): Promise<AdmissionResponse> {
  const allow: AdmissionResponse = { uid: req.uid, allowed: true };
  if (req.kind.group !== GROUP) return allow;
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return allow;
  // Updates that leave the spec alone (metadata: labels, finalizers; deletion in progress) are
  // always allowed: refusing them because a referenced object vanished would make the batch
  // impossible to delete. Spec changes are re-validated.
  if (req.operation === 'UPDATE') {
    if (req.object?.metadata?.deletionTimestamp) return allow;
    if (isDeepStrictEqual(req.object?.spec, req.oldObject?.spec)) return allow;
  }
  const ctx = contextFor(req.namespace ?? req.object?.metadata?.namespace ?? 'default');
  let result: ValidationResult;
  switch (req.kind.kind) {
    case 'CJBatch':
      result = await validateBatch(req.object, ctx);
      break;
    case 'LLMProviderPool':
      result = await validatePool(req.object, ctx);
      break;
    default:
      return allow;
  }
  const warnings = result.warnings.map((w) =>
    w.length > MAX_WARNING ? `${w.slice(0, MAX_WARNING - 3)}...` : w,
  );
  if (result.errors.length > 0) {
    return {
      uid: req.uid,
      allowed: false,
      status: { code: 422, reason: 'Invalid', message: formatErrors(result.errors) },
      ...(warnings.length ? { warnings } : {}),
    };
  }
  return { ...allow, ...(warnings.length ? { warnings } : {}) };
}
