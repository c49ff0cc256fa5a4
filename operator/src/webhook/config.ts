import { z } from 'zod';

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
});
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

/** Parses the environment; throws an error naming every bad variable. */
export function loadWebhookConfig(env: Record<string, string | undefined> = process.env): WebhookConfig {
  const relevant = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('EPREUVE_WEBHOOK')));
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
