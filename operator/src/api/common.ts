// Building blocks shared by both kinds: strings with a meaning (durations, decimals, names),
// references, conditions, and the helper that attaches CEL rules to a schema.
//
// Conventions (Kubernetes API conventions, see docs/api.md):
// - no floats in spec: money is a decimal string ("3.00"), thresholds are integer basis points
//   (10000 = 1.0); durations are Go-style strings ("500ms", "30s", "1h30m") that CEL's
//   duration() parses too, so the CRD can compare them;
// - every string and list has a bound, which keeps the CEL cost estimate inside the apiserver's
//   budget and documents what is reasonable.
import { z } from 'zod';
import { DURATION_PATTERN } from '../../../contract/src/duration.js';

export const GROUP = 'cj.huleedu.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** One CEL rule as it appears under `x-kubernetes-validations` in the CRD. */
export interface CelRule {
  rule: string;
  messageExpression?: string;
  message?: string;
  /** Relative JSON path (from the schema node carrying the rule) of the field to blame. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  optionalOldSelf?: boolean;
}

/**
 * A CEL rule and its TypeScript twin. The CRD enforces `cel` at the apiserver; `check` runs the
 * same rule in the validation module so the CLI and the controller refuse the same objects with
 * the same message, even without an apiserver. `check` returns the message when the rule fails.
 */
export interface TwinRule<T> {
  cel: CelRule;
  /** Dotted path of the blamed field, relative to the schema node carrying the rule ('' = the node). */
  field: string;
  check: (value: T) => string | undefined;
  /** Transition rules (oldSelf) cannot be checked on one object; the webhook sees them via CEL. */
  transition?: boolean;
}

export const celMeta = (rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

/**
 * A Kubernetes quantity or a plain integer (x-kubernetes-int-or-string in the CRD), as in
 * `resources.requests.cpu: 1` or `"500m"`.
 */
export const quantity = (description: string) =>
  z
    .union([
      z.number().int().min(0),
      z
        .string()
        .max(64)
        .regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/),
    ])
    .describe(description);

/** Attaches twin rules to an object schema: CEL for the CRD, a refinement for zod. */
export function withRules<S extends z.ZodType>(schema: S, rules: TwinRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (r.transition) continue;
      const message = r.check(value);
      if (message !== undefined) {
        ctx.addIssue({ code: 'custom', message, path: r.field.split('.').filter(Boolean) });
      }
    }
  });
  return refined.meta(celMeta(rules.map((r) => r.cel))) as unknown as S;
}

export { DURATION_PATTERN, parseDuration } from '../../../contract/src/duration.js';
export const duration = (description: string) =>
  z.string().max(32).regex(new RegExp(DURATION_PATTERN)).describe(description);

/** Non-negative decimal string with at most 6 fractional digits: "3", "3.00", "0.375". */
export const DECIMAL_PATTERN = '^(0|[1-9][0-9]{0,8})(\\.[0-9]{1,6})?$';
export const decimal = (description: string) =>
  z.string().max(16).regex(new RegExp(DECIMAL_PATTERN)).describe(description);

/** A ratio in basis points: 0 = 0.0, 10000 = 1.0. */
export const basisPoints = (description: string, def: number) =>
  z.number().int().min(0).max(10_000).default(def).describe(`${description} In basis points (10000 = 1.0).`);

/** DNS-1123 subdomain: the names of Secrets, ConfigMaps and our own kinds. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const objectName = (description: string) =>
  z.string().min(1).max(253).regex(new RegExp(DNS_SUBDOMAIN_PATTERN)).describe(description);

/** A ConfigMap data key. */
export const CONFIGMAP_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
export const configMapKey = (description: string) =>
  z.string().min(1).max(253).regex(new RegExp(CONFIGMAP_KEY_PATTERN)).describe(description);

export const ConfigMapKeyRefSchema = z
  .object({
    name: objectName('Name of a ConfigMap in the same namespace.'),
    key: configMapKey('Key inside the ConfigMap whose value is used.'),
  })
  .describe('A key of a ConfigMap in the same namespace.');
export type ConfigMapKeyRef = z.infer<typeof ConfigMapKeyRefSchema>;

/** Essay/anchor identifiers: stable keys that appear in results and Kafka events. */
export const ID_PATTERN = '^[A-Za-z0-9]([-._A-Za-z0-9]*[A-Za-z0-9])?$';
export const identifier = (description: string) =>
  z.string().min(1).max(128).regex(new RegExp(ID_PATTERN)).describe(description);

export const time = (description: string) => z.iso.datetime({ offset: true }).describe(description);

export const counter = (description: string) => z.number().int().min(0).describe(description);

/** metav1.Condition, the shape `kubectl wait --for=condition=...`, kstatus and Argo CD read. */
export const ConditionSchema = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe('Type of condition in CamelCase, e.g. Ready or Succeeded.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The metadata.generation the condition was set for; older means the condition is stale.'),
    lastTransitionTime: time('Last time the condition changed from one status to another.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('Machine-readable CamelCase reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable message with details about the transition.'),
  })
  .describe('A condition in the standard metav1.Condition shape.');
export type Condition = z.infer<typeof ConditionSchema>;

export const conditions = (types: readonly string[]) =>
  z
    .array(ConditionSchema)
    .max(16)
    .optional()
    .describe(`Current state as standard conditions, one per type (${types.join(', ')}).`)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
