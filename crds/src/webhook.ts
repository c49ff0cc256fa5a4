import { z } from 'zod';
import { GROUP } from './names.ts';

/**
 * Webhooks: the contracts between the operator (which sends them, as the single leader) and the
 * API (which shows staff the delivery log and asks for redeliveries). See docs/webhooks.md.
 */

/**
 * A team's endpoint: this Secret in the team namespace. Keys: `url`, `secret` (a Standard
 * Webhooks signing secret, `whsec_<base64>`), and optionally `allowPrivateTargets: "true"`.
 * A Secret because the signing secret is one; the operator may only `get` this one name.
 */
export const WEBHOOK_SECRET_NAME = 'epreuve-webhook';
export const WEBHOOK_SECRET_KEYS = {
  url: 'url',
  secret: 'secret',
  allowPrivateTargets: 'allowPrivateTargets',
} as const;

/**
 * The delivery log: this ConfigMap in the team namespace, written by the operator only, holding
 * the last N deliveries (EPREUVE_WEBHOOK_LOG_SIZE) as JSON under `deliveries.json`. The API asks
 * for a redelivery by merge-patching a key `redeliver.<event id>` into it (one key per request,
 * so concurrent requests never conflict); the operator resends and removes the key.
 */
export const WEBHOOK_LOG_CONFIGMAP = 'epreuve-webhook-deliveries';
export const WEBHOOK_LOG_KEY = 'deliveries.json';
export const WEBHOOK_REDELIVER_PREFIX = 'redeliver.';
/** On the log ConfigMap, so the operator's informer watches only these. */
export const WEBHOOK_LOG_LABEL = `${GROUP}/webhook-log`;

/**
 * On an Assessment or a Submission: the events already put in the delivery log (comma-separated),
 * so an event is sent once even after it has left the bounded log.
 */
export const WEBHOOK_SENT_ANNOTATION = `${GROUP}/webhook-sent`;

export const WEBHOOK_EVENTS = ['ready', 'started', 'submitted', 'graded', 'expired', 'revoked'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** CloudEvents `type` of each event: reverse-DNS, versioned so a payload change gets a new type. */
export const webhookEventType = (event: WebhookEvent) => `dev.epreuve.assessment.${event}.v1`;

/**
 * The CloudEvents `id`: the object's uid and the event, so it is the same on every retry and
 * redelivery (receivers drop duplicates by it) and never the same for two events. It is also a
 * valid ConfigMap key suffix.
 */
export const webhookEventId = (uid: string, event: WebhookEvent) => `${uid}.${event}`;

/** A CloudEvents 1.0 event in structured JSON mode, as sent (no secret, no token, no email). */
export const cloudEvent = z.object({
  specversion: z.literal('1.0'),
  id: z.string(),
  source: z.string().describe('/teams/<team namespace>'),
  type: z.string(),
  subject: z.string().describe('assessments/<name>, or assessments/<name>/submissions/<name>'),
  time: z.string(),
  datacontenttype: z.literal('application/json'),
  data: z.object({
    team: z.string(),
    assessment: z.string(),
    template: z.string(),
    submission: z.string().optional(),
    task: z.string().optional(),
    pass: z.boolean().optional(),
    points: z.number().optional(),
    expiresAt: z.string().optional(),
    /** An expired assessment whose work is kept for staff (onExpiry: Hibernate): deleted then. */
    hibernatedUntil: z.string().optional(),
  }),
});
export type CloudEvent = z.infer<typeof cloudEvent>;

export const deliveryAttempt = z.object({
  at: z.string(),
  /** HTTP status of the receiver's answer, when it answered. */
  status: z.number().int().optional(),
  /** Why the attempt failed without an answer (refused address, timeout, connection error). */
  error: z.string().max(300).optional(),
  ms: z.number().int(),
});

export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;

export const webhookDelivery = z.object({
  id: z.string(),
  type: z.string(),
  subject: z.string(),
  state: z.enum(DELIVERY_STATES),
  /** Attempts since the event was logged or last redelivered. */
  attempts: z.number().int(),
  nextAttemptAt: z.string().optional(),
  /** The last few attempts, newest last (bounded, see MAX_ATTEMPTS_KEPT). */
  history: z.array(deliveryAttempt),
  redeliveries: z.number().int(),
  event: cloudEvent,
});
export type WebhookDelivery = z.infer<typeof webhookDelivery>;
export type DeliveryAttempt = z.infer<typeof deliveryAttempt>;

/** Attempts kept per delivery in the log. */
export const MAX_ATTEMPTS_KEPT = 5;

/** Parses the log ConfigMap's JSON; a damaged log reads as empty rather than stopping delivery. */
export function parseDeliveryLog(text: string | undefined): WebhookDelivery[] {
  if (!text) return [];
  try {
    const res = z.array(webhookDelivery).safeParse(JSON.parse(text));
    return res.success ? res.data : [];
  } catch {
    return [];
  }
}
