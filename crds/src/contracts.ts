import { z } from 'zod';

/**
 * Contracts between processes, typed once. The operator writes these objects; the seeder, the
 * API and the gateway read them. Changing a key here changes it for every process, and the
 * compiler finds each reader.
 */

/** The Secret holding a sandbox's credentials, in the candidate namespace. */
export const credentialsSecretName = (sandbox: string) => `${sandbox}-credentials`;

/** Keys of a database sandbox's (PostgreSQL, MongoDB) credentials Secret. */
export const DB_CREDENTIAL_KEYS = {
  /** The database the candidate connects to. */
  database: 'database',
  /** The candidate's own user. */
  username: 'username',
  password: 'password',
  /** The server's superuser, used by the seeder only. */
  adminUsername: 'admin-username',
  adminPassword: 'admin-password',
  /** The grader's user: reads every schema, writes none of the graded data. */
  graderUsername: 'grader-username',
  graderPassword: 'grader-password',
} as const;

/** Keys of a data API sandbox's credentials Secret. */
export const DATA_API_CREDENTIAL_KEYS = {
  /** The candidate's key (`Authorization: Bearer …`). */
  apiKey: 'api-key',
  /** The admin switch (fault injection, request log) key. */
  adminKey: 'admin-key',
} as const;

const secretValue = z.string().min(1);

/** A database sandbox's credentials, as read back from the Secret (values decoded). */
export const dbCredentials = z.object({
  [DB_CREDENTIAL_KEYS.database]: secretValue,
  [DB_CREDENTIAL_KEYS.username]: secretValue,
  [DB_CREDENTIAL_KEYS.password]: secretValue,
  [DB_CREDENTIAL_KEYS.adminUsername]: secretValue,
  [DB_CREDENTIAL_KEYS.adminPassword]: secretValue,
  [DB_CREDENTIAL_KEYS.graderUsername]: secretValue,
  [DB_CREDENTIAL_KEYS.graderPassword]: secretValue,
});
export type DbCredentials = z.infer<typeof dbCredentials>;

/** A data API sandbox's credentials, as read back from the Secret (values decoded). */
export const dataApiCredentials = z.object({
  [DATA_API_CREDENTIAL_KEYS.apiKey]: secretValue,
  [DATA_API_CREDENTIAL_KEYS.adminKey]: secretValue,
});
export type DataApiCredentials = z.infer<typeof dataApiCredentials>;

/** Decodes a Secret's `data` (base64) into strings; absent keys stay absent. */
export function decodeSecretData(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/** Where the seed Job mounts each sandbox's credentials Secret (one file per key). */
export const credentialsMountPath = (sandbox: string) => `/etc/epreuve/credentials/${sandbox}`;

/** The environment variable that carries the seed plan to the seed Job. */
export const SEED_PLAN_ENV = 'EPREUVE_SEED_PLAN';

/** The seed plan the operator hands the seed Job: one entry per database sandbox. */
export const seedPlanSchema = z
  .array(
    z.object({
      name: z.string().min(1),
      kind: z.enum(['postgres', 'mongo']),
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      dataset: z.string().min(1),
      /** Directory with the sandbox Secret's keys as files (`DB_CREDENTIAL_KEYS`). */
      credentials: z.string().min(1),
    }),
  )
  .min(1);
export type SeedPlan = z.infer<typeof seedPlanSchema>;
export type SeedPlanEntry = SeedPlan[number];
