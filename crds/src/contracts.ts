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
/**
 * The data API's admin port (ADMIN_PORT): the fault switch and the request log, for the API
 * only. The gateway routes a sandbox's status port (8080), never this one.
 */
export const DATA_API_ADMIN_PORT = 8081;

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

/** Most hidden variants a sandbox may have (each is a small copy of the dataset). */
export const MAX_HIDDEN_VARIANTS = 3;

/**
 * The database holding hidden variant `i` (1-based) of a sandbox's dataset: same schema and names,
 * another seed. Only the grader may connect to it; answers pass only if they match there too.
 */
export const hiddenVariantDatabase = (database: string, i: number) => `${database}_hidden_${i}`;

/**
 * The database holding a grader-only copy of what a template's data API serves (the collection
 * source): checks compare a candidate's load with it. Same schema and names as the dataset; the
 * candidate can neither connect to it nor reach it from their own database.
 */
export const collectionSourceDatabase = (database: string) => `${database}_source`;

/** The database of every database sandbox (its Secret's `database` key). */
export const SANDBOX_DATABASE = 'sandbox';

/**
 * A PostgreSQL sandbox's admin user (its Secret's `admin-username`): the user the postgres image's
 * preloaded data directories are made for (hack/images/postgres/preload.ts).
 */
export const POSTGRES_ADMIN_USER = 'postgres';

/**
 * The dataset variant a data API serves: not the warehouse's (0) nor a hidden one (1…), so a
 * collection cannot be faked from the warehouse (`INSERT … SELECT FROM retail`).
 */
export const DATA_API_VARIANT = 1000;

/** The environment variable that carries the seed plan to the seed Job. */
export const SEED_PLAN_ENV = 'EPREUVE_SEED_PLAN';

/** Where a database sandbox answers, and where its Secret's keys are mounted (one file per key). */
const databaseSandbox = z.object({
  name: z.string().min(1),
  kind: z.enum(['postgres', 'mongo']),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** Directory with the sandbox Secret's keys as files (`DB_CREDENTIAL_KEYS`). */
  credentials: z.string().min(1),
  /** Hidden variants of its dataset (`hiddenVariantDatabase`): loaded by the seeder, graded on by the grader. */
  hiddenVariants: z.number().int().min(0).max(MAX_HIDDEN_VARIANTS).optional(),
});

/**
 * The grader store: a MongoDB-protocol server of its own in the candidate namespace that only the
 * seed Job and the grader reach (NetworkPolicy; the gateway never routes it, the candidate has no
 * credential for it). It holds what must stay out of the candidate's reach when the sandbox server
 * enforces no roles (FerretDB): a MongoDB sandbox's hidden variants and its reference results,
 * computed by the seeder before the candidate can connect.
 */
export const GRADER_STORE = {
  /** StatefulSet and Service name. */
  name: 'grader-store',
  port: 27017,
  /** Its Secret: the store's only user (`DB_CREDENTIAL_KEYS.adminUsername`/`adminPassword`). */
  secretName: 'grader-store-credentials',
  /** Where the seed Job and the grader mount that Secret. */
  mountPath: '/etc/epreuve/grader-store',
  /** Reference results, one document per (sandbox database, collection, reference pipeline). */
  referencesDatabase: 'epreuve_references',
  referencesCollection: 'results',
} as const;

/**
 * The seeder's opt-in, for local clusters only, to create MongoDB users without roles on a server
 * that implements none (FerretDB 1.x): set from the chart's `sandboxes.mongo.allowRolelessUsers`.
 */
export const ALLOW_ROLELESS_USERS_ENV = 'EPREUVE_ALLOW_ROLELESS_USERS';

/** Where a MongoDB sandbox's grader store answers; `credentials` holds its Secret's keys as files. */
const graderStore = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  credentials: z.string().min(1),
});
export type GraderStoreLocation = z.infer<typeof graderStore>;

/**
 * A task graded on a MongoDB sandbox, as the template says it (the seeder resolves catalogue
 * exercises as the API does): its reference result is computed at seed time into the store.
 */
const referenceTask = z.object({
  task: z.string().min(1),
  exercise: z.string().min(1).optional(),
  reference: z.string().min(1).max(20_000).optional(),
  collection: z.string().min(1).max(120).optional(),
});

/**
 * What the template's data API serves, for a PostgreSQL sandbox whose collection the checks grade:
 * the seeder loads it into `collectionSourceDatabase` (grader-only).
 */
const collectionSource = z.object({
  dataset: z.string().min(1),
  size: z.enum(['small', 'standard']).default('standard'),
});

