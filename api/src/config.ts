import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DATA_API_ADMIN_PORT, dnsName } from '@epreuve/crds';
import { z } from 'zod';

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** One automation key: only its SHA-256 is configured, never the key itself. */
const apiKey = z.object({
  name: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the key'),
  role: z.enum(['admin', 'recruiter', 'reviewer']),
  teams: z.array(z.string().min(1)).min(1),
});
export type ApiKeyEntry = z.infer<typeof apiKey>;

/**
 * API configuration from the environment (the Helm chart sets it). Validated at start: a bad
 * value stops the API with every offending variable named.
 */
export const apiConfigSchema = z.object({
  EPREUVE_API_HOST: z.string().default('0.0.0.0'),
  EPREUVE_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * `/metrics` (and `/healthz`, `/readyz`) on a port of its own, as the operator and the gateway
   * do: the public port never serves metrics (a 404), so only what reaches this port can scrape.
   */
  EPREUVE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  /** Base URL candidates and staff open; candidate links are built on it. */
  EPREUVE_PUBLIC_URL: z.url().default('http://localhost:8080'),
  /** OIDC for staff: issuer, audience and algorithms are pinned; keys come from the JWKS URL. */
  EPREUVE_OIDC_ISSUER: z.string().min(1).optional(),
  EPREUVE_OIDC_AUDIENCE: z.string().min(1).default('epreuve'),
  EPREUVE_OIDC_JWKS_URL: z.url().optional(),
  EPREUVE_OIDC_ALGORITHMS: list.default(['RS256', 'ES256']),
  EPREUVE_OIDC_ROLES_CLAIM: z.string().default('epreuve_roles'),
  EPREUVE_OIDC_TEAMS_CLAIM: z.string().default('epreuve_teams'),
  /** JSON list of {name, sha256, role, teams}, or a path to a file holding it (a mounted Secret). */
  EPREUVE_API_KEYS: z.string().optional(),
  EPREUVE_API_KEYS_FILE: z.string().optional(),
  /** Ed25519 private key (PKCS#8 PEM) signing candidate links; a file path (a mounted Secret). */
  EPREUVE_LINK_KEY_FILE: z.string().optional(),
  /**
   * Where a candidate namespace's grader answers; `{namespace}` is replaced. The in-cluster Service
   * by default; tests outside a cluster point it at a grader they run.
   */
  EPREUVE_GRADER_URL: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'must be an http(s) URL, with {namespace} where the namespace goes')
    .default('http://grader.{namespace}.svc:8080'),
  /** Longest a link to an assessment whose clock has not started stays valid. */
  EPREUVE_LINK_MAX_AGE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 90)
    .default(24 * 14),
  EPREUVE_CORS_ORIGINS: list.default([]),
  /** Where data API sandboxes serve /admin (the request log): the operator's DATA_API_ADMIN_PORT. */
  EPREUVE_DATA_API_ADMIN_PORT: z.coerce.number().int().min(1).max(65535).default(DATA_API_ADMIN_PORT),
  EPREUVE_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(300),
  EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE: z.coerce.number().int().positive().default(30),
  /**
   * Failed authentications (401/403) one client address may cause per minute; beyond, its requests
   * get 429 before any credential is looked at (guessing keys or links costs the guesser).
   */
  /** Active assessments a team may have at once, unless EPREUVE_TEAM_BUDGETS names the team. */
  EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM: z.coerce.number().int().positive().default(500),
  /** Per-team budgets, a JSON object: {"team-data": 50}. */
  EPREUVE_TEAM_BUDGETS: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        const parsed = z.record(z.string(), z.number().int().positive()).safeParse(JSON.parse(raw));
        if (parsed.success) return parsed.data;
        ctx.addIssue({ code: 'custom', message: 'must map team names to positive integers' });
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object such as {"team-data": 50}' });
      }
      return z.NEVER;
    }),
  EPREUVE_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().positive().default(20),
  /**
   * Proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated: the ingress
   * controller's pods). Empty: the peer address is the client, and X-Forwarded-For is ignored — a
   * caller could otherwise pick any address, and a fresh rate-limit bucket with it.
   */
  EPREUVE_TRUSTED_PROXIES: list
    .default([])
    .refine(
      (entries) => entries.every((entry) => isIP(entry.split('/')[0] ?? '') !== 0),
      'must be IP addresses or CIDRs, comma-separated',
    ),
  /** Load shedding: answer 503 + Retry-After while the event loop lags more than this. */
  EPREUVE_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().positive().default(1000),
  EPREUVE_LOAD_SAMPLE_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
  EPREUVE_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  EPREUVE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  /** The sandbox gateway candidates connect through (gateway/); unset: in-cluster addresses. */
  EPREUVE_GATEWAY_DOMAIN: dnsName().optional(),
  EPREUVE_GATEWAY_PUBLIC_PORT: z.coerce.number().int().min(1).max(65535).default(443),
  /**
   * The IP address candidates connect to when *.<domain> has no DNS record (a local cluster):
   * snippets then carry it (libpq hostaddr, curl --connect-to) and the name still selects the sandbox.
   */
  EPREUVE_GATEWAY_ADDRESS: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' }).optional(),
  /** The gateway's certificate is publicly trusted: snippets then verify it instead of only encrypting. */
  EPREUVE_GATEWAY_CERT_TRUSTED: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export type ApiConfig = z.infer<typeof apiConfigSchema> & { apiKeys: ApiKeyEntry[] };

export function loadApiConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const relevant = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('EPREUVE_')));
  const res = apiConfigSchema.safeParse(relevant);
  const problems = res.success ? [] : res.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  let apiKeys: ApiKeyEntry[] = [];
  if (res.success) {
    const c = res.data;
    if (c.EPREUVE_METRICS_PORT !== 0 && c.EPREUVE_METRICS_PORT === c.EPREUVE_API_PORT)
      problems.push(`  EPREUVE_METRICS_PORT: must differ from EPREUVE_API_PORT (${c.EPREUVE_API_PORT})`);
    if (c.EPREUVE_OIDC_ISSUER && !c.EPREUVE_OIDC_JWKS_URL)
      problems.push('  EPREUVE_OIDC_JWKS_URL: required when EPREUVE_OIDC_ISSUER is set');
    try {
      const raw =
        c.EPREUVE_API_KEYS ??
        (c.EPREUVE_API_KEYS_FILE ? readFileSync(c.EPREUVE_API_KEYS_FILE, 'utf8') : '[]');
      const parsed = z.array(apiKey).safeParse(JSON.parse(raw));
      if (parsed.success) apiKeys = parsed.data;
      else
        problems.push(
          ...parsed.error.issues.map((i) => `  EPREUVE_API_KEYS[${i.path.join('.')}]: ${i.message}`),
        );
    } catch (err) {
      problems.push(`  EPREUVE_API_KEYS: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new Error(`invalid API configuration:\n${problems.join('\n')}`);
  return { ...res.data!, apiKeys };
}
