import { dnsName } from '@epreuve/crds';
import { z } from 'zod';

/** The sandbox gateway's configuration from the environment (the Helm chart sets it). */
export const gatewayConfigSchema = z
  .object({
    EPREUVE_GATEWAY_HOST: z.string().default('0.0.0.0'),
    EPREUVE_GATEWAY_PORT: z.coerce.number().int().min(0).max(65535).default(8443),
    /** Sandboxes are served as `<sandbox>-<host key>.<domain>`: the certificate must cover `*.<domain>`. */
    EPREUVE_GATEWAY_DOMAIN: dnsName(),
    EPREUVE_GATEWAY_TLS_CERT_FILE: z.string().min(1),
    EPREUVE_GATEWAY_TLS_KEY_FILE: z.string().min(1),
    /** Every connection the gateway holds, in any state. */
    EPREUVE_GATEWAY_MAX_CONNECTIONS: z.coerce.number().int().positive().default(4096),
    /** From one client address (a candidate behind a NAT shares theirs with colleagues). */
    EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT: z.coerce.number().int().positive().default(64),
    /** A candidate's own logged-in connections to one sandbox. */
    EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: z.coerce.number().int().positive().default(20),
    /** Connections to one sandbox still logging in, per client address (its own oldest makes room). */
    EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX: z.coerce.number().int().positive().default(5),
    /** Connections to one sandbox still logging in, all addresses together (the busiest makes room). */
    EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: z.coerce.number().int().positive().default(20),
    /** A database session may sit idle while the candidate thinks; cut it only after this long. */
    EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(1800),
    /** A connection the sandbox answered but that never logged in is closed after this long idle. */
    EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS: z.coerce.number().int().positive().default(30),
    /** Absolute: from accept until the database has answered the login. */
    EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(10),
    /** How often open connections are checked against their assessment (expiry, revocation). */
    EPREUVE_GATEWAY_RECHECK_MS: z.coerce.number().int().min(100).max(5000).default(1000),
    /** Unmatched psql cancels per client address and minute before its cancels are dropped unread. */
    EPREUVE_GATEWAY_MAX_CANCEL_MISSES_PER_MINUTE: z.coerce.number().int().min(1).max(1000).default(20),
    /** psql cancels, matching or not, per client address and minute (each forwarded one opens a connection). */
    EPREUVE_GATEWAY_MAX_CANCELS_PER_MINUTE: z.coerce.number().int().min(1).max(10_000).default(60),
    /** Integrity signals go to the Assessment's status at most once per assessment this often. */
    EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS: z.coerce.number().int().min(100).max(300_000).default(5000),
    EPREUVE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
    EPREUVE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  })
  .refine(
    (c) => c.EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX >= c.EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX,
    {
      path: ['EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX'],
      message:
        'must be at least EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX (one address alone may use its whole cap)',
    },
  );
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** Parses the environment; throws one message naming every bad variable. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = gatewayConfigSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid sandbox gateway configuration:\n${lines.join('\n')}`);
}