/** The seed plan the operator hands the seed Job: one entry per database sandbox. */
export const seedPlanSchema = z
  .array(
    databaseSandbox.extend({
      dataset: z.string().min(1),
      store: graderStore.optional(),
      references: z.array(referenceTask).max(50).optional(),
      collectionSource: collectionSource.optional(),
    }),
  )
  .min(1);
export type SeedPlan = z.infer<typeof seedPlanSchema>;
export type SeedPlanEntry = SeedPlan[number];

/**
 * The grader: one small service per candidate namespace that runs the candidate's answers next to
 * their databases (never in the shared API), under its own memory and CPU limits. The API calls
 * it with a bearer token from the grader Secret; only the API may reach it (NetworkPolicy).
 */
export const GRADER = {
  /** Deployment, Service and ServiceAccount name in the candidate namespace. */
  name: 'grader',
  port: 8080,
  /** The Secret holding the token the API presents. */
  secretName: 'grader-credentials',
  tokenKey: 'token',
  /** The environment variable that carries the grader plan (which sandboxes it grades on). */
  planEnv: 'EPREUVE_GRADER_PLAN',
  /** Where the grader reads its token and each sandbox's credentials (one file per key). */
  tokenMountPath: '/etc/epreuve/grader',
  /**
   * How long the caller waits for this reply, in ms (a request header). A grade or check that
   * could not finish inside it is refused before anything runs (429): one that ran past the
   * caller's wait would be withdrawn, and an answer whose run time depends on hidden data would
   * choose, for free, which attempts count.
   */
  waitHeader: 'x-epreuve-wait-ms',
} as const;

/** The grader plan: the database sandboxes it runs answers on (it reads only the grader's keys). */
export const graderPlanSchema = z.array(databaseSandbox.extend({ store: graderStore.optional() })).min(1);
export type GraderPlan = z.infer<typeof graderPlanSchema>;

/** Longest answer (and reference) the grader accepts, in characters. */
export const MAX_ANSWER_LENGTH = 20_000;

/** What the API asks the grader: run `answer` and `reference` on one sandbox and compare. */
export const gradeRequest = z.object({
  sandbox: z.string().min(1).max(63),
  kind: z.enum(['sql', 'mongo']),
  reference: z.string().min(1).max(MAX_ANSWER_LENGTH),
  /** For MongoDB: the collection both pipelines run on. */
  collection: z.string().min(1).max(120).optional(),
  options: z.object({
    orderMatters: z.boolean(),
    numericTolerance: z.number().min(0),
    ignoreColumnNames: z.boolean(),
  }),
  answer: z.string().max(MAX_ANSWER_LENGTH),
});
export type GradeRequest = z.infer<typeof gradeRequest>;

/** Most checks one task may have. */
export const MAX_CHECKS = 20;
/** Longest check query or `sameAsSource` query, in characters. */
export const MAX_CHECK_QUERY = 8000;
/** Longest hint of one check. */
export const MAX_CHECK_HINT = 300;

/** One check as the API hands it to the grader (the template's `grader.check.checks[]`). */
export const checkSpec = z.object({
  name: z.string().min(1).max(63),
  /** On a postgres sandbox. Exactly one of `sql` and `mongo` (the template's rule; the grader checks it too). */
  sql: z.string().min(1).max(MAX_CHECK_QUERY).optional(),
  /** On a mongo sandbox: a pipeline on one collection of the candidate's database. */
  mongo: z
    .object({ collection: z.string().min(1).max(120), pipeline: z.string().min(2).max(MAX_CHECK_QUERY) })
    .optional(),
  expect: z.object({
    noRows: z.boolean().optional(),
    someRows: z.boolean().optional(),
    rows: z
      .array(z.array(z.string().max(200)).max(20))
      .max(100)
      .optional(),
    sameAsSource: z.string().min(1).max(MAX_CHECK_QUERY).optional(),
  }),
  hint: z.string().min(1).max(MAX_CHECK_HINT),
});
export type CheckSpec = z.infer<typeof checkSpec>;

/** What the API asks the grader for a check task: run these checks on one sandbox's work area. */
export const checkRequest = z.object({
  sandbox: z.string().min(1).max(63),
  checks: z.array(checkSpec).min(1).max(MAX_CHECKS),
});
export type CheckRequest = z.infer<typeof checkRequest>;

/** Why an answer could not be run at all. */
export const ANSWER_ERRORS = [
  'TooLong',
  'Empty',
  'NotAQuery',
  'Timeout',
  'TooManyRows',
  'TooLarge',
  'Forbidden',
  'SqlError',
  'Unavailable',
] as const;

