import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { type RefusedRange, refusedRange } from './address-policy.ts';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** The webhook sender's settings (EPREUVE_WEBHOOK_*, set by the chart from `webhooks:`). */
export const webhookConfigSchema = z.object({
  EPREUVE_WEBHOOKS_ENABLED: bool.default(true),
  /** Deliveries kept per team in the log ConfigMap (about 1.5 KiB each; ConfigMaps hold 1 MiB). */
  EPREUVE_WEBHOOK_LOG_SIZE: z.coerce.number().int().min(1).max(500).default(100),
  EPREUVE_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(12),
  EPREUVE_WEBHOOK_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(10_000),
  EPREUVE_WEBHOOK_BACKOFF_CAP_MS: z.coerce.number().int().min(1).default(3_600_000),
  EPREUVE_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  EPREUVE_WEBHOOK_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
  /** How often a team with an endpoint is looked at for staff's redelivery requests. */
  EPREUVE_WEBHOOK_POLL_MS: z.coerce.number().int().min(100).default(10_000),
  /** Deliveries sent per team per pass, so one slow receiver cannot hold a worker for long. */
  EPREUVE_WEBHOOK_BATCH: z.coerce.number().int().min(1).max(100).default(10),
  EPREUVE_WEBHOOK_WORKERS: z.coerce.number().int().min(1).max(16).default(2),
  /** Attempts in flight at once, across every team (each team has at most one). */
  EPREUVE_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  /**
   * How long a team's pass waits for the attempts it started; slower ones finish in the
   * background and a later pass records them, so a slow receiver holds a worker this long at most.
   */
  EPREUVE_WEBHOOK_PASS_BUDGET_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  /** CIDRs or addresses no webhook may reach, even with a team's allowPrivateTargets (the control plane). */
  EPREUVE_WEBHOOK_REFUSED_CIDRS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: RefusedRange[] = [];
      for (const item of v.split(',').filter((x) => x.trim())) {
        try {
          out.push(
            refusedRange(item, `in ${item.trim()}, refused by the operator (EPREUVE_WEBHOOK_REFUSED_CIDRS)`),
          );
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }
      return out;
    }),
  /** Loopback as a private target (a team's allowance then reaches it): an operator outside a cluster only. */
  EPREUVE_WEBHOOK_ALLOW_LOOPBACK: bool.default(false),
  /**
   * The API server's Service address, which the kubelet gives every pod: refused always. A name
   * (some clusters set one) cannot be refused by address and is left to the refused CIDRs.
   */
  KUBERNETES_SERVICE_HOST: z
    .string()
    .optional()
    .transform((v) =>
      v && ipaddr.isValid(v.trim())
        ? refusedRange(v, "the Kubernetes API server's service address (KUBERNETES_SERVICE_HOST)")
        : undefined,
    ),
});
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

/** The addresses no team may reach, whatever its Secret says: the control plane. */
export const controlPlane = (c: WebhookConfig): RefusedRange[] => [
  ...(c.KUBERNETES_SERVICE_HOST ? [c.KUBERNETES_SERVICE_HOST] : []),
  ...c.EPREUVE_WEBHOOK_REFUSED_CIDRS,
];

/** Parses the environment; throws an error naming every bad variable. */
export function loadWebhookConfig(env: Record<string, string | undefined> = process.env): WebhookConfig {
  const relevant = Object.fromEntries(
    Object.entries(env).filter(([k]) => k.startsWith('EPREUVE_WEBHOOK') || k === 'KUBERNETES_SERVICE_HOST'),
  );
  const res = webhookConfigSchema.safeParse(relevant);
  if (res.success) {
    if (res.data.EPREUVE_WEBHOOK_BACKOFF_CAP_MS < res.data.EPREUVE_WEBHOOK_BACKOFF_BASE_MS)
      throw new Error(
        'invalid webhook configuration:\n  EPREUVE_WEBHOOK_BACKOFF_CAP_MS: must be at least EPREUVE_WEBHOOK_BACKOFF_BASE_MS',
      );
    return res.data;
  }
  const lines = res.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
  throw new Error(`invalid webhook configuration:\n${lines.join('\n')}`);
}
