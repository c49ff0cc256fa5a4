/**
 * Configuration: the settings `buildApp` takes, their defaults, and `configFromEnv`, which reads
 * them (plus the listen address and log level) from the process environment for main.ts.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { resolveDataset } from '../datasets/catalog.ts';
import { ApiKey } from './api-key.ts';
import { MAX_LIMIT, type Parsed } from './pagination.ts';

export interface DataApiConfig {
  dataset: string;
  size: 'small' | 'standard';
  pageSize: number;
  rateLimitPerMinute: number;
  faultRate: number;
  faultSlowMaxMs: number;
  faultSeed: number;
  apiKey: string;
  /** Unset: the /admin endpoints answer 404. */
  adminKey: string | undefined;
  requestLogSize: number;
  /** Requests with a missing or wrong key per minute, for the whole sandbox; beyond, 429. */
  wrongKeysPerMinute: number;
}

export const DEFAULTS: Omit<DataApiConfig, 'apiKey' | 'faultSeed'> = {
  dataset: 'retail@1',
  size: 'standard',
  pageSize: 100,
  rateLimitPerMinute: 120,
  faultRate: 0,
  faultSlowMaxMs: 2000,
  adminKey: undefined,
  requestLogSize: 10_000,
  wrongKeysPerMinute: 60,
};

const intVar = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `must be an integer between ${min} and ${max}`)
    .transform(Number)
    .pipe(
      z.number().min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`),
    );

const envSchema = z.object({
  DATASET: z
    .string()
    .default(DEFAULTS.dataset)
    .superRefine((ref, ctx) => {
      try {
        resolveDataset(ref);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  DATASET_SIZE: z.enum(['small', 'standard'], { error: 'must be small or standard' }).default(DEFAULTS.size),
  PAGE_SIZE: intVar(1, MAX_LIMIT).default(DEFAULTS.pageSize),
  RATE_LIMIT_PER_MINUTE: intVar(1, 100_000).default(DEFAULTS.rateLimitPerMinute),
  FAULT_RATE: z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a number between 0 and 0.5')
    .transform(Number)
    .pipe(z.number().max(0.5, 'must be between 0 and 0.5'))
    .default(DEFAULTS.faultRate),
  FAULT_SLOW_MAX_MS: intVar(0, 60_000).default(DEFAULTS.faultSlowMaxMs),
  FAULT_SEED: intVar(0, 2 ** 32 - 1).optional(),
  // 22 characters: at least 128 bits of base64url (the operator generates 192-bit keys).
  API_KEY: z
    .string({ error: 'required (the key candidates send)' })
    .min(22, 'must be at least 22 characters (128 bits)'),
  ADMIN_KEY: z.string().min(22, 'must be at least 22 characters (128 bits)').optional(),
  WRONG_KEYS_PER_MINUTE: intVar(1, 100_000).default(DEFAULTS.wrongKeysPerMinute),
  REQUEST_LOG_SIZE: intVar(1, 1_000_000).default(DEFAULTS.requestLogSize),
  PORT: intVar(0, 65_535).default(8080),
  /** When set, /admin is served here only, not on PORT (the operator sets it; the gateway routes PORT). */
  ADMIN_PORT: intVar(0, 65_535).optional(),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export interface ProcessConfig extends DataApiConfig {
  /** API_KEY_FILE: the key is re-read from it while the process runs (api-key.ts). */
  apiKeyFile: string | undefined;
  port: number;
  adminPort: number | undefined;
  host: string;
  logLevel: string;
}

/** Reads the environment; an empty variable counts as unset. Errors name every bad variable. */
export function configFromEnv(env: Record<string, string | undefined>): Parsed<ProcessConfig> {
  const relevant: Record<string, string> = Object.fromEntries(
    Object.keys(envSchema.shape).flatMap((k) => (env[k] ? [[k, env[k]]] : [])),
  );
  // A mounted Secret's file instead of the variable: the key can then change without a restart.
  const apiKeyFile = env.API_KEY_FILE || undefined;
  if (apiKeyFile) {
    if (relevant.API_KEY) return { ok: false, reason: 'API_KEY_FILE: set API_KEY or API_KEY_FILE, not both' };
    try {
      relevant.API_KEY = ApiKey.readFile(apiKeyFile);
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }
  const res = envSchema.safeParse(relevant);
  if (!res.success) {
    return { ok: false, reason: res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  const e = res.data;
  return {
    ok: true,
    value: {
      dataset: e.DATASET,
      size: e.DATASET_SIZE,
      pageSize: e.PAGE_SIZE,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      faultRate: e.FAULT_RATE,
      faultSlowMaxMs: e.FAULT_SLOW_MAX_MS,
      faultSeed: e.FAULT_SEED ?? randomInt(2 ** 32 - 1),
      apiKey: e.API_KEY,
      apiKeyFile,
      adminKey: e.ADMIN_KEY,
      requestLogSize: e.REQUEST_LOG_SIZE,
      wrongKeysPerMinute: e.WRONG_KEYS_PER_MINUTE,
      port: e.PORT,
      adminPort: e.ADMIN_PORT,
      host: e.HOST,
      logLevel: e.LOG_LEVEL,
    },
  };
}