/**
 * The most characters of any text in a grader's reply (an explanation, a hint, a problem's detail),
 * and what the API stores of one. An answer's rows and database errors end up in them: unbounded,
 * one reply could outgrow what the API reads of a reply (8 MiB), which it takes for the grader
 * being unavailable — the attempt withdrawn, so an answer could probe hidden data for free.
 */
export const MAX_GRADE_TEXT = 4000;

/** `text` cut to `max` characters, an ellipsis last when cut (never half a surrogate pair). */
export function cutText(text: string, max = MAX_GRADE_TEXT): string {
  if (text.length <= max) return text;
  const end = max - 1;
  const code = text.charCodeAt(end - 1);
  return `${text.slice(0, code >= 0xd800 && code <= 0xdbff ? end - 1 : end)}…`;
}

/** The grader's answer: pass or fail, with an explanation for the candidate. */
export const gradeResponse = z.object({
  pass: z.boolean(),
  /** For staff: the full diff, expected and actual values included. */
  explanation: z.string(),
  /** For the candidate: the kind of mistake, never a value or row count of the reference. */
  hint: z.string(),
  /** The hint in French, for a candidate whose page speaks French (absent: only `hint`). */
  hintFr: z.string().optional(),
  error: z.enum(ANSWER_ERRORS).optional(),
  expectedRows: z.number().int(),
  actualRows: z.number().int(),
  /** For a check task: each check's verdict (the hint is the author's, the explanation staff's). */
  checks: z
    .array(
      z.object({
        name: z.string(),
        pass: z.boolean(),
        hint: z.string(),
        explanation: z.string(),
        error: z.enum(ANSWER_ERRORS).optional(),
      }),
    )
    .optional(),
});
export type GradeResponse = z.infer<typeof gradeResponse>;

// ---------------------------------------------------------------------------------------------
// The console (issue 17): a statement a candidate runs from their page, on their own sandbox, as
// their own database user (never the grader's), by the grader in their namespace under grading's
// limits. It may write where the candidate may (their `work` schema), never the graded data.

/** Most rows (documents) a console run returns: the rest is cut, and the reply says so (`truncated`). */
export const MAX_CONSOLE_ROWS = 1000;

/** What the API asks the grader to run: SQL on a PostgreSQL sandbox, or a pipeline on a MongoDB one. */
export const consoleRequest = z
  .strictObject({
    sandbox: z.string().min(1).max(63),
    /** One SQL statement (PostgreSQL sandbox). */
    query: z.string().max(MAX_ANSWER_LENGTH).optional(),
    /** An aggregation pipeline as (Extended) JSON (MongoDB sandbox), with the collection it runs on. */
    pipeline: z.string().max(MAX_ANSWER_LENGTH).optional(),
    collection: z.string().min(1).max(120).optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.query === undefined) === (r.pipeline === undefined))
      ctx.addIssue({ code: 'custom', path: ['query'], message: 'give either a query (SQL) or a pipeline' });
    if (r.pipeline !== undefined && !r.collection)
      ctx.addIssue({
        code: 'custom',
        path: ['collection'],
        message: 'a pipeline needs the collection it runs on',
      });
  });
export type ConsoleRequest = z.infer<typeof consoleRequest>;

/** A run's result: cells are JSON values (MongoDB values as relaxed Extended JSON). */
export const consoleResponse = z.object({
  columns: z.array(z.string()),
  rows: z.array(z.array(z.unknown())).max(MAX_CONSOLE_ROWS),
  /** Rows returned (at most MAX_CONSOLE_ROWS, then `truncated`), or rows a write changed. */
  rowCount: z.number().int().min(0),
  /** More rows than `rows` holds were there: the run was cut at the cap. */
  truncated: z.boolean(),
  /** PostgreSQL's command tag (SELECT, INSERT, CREATE TABLE…); `aggregate` for a pipeline. */
  command: z.string(),
  durationMs: z.number().min(0),
  /** PostgreSQL's notices and warnings while it ran (`no privileges were granted…`), the first few. */
  notices: z.array(z.string().max(1000)).max(10).optional(),
});
export type ConsoleResponse = z.infer<typeof consoleResponse>;

/**
 * Why a run failed, as the grader says it (in a 422 problem's extension members): the reason, and
 * for a PostgreSQL error with one, the 1-based character of the statement it points at.
 */
export const consoleFailure = z.object({
  reason: z.enum(ANSWER_ERRORS),
  /** The problem's detail in French (the grader's extension member). */
  detailFr: z.string().optional(),
  position: z.number().int().min(1).optional(),
});
export type ConsoleFailure = z.infer<typeof consoleFailure>;
