import { dnsName } from '@epreuve/crds';
import { z } from 'zod';

/** The sandbox gateway's configuration from the environment (the Helm chart sets it). */
export const gatewayConfigSchema = z.object({
  EPREUVE_GATEWAY_HOST: z.string().default('0.0.0.0'),
  EPREUVE_GATEWAY_PORT: z.coerce.number().int().min(0).max(65535).default(8443),
  /** Sandboxes are served as `<sandbox>-<hash>.<domain>`: the certificate must cover `*.<domain>`. */
  EPREUVE_GATEWAY_DOMAIN: dnsName(),
  EPREUVE_GATEWAY_TLS_CERT_FILE: z.string().min(1),
  EPREUVE_GATEWAY_TLS_KEY_FILE: z.string().min(1),
  EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: z.coerce.number().int().positive().default(20),
  /** A database session may sit idle while the candidate thinks; cut it only after this long. */
  EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(1800),
  EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(10),
  EPREUVE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  EPREUVE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** Parses the environment; throws one message naming every bad variable. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = gatewayConfigSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid sandbox gateway configuration:\n${lines.join('\n')}`);
}
