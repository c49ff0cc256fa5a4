import { z } from 'zod';

/**
 * Building blocks shared by the CRD schemas. Every pattern here is RE2-compatible (the API server
 * evaluates them) and every string has a maxLength so CEL cost estimation passes.
 */

/** One CEL rule, as the API server reads it under `x-kubernetes-validations`. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attach CEL rules to a schema; the CRD generator copies them into the OpenAPI schema. */
export function cel<T extends z.ZodType>(schema: T, ...rules: CelRule[]): T {
  return schema.meta({ 'x-kubernetes-validations': rules }) as T;
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const dnsLabel = (max = 63) =>
  z.string().min(1).max(max).regex(DNS_LABEL, 'must be a DNS label: lowercase letters, digits and -');

/** A DNS name of lowercase labels, such as sandbox.example.com. */
export const DNS_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The sandbox gateway's domain (EPREUVE_GATEWAY_DOMAIN), read by the API (the hosts it gives
 * candidates) and by the gateway (the names it routes): sandboxes are served as `<label>.<name>`.
 */
export const dnsName = () => z.string().regex(DNS_NAME, 'must be a DNS name such as sandbox.example.com');

/** A time span written like Go's time.ParseDuration, limited to hours and minutes: 4h, 90m, 1h30m. */
export const DURATION = /^(?:[0-9]{1,3}h(?:[0-9]{1,4}m)?|[0-9]{1,4}m)$/;

export const duration = () =>
  z.string().max(16).regex(DURATION, 'must be a duration in hours and minutes such as 4h, 90m or 1h30m');

/** Parse a DURATION string into milliseconds. */
export function durationMs(value: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?$/.exec(value);
  if (!m || (!m[1] && !m[2])) throw new Error(`invalid duration "${value}"`);
  return (Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60_000;
}

/** A positive Kubernetes resource quantity (500m, 2, 4Gi). Checked by CEL's quantity library. */
export const quantity = () =>
  cel(z.string().min(1).max(32), {
    rule: "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
    message: 'must be a positive Kubernetes quantity such as 500m, 2 or 4Gi',
  });

/** RFC 3339 timestamp, as metav1.Time serialises. */
export const timestamp = () => z.string().max(64).meta({ format: 'date-time' });

/** metav1.Condition, field for field. */
export const condition = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/,
      )
      .describe('Type of condition in CamelCase, such as Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation the condition was set from.'),
    lastTransitionTime: timestamp().describe('Last time the condition changed from one status to another.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('Programmatic identifier, in CamelCase, of the reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable details about the last transition.'),
  })
  .describe('A condition in metav1.Condition form.');

export type Condition = z.infer<typeof condition>;

export const conditions = () =>
  z
    .array(condition)
    .max(16)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
    .describe('Latest observations of the object, one per condition type.');

/** The subset of metav1.ObjectMeta that Épreuve reads and writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }>;
}
