import { z } from 'zod';

/** Requests and limits of one sandbox container. */
const size = z.object({
  requests: z.object({ cpu: z.string(), memory: z.string() }),
  limits: z.object({ cpu: z.string(), memory: z.string() }),
});
export type Size = z.infer<typeof size>;

const DEFAULT_SIZES = {
  postgres: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  mongo: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  // The data API holds its whole dataset in memory: about 270 MiB resident while generating 'standard'.
  dataApi: { requests: { cpu: '50m', memory: '192Mi' }, limits: { cpu: '250m', memory: '384Mi' } },
  seeder: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
  // Above an answer's byte cap (5 MiB), a reference (20 MiB) and one MongoDB reply (up to 48 MiB).
  grader: { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '250m', memory: '192Mi' } },
  // FerretDB holding the hidden variants and reference results (small): on top of the template's resources.
  graderStore: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
};

/**
 * Scheduling of candidates' pods (a dedicated node pool): the Kubernetes fields, put as they are
 * on every sandbox pod. Shapes are checked here so a typo stops the operator with the variable
 * named; the values themselves (affinity terms) are the API server's to validate.
 */
const sandboxPlacement = z
  .object({
    nodeSelector: z.record(z.string(), z.string()).optional(),
    tolerations: z
      .array(
        z
          .object({
            key: z.string().optional(),
            operator: z.enum(['Exists', 'Equal']).optional(),
            value: z.string().optional(),
            effect: z.enum(['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
            tolerationSeconds: z.number().int().nullable().optional(),
          })
          .strict(),
      )
      .optional(),
    affinity: z
      .object({
        nodeAffinity: z.record(z.string(), z.unknown()).optional(),
        podAffinity: z.record(z.string(), z.unknown()).optional(),
        podAntiAffinity: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type SandboxPlacement = z.infer<typeof sandboxPlacement>;

const json = (example: string) =>
  z.string().transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON: ${example}` });
      return z.NEVER;
    }
  });

const sandboxAddress = z
  .string()
  .regex(/^[^:\s]+:(\d+|\{port\})$/, 'must be host:port ({service}, {namespace} and {port} are replaced)')
  .default('{service}.{namespace}.svc:{port}');

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/**
 * Operator configuration, from the environment (the Helm chart sets it). Every field is
 * validated up front; a bad value stops the operator with the variable named.
 */
export const operatorConfigSchema = z.object({
  EPREUVE_PLATFORM_NAMESPACE: z.string().min(1).default('epreuve-system'),
  /** The API's ServiceAccount, bound in each candidate namespace to read sandbox credentials. */
  EPREUVE_API_SERVICE_ACCOUNT: z
    .string()
    .regex(/^[a-z0-9-]+\/[a-z0-9-]+$/, 'must be namespace/name')
    .default('epreuve-system/epreuve-api'),
  /**
   * Where the operator reaches a claimed namespace's PostgreSQL and MongoDB to rotate credentials
   * (host:port; {service}, {namespace} and {port} are replaced). The Service's cluster DNS name by
   * default; an operator run outside the cluster (the integration tests) points them elsewhere.
   */
  EPREUVE_POOL_POSTGRES_ADDRESS: sandboxAddress,
  EPREUVE_POOL_MONGO_ADDRESS: sandboxAddress,
  /** The same for a data API's admin port (its new key is set through PUT /admin/api-key). */
  EPREUVE_POOL_DATA_API_ADDRESS: sandboxAddress,
  /** Pre-created ClusterRole (get Secrets) the operator binds — by name only, never escalating. */
  EPREUVE_SANDBOX_READER_CLUSTER_ROLE: z.string().min(1).default('epreuve-sandbox-reader'),
  /** `{version}` is replaced by the template's major version. */
  EPREUVE_IMAGE_POSTGRES: z.string().min(1).default('postgres:{version}'),
  EPREUVE_IMAGE_MONGO: z.string().min(1).default('mongo:{version}'),
  EPREUVE_IMAGE_DATA_API: z.string().min(1).default('ghcr.io/epreuve/data-api:0.1.0'),
  EPREUVE_IMAGE_SEEDER: z.string().min(1).default('ghcr.io/epreuve/seeder:0.1.0'),
  EPREUVE_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  EPREUVE_STORAGE_CLASS: z.string().optional(),
  /** Pod Security Standards version pinned on candidate namespaces. */
  EPREUVE_POD_SECURITY_VERSION: z
    .string()
    .regex(/^v1\.\d+$|^latest$/, 'must be v1.N or latest')
    .default('v1.36'),
  EPREUVE_SANDBOX_SIZES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return DEFAULT_SIZES;
      try {
        return { ...DEFAULT_SIZES, ...(JSON.parse(s) as object) };
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: 'must be JSON: {"postgres": {"requests": …, "limits": …}, …}',
        });
        return z.NEVER;
      }
    })
    .pipe(
      z.object({ postgres: size, mongo: size, dataApi: size, seeder: size, grader: size, graderStore: size }),
    ),
  /** Set by the chart from operator.sandboxPlacement; none: the scheduler's choice. */
  EPREUVE_SANDBOX_PLACEMENT: json('{"nodeSelector": {…}, "tolerations": […], "affinity": {…}}')
    .pipe(sandboxPlacement)
    .default({}),
  EPREUVE_WORKERS: z.coerce.number().int().min(1).max(64).default(4),
  EPREUVE_KUBE_QPS: z.coerce.number().positive().default(20),
  EPREUVE_KUBE_BURST: z.coerce.number().int().min(1).default(30),
  /** Set by the chart from sandboxes.mongo.allowRolelessUsers: passed to the seed Job (local clusters only). */
  EPREUVE_ALLOW_ROLELESS_USERS: bool.default(false),
  EPREUVE_LEADER_ELECT: bool.default(true),
  EPREUVE_LEADER_ELECTION_NAMESPACE: z.string().min(1).default('epreuve-system'),
  EPREUVE_LEADER_ELECTION_ID: z.string().min(1).default('epreuve-operator'),
  /** controller-runtime's LeaseDuration / RenewDeadline / RetryPeriod (15 s / 10 s / 2 s). */
  EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: z.coerce.number().positive().default(15),
  EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: z.coerce.number().positive().default(10),
  EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS: z.coerce.number().positive().default(2),
  /** Identity in the Lease; defaults to the pod name (HOSTNAME). */
  EPREUVE_POD_NAME: z.string().min(1).optional(),
  EPREUVE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  EPREUVE_RESYNC_SECONDS: z.coerce.number().int().min(0).default(600),
  EPREUVE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export type OperatorConfig = z.infer<typeof operatorConfigSchema>;

/** A standby waits leaseDuration; the leader must have given up (renewDeadline) well before. */
const leaseTimings = (c: OperatorConfig, ctx: z.RefinementCtx) => {
  const lease = c.EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS;
  const renew = c.EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS;
  const retry = c.EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS;
  if (!(lease > renew))
    ctx.addIssue({
      code: 'custom',
      path: ['EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS'],
      message: `must be less than EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS (${lease})`,
    });
  if (!(renew > 1.2 * retry))
    ctx.addIssue({
      code: 'custom',
      path: ['EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS'],
      message: `must be less than EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS / 1.2 (${renew} / 1.2)`,
    });
  if (lease !== Math.round(lease))
    ctx.addIssue({
      code: 'custom',
      path: ['EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS'],
      message: 'must be whole seconds (the Lease stores leaseDurationSeconds as an integer)',
    });
};

/** Parses the environment; throws an error that names every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): OperatorConfig {
  const relevant = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('EPREUVE_')));
  const res = operatorConfigSchema.superRefine(leaseTimings).safeParse(relevant);
  if (res.success) return res.data;
  const lines = res.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
  throw new Error(`invalid operator configuration:\n${lines.join('\n')}`);
}
