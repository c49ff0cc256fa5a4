import { z } from 'zod';
import {
  type Condition,
  cel,
  conditions,
  DURATION,
  dnsLabel,
  duration,
  durationMs,
  type ObjectMeta,
  quantity,
  timestamp,
} from './common.ts';
import { MAX_CHECK_HINT, MAX_CHECK_QUERY, MAX_CHECKS, MAX_HIDDEN_VARIANTS } from './contracts.ts';
import { type API_VERSION, MAX_POOLED_TEMPLATE_NAME } from './names.ts';

/** A dataset from the sandboxes catalogue, optionally pinned to a version: `retail` or `retail@1`. */
const datasetRef = () =>
  z
    .string()
    .max(64)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(@[0-9]{1,4})?$/, 'must be a dataset name, optionally @version')
    .describe('Dataset from the Épreuve catalogue, optionally pinned to a version: retail or retail@1.');

/**
 * The PostgreSQL majors a template may name: each one is tested for real (the npm binaries of
 * hack/tools/postgres.sh in test/integration/postgres-versions.test.ts, and one local image per
 * major in hack/images). The default is the newest: templates created earlier keep the version
 * the API server stored when it defaulted them.
 */
export const POSTGRES_VERSIONS = ['15', '16', '17', '18'] as const;
export const DEFAULT_POSTGRES_VERSION = '18';

export const postgresSandbox = z
  .object({
    version: z
      .enum(POSTGRES_VERSIONS)
      .default(DEFAULT_POSTGRES_VERSION)
      .describe('PostgreSQL major version.'),
    dataset: datasetRef(),
    storage: quantity().default('1Gi').describe('Size of the database volume.'),
  })
  .describe('A PostgreSQL server seeded with the dataset; the candidate gets their own role.');

export const mongoSandbox = z
  .object({
    version: z.enum(['6.0', '7.0']).default('7.0').describe('MongoDB major version.'),
    dataset: datasetRef(),
    storage: quantity().default('1Gi').describe('Size of the database volume.'),
  })
  .describe('A MongoDB server seeded with the dataset and its versioned migrations.');

export const dataApiSandbox = z
  .object({
    dataset: datasetRef(),
    pageSize: z.number().int().min(1).max(1000).default(100).describe('Default page size of list endpoints.'),
    rateLimitPerMinute: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(120)
      .describe('Requests per minute before the API answers 429 with Retry-After.'),
    faultRate: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe('Share of requests (0 to 0.5) that fail with a 5xx, answer slowly or return malformed rows.'),
  })
  .describe(
    'An HTTP API serving the dataset, for collection exercises: API key, pagination, rate limits, faults.',
  );

export const SANDBOX_KINDS = ['postgres', 'mongo', 'dataApi'] as const;
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

export const sandbox = cel(
  z
    .object({
      name: dnsLabel(30).describe(
        'Name of the sandbox, unique in the template; names its Service in the candidate namespace.',
      ),
      postgres: postgresSandbox.optional(),
      mongo: mongoSandbox.optional(),
      dataApi: dataApiSandbox.optional(),
    })
    .describe('One sandbox the candidate works on. Set exactly one of postgres, mongo or dataApi.'),
  {
    rule: '[has(self.postgres), has(self.mongo), has(self.dataApi)].filter(x, x).size() == 1',
    message: 'a sandbox must set exactly one kind: postgres, mongo or dataApi',
  },
);

export const sqlResultGrader = z
  .object({
    reference: z
      .string()
      .max(20000)
      .optional()
      .describe(
        'Reference SQL; its result is what the answer must return. Defaults to the exercise reference.',
      ),
    orderMatters: z
      .boolean()
      .default(false)
      .describe('Whether rows must come in the same order as the reference.'),
    numericTolerance: z
      .number()
      .min(0)
      .default(0)
      .describe('Largest absolute difference accepted between numbers.'),
    ignoreColumnNames: z.boolean().default(false).describe('Compare columns by position only, not by name.'),
  })
  .describe(
    'Grade by running the answer in the candidate sandbox and comparing its rows with the reference.',
  );

export const mongoResultGrader = z
  .object({
    collection: z.string().max(120).optional().describe('Collection the pipeline runs on.'),
    reference: z
      .string()
      .max(20000)
      .optional()
      .describe('Reference aggregation pipeline as JSON. Defaults to the exercise reference.'),
    orderMatters: z.boolean().default(false).describe('Whether documents must come in the same order.'),
    numericTolerance: z
      .number()
      .min(0)
      .default(0)
      .describe('Largest absolute difference accepted between numbers.'),
  })
  .describe('Grade an aggregation pipeline by comparing its documents with the reference.');

export const checkExpectation = cel(
  z
    .object({
      noRows: z
        .boolean()
        .optional()
        .describe('The check passes when the query returns no rows (it lists what is wrong).'),
      someRows: z.boolean().optional().describe('The check passes when the query returns at least one row.'),
      rows: z
        .array(
          z
            .array(z.string().max(200).describe('One cell, as text.'))
            .max(20)
            .describe('One row: its cells in column order.'),
        )
        .max(100)
        .optional()
        .describe(
          'The check passes when the query returns exactly these rows (any order), each cell written as text; NULL for a null.',
        ),
      sameAsSource: z
        .string()
        .max(MAX_CHECK_QUERY)
        .optional()
        .describe(
          "A query run on a grader-only copy of what the task's data API serves (same schema and names as the dataset, e.g. retail.customers); the check passes when its result equals this one's (any order, columns by position).",
        ),
    })
    .describe('What the check query must return. Set exactly one of noRows, someRows, rows or sameAsSource.')
    // The same rule as the CEL one below, for callers that validate with zod (tests, tools).
    .superRefine((e, ctx) => {
      const set = [
        e.noRows === true,
        e.someRows === true,
        e.rows !== undefined,
        e.sameAsSource !== undefined,
      ];
      if (set.filter(Boolean).length !== 1)
        ctx.addIssue({
          code: 'custom',
          message: 'expect must set exactly one of noRows: true, someRows: true, rows or sameAsSource',
        });
    }),
  {
    rule: '[has(self.noRows) && self.noRows, has(self.someRows) && self.someRows, has(self.rows), has(self.sameAsSource)].filter(x, x).size() == 1',
    message: 'expect must set exactly one of noRows: true, someRows: true, rows or sameAsSource',
  },
);

export const check = cel(
  z
    .object({
      name: dnsLabel(63).describe(
        'Name of the check, unique in the task, such as customers-complete; the candidate sees it when it fails.',
      ),
      description: z.string().max(1000).optional().describe('What the check verifies, for staff.'),
      sql: z
        .string()
        .min(1)
        .max(MAX_CHECK_QUERY)
        .optional()
        .describe(
          "For a postgres sandbox: one read-only query run by the grader on the candidate's database, where it reads their work schema (qualify names: work.customers). Same limits as an answer.",
        ),
      mongo: z
        .object({
          collection: z
            .string()
            .min(1)
            .max(120)
            .describe("Collection of the candidate's database the pipeline runs on, such as orders_clean."),
          pipeline: z
            .string()
            .min(2)
            .max(MAX_CHECK_QUERY)
            .describe(
              'Read-only aggregation pipeline as (Extended) JSON; the same stages as an answer may use.',
            ),
        })
        .optional()
        .describe(
          "For a mongo sandbox: a read-only pipeline run by the grader on a collection of the candidate's database. Each document is a row; its fields are the columns, in order.",
        ),
      expect: checkExpectation,
      hint: z
        .string()
        .min(1)
        .max(MAX_CHECK_HINT)
        .describe('Shown to the candidate when the check fails: what to look at, never an expected value.'),
    })
    .describe("One named check of the candidate's work area: an sql query or a mongo pipeline.")
    // The same rules as the CEL ones below, for callers that validate with zod (tests, tools).
    .superRefine((c, ctx) => {
      if ((c.sql === undefined) === (c.mongo === undefined))
        ctx.addIssue({ code: 'custom', message: 'a check must set exactly one of sql or mongo' });
      else if (c.mongo && c.expect.sameAsSource !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['expect', 'sameAsSource'],
          message:
            'sameAsSource compares with the data API source copy, which is SQL: a mongo check expects noRows, someRows or rows',
        });
    }),
  { rule: 'has(self.sql) != has(self.mongo)', message: 'a check must set exactly one of sql or mongo' },
  {
    rule: '!has(self.mongo) || !has(self.expect.sameAsSource)',
    message:
      'sameAsSource compares with the data API source copy, which is SQL: a mongo check expects noRows, someRows or rows',
    fieldPath: '.expect.sameAsSource',
  },
);

export const checksGrader = z
  .object({
    checks: z
      .array(check)
      .min(1)
      .max(MAX_CHECKS)
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe('The checks, run in order; the task passes when every one passes.')
      // The API server refuses duplicates through the list-map key; zod says the same.
      .superRefine((checks, ctx) => {
        const seen = new Set<string>();
        checks.forEach((c, i) => {
          if (seen.has(c.name))
            ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate check name "${c.name}"` });
          seen.add(c.name);
        });
      }),
  })
  .describe(
    "Grade a build task (collect, load, model): named checks run on the candidate's work schema. The candidate submits no answer text; each failing check is named with its hint.",
  );

export const grader = cel(
  z
    .object({
      sqlResult: sqlResultGrader.optional(),
      mongoResult: mongoResultGrader.optional(),
      check: checksGrader.optional(),
      manual: z
        .object({
          rubric: z.string().max(20000).optional().describe('What the reviewer looks for (Markdown).'),
        })
        .optional()
        .describe('Graded by a reviewer, not automatically.'),
    })
    .describe('How answers are graded. Set exactly one of sqlResult, mongoResult, check or manual.'),
  {
    rule: '[has(self.sqlResult), has(self.mongoResult), has(self.check), has(self.manual)].filter(x, x).size() == 1',
    message: 'a grader must set exactly one of sqlResult, mongoResult, check or manual',
  },
);

export const task = cel(
  z
    .object({
      id: dnsLabel(63).describe('Identifier of the task, unique in the template.'),
      sandbox: dnsLabel(30).describe('Name of the sandbox the answer runs against.'),
      exercise: dnsLabel(63)
        .optional()
        .describe('Exercise from the dataset catalogue; supplies the prompt, reference answer and grader.'),
      title: z.string().max(200).optional().describe('Short title shown to the candidate.'),
      prompt: z.string().max(20000).optional().describe('What the candidate must do, in Markdown.'),
      points: z.number().int().min(0).max(100).default(1).describe('Points the task is worth.'),
      grader: grader.optional(),
    })
    .describe('A graded task. Either name a catalogue exercise, or give a prompt and a grader.'),
  {
    rule: 'has(self.exercise) || (has(self.prompt) && has(self.grader))',
    message: 'a task needs either an exercise from the catalogue, or both a prompt and a grader',
  },
);

export const resources = z
  .object({
    cpu: quantity()
      .default('2')
      .describe('CPU for the whole candidate namespace (ResourceQuota limits.cpu).'),
    memory: quantity()
      .default('4Gi')
      .describe('Memory for the whole candidate namespace (ResourceQuota limits.memory).'),
    storage: quantity()
      .default('5Gi')
      .describe('Storage for the whole candidate namespace (ResourceQuota requests.storage).'),
  })
  .describe('Resources of the candidate namespace; they become its ResourceQuota and LimitRange.');

export const network = z
  .object({
    egress: z
      .enum(['none', 'dns-only'])
      .default('none')
      .describe('What sandboxes may reach outside their namespace: none, or DNS only.'),
  })
  .describe('Network isolation of the candidate namespace; ingress is always denied but from the platform.');

export const grading = z
  .object({
    hiddenVariants: z
      .number()
      .int()
      .min(0)
      .max(MAX_HIDDEN_VARIANTS)
      .default(2)
      .describe(
        "Hidden variants of each database sandbox's dataset (same schema, another seed, out of the candidate's reach) every auto-graded answer is re-checked on; an answer passes only if it matches the reference on each.",
      ),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(10)
      .describe('Answers a candidate may submit per task; the cap holds under concurrent submissions.'),
    maxSubmissions: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(200)
      .describe('Answers a candidate may submit in all, across tasks.'),
  })
  .describe('How answers are graded.');

// ---- warm pool (issue 16) — owned by the pool work; other edits to this file go elsewhere ----
/**
 * A warm pool is a block on the template, not an AssessmentPool kind: a pool serves exactly one
 * template and must follow its generation (members built from an older spec are replaced), it
 * goes with the template when that is deleted, and a platform team edits one object. Its status
 * sits in the template's status (`status.pool`), written by the pool controller alone.
 */
export const MAX_POOL_SIZE = 50;

export const POOL_DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const clock = z
  .string()
  .max(5)
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day as HH:MM, 00:00 to 23:59');

/**
 * One window of a pool's schedule: while it is open, its min (and max) replace the pool's, e.g.
 * office hours. A window whose `to` is earlier than its `from` runs past midnight into the next day.
 */
export const poolWindow = cel(
  z
    .object({
      days: z
        .array(z.enum(POOL_DAYS).describe('A day of the week.'))
        .min(1)
        .max(7)
        .describe('Days the window opens on (Mon … Sun), in timeZone.'),
      from: clock.describe('When the window opens, HH:MM in timeZone.'),
      to: clock.describe('When it closes, HH:MM in timeZone (earlier than from: the next day).'),
      min: z.number().int().min(0).max(MAX_POOL_SIZE).describe('The pool.min while the window is open.'),
      max: z
        .number()
        .int()
        .min(1)
        .max(MAX_POOL_SIZE)
        .optional()
        .describe("The pool.max while the window is open (the pool's own when absent)."),
    })
    .describe('A window of the pool schedule, such as office hours.'),
  { rule: 'self.from != self.to', message: 'a window must not open and close at the same time' },
  { rule: '!has(self.max) || self.min <= self.max', message: 'a window.min must not exceed its max' },
);

export const pool = cel(
  z
    .object({
      min: z
        .number()
        .int()
        .min(0)
        .max(MAX_POOL_SIZE)
        .describe('Namespaces kept provisioned and seeded, bound to nobody, for new assessments to claim.'),
      max: z
        .number()
        .int()
        .min(1)
        .max(MAX_POOL_SIZE)
        .optional()
        .describe(
          'Most unclaimed namespaces the pool may hold at once (building or ready). Without it, lowering min keeps the healthy members there are and only stops replacing them.',
        ),
      schedule: z
        .array(poolWindow)
        .max(14)
        .optional()
        .describe(
          'Windows (such as office hours) with a min and max of their own; outside every window the pool keeps min and max above. Where windows overlap, the first listed wins.',
        ),
      timeZone: z
        .string()
        .max(64)
        .regex(/^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$|^UTC$/, 'an IANA time zone name such as Europe/Paris')
        .optional()
        .describe(
          'IANA time zone of the schedule, such as Europe/Paris (daylight saving time followed); UTC when absent.',
        ),
    })
    .describe(
      'A warm pool: the operator keeps min namespaces of this template ready; a new Assessment claims one (credentials rotated at the claim) instead of waiting for a cold start.',
    ),
  { rule: '!has(self.max) || self.min <= self.max', message: 'pool.min must not exceed pool.max' },
);

export const poolStatus = z
  .object({
    desired: z
      .number()
      .int()
      .min(0)
      .describe("Members the pool aims to hold now (spec.pool.min, or the open schedule window's min)."),
    window: z
      .string()
      .max(64)
      .optional()
      .describe('The schedule window open now (days from–to), when one is.'),
    nextChange: timestamp()
      .optional()
      .describe("When the schedule next changes the pool's min or max, within a day."),
    ready: z.number().int().min(0).describe('Members provisioned, seeded and free to claim.'),
    building: z.number().int().min(0).describe('Members still being provisioned or seeded.'),
    claimed: z
      .number()
      .int()
      .min(0)
      .describe('Namespaces of this pool claimed by an Assessment and still present.'),
    failedBuilds: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Builds that failed in a row; the next build waits longer after each (capped).'),
    lastFailureTime: timestamp().optional().describe('When the last build failed.'),
    message: z.string().max(1024).optional().describe('Why the pool is short, when it is.'),
  })
  .describe('Observed state of the warm pool, written by the pool controller.');

/** Rules on the whole template: a pooled template's name is a label value on its pool's namespaces. */
export const templateRootRules = [
  {
    rule: `!has(self.spec.pool) || size(self.metadata.name) <= ${MAX_POOLED_TEMPLATE_NAME}`,
    message: `a template with a pool must have a name of at most ${MAX_POOLED_TEMPLATE_NAME} characters: it labels the pool's namespaces`,
  },
];

export type Pool = z.infer<typeof pool>;
export type PoolStatus = z.infer<typeof poolStatus>;
export type PoolWindow = z.infer<typeof poolWindow>;
// ---- end warm pool ----

// ---- hibernation (issue 17) ----
/** What happens to a candidate namespace when its assessment's time is up. Revoking always deletes. */
export const ON_EXPIRY = ['Delete', 'Hibernate'] as const;
export type OnExpiry = (typeof ON_EXPIRY)[number];
/** Longest a hibernated namespace is kept: volumes cost storage, and candidate data has a retention. */
export const MAX_HIBERNATE_FOR = '720h';
export const DEFAULT_HIBERNATE_FOR = '72h';
const HIBERNATE_FOR_WITHOUT_HIBERNATE = 'hibernateFor applies only with onExpiry: Hibernate';

export const hibernateFor = cel(
  duration()
    .refine((v) => !DURATION.test(v) || durationMs(v) <= durationMs(MAX_HIBERNATE_FOR), {
      message: `hibernateFor must be at most ${MAX_HIBERNATE_FOR} (30 days)`,
    })
    .optional()
    .describe(
      `With onExpiry Hibernate: how long the stopped sandboxes and their volumes are kept after the deadline before the namespace is deleted (default ${DEFAULT_HIBERNATE_FOR}, at most ${MAX_HIBERNATE_FOR}).`,
    ),
  {
    rule: `duration(self) <= duration('${MAX_HIBERNATE_FOR}')`,
    message: `hibernateFor must be at most ${MAX_HIBERNATE_FOR} (30 days)`,
  },
);
// ---- end hibernation ----

export const assessmentTemplateSpec = cel(
  z
    .object({
      title: z.string().min(1).max(200).describe('Title shown to candidates and staff.'),
      description: z
        .string()
        .max(20000)
        .optional()
        .describe('Introduction shown to the candidate, in Markdown.'),
      duration: duration().default('4h').describe('Default time box of an assessment, such as 4h or 90m.'),
      maxDuration: duration().default('8h').describe('Longest an assessment may run, extensions included.'),
      sandboxes: z
        .array(sandbox)
        .min(1)
        .max(8)
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .describe('Sandboxes provisioned for each candidate.'),
      tasks: z
        .array(task)
        .max(50)
        .optional()
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] })
        .describe('Tasks the candidate submits answers to.'),
      interviewGuide: dnsLabel(63).optional().describe('Question bank reviewers follow in the interview.'),
      resources: resources.default({ cpu: '2', memory: '4Gi', storage: '5Gi' }),
      network: network.default({ egress: 'none' }),
      grading: grading.default({ hiddenVariants: 2, maxAttempts: 10, maxSubmissions: 200 }),
      pool: pool.optional(), // warm pool (issue 16)
      onExpiry: z
        .enum(ON_EXPIRY)
        .default('Delete')
        .describe(
          'At the deadline: Delete the candidate namespace, or Hibernate it (sandboxes scaled to 0, volumes kept for hibernateFor, staff may reopen them read-only for the interview). Revoking always deletes.',
        ), // hibernation (issue 17)
      hibernateFor, // hibernation (issue 17)
    })
    .superRefine((spec, ctx) => {
      // Said by zod too, so a parse names the field as the API server's CEL rule does.
      if (spec.hibernateFor !== undefined && spec.onExpiry !== 'Hibernate')
        ctx.addIssue({ code: 'custom', path: ['hibernateFor'], message: HIBERNATE_FOR_WITHOUT_HIBERNATE });
    })
    .describe('What every assessment made from this template contains.'),
  {
    rule: 'duration(self.duration) <= duration(self.maxDuration)',
    message: 'duration must not exceed maxDuration',
    fieldPath: '.duration',
  },
  {
    rule: '!has(self.tasks) || self.tasks.all(t, self.sandboxes.exists(s, s.name == t.sandbox))',
    message: 'every task must name a sandbox of this template',
    fieldPath: '.tasks',
  },
  {
    rule: '!has(self.tasks) || self.tasks.all(t, !has(t.grader) || !has(t.grader.check) || self.sandboxes.exists(s, s.name == t.sandbox && (has(s.postgres) || has(s.mongo))))',
    message: 'a task with a check grader must name a postgres or mongo sandbox (checks run on its work area)',
    fieldPath: '.tasks',
  },
  {
    rule: '!has(self.tasks) || self.tasks.all(t, !has(t.grader) || !has(t.grader.check) || self.sandboxes.all(s, s.name != t.sandbox || (has(s.mongo) ? t.grader.check.checks.all(c, has(c.mongo)) : t.grader.check.checks.all(c, has(c.sql)))))',
    message:
      'the checks of a task must match its sandbox: sql checks on a postgres sandbox, mongo checks on a mongo sandbox',
    fieldPath: '.tasks',
  },
  {
    rule: "!has(self.hibernateFor) || self.onExpiry == 'Hibernate'",
    message: HIBERNATE_FOR_WITHOUT_HIBERNATE,
    fieldPath: '.hibernateFor',
  },
);

export const assessmentTemplateStatus = z
  .object({
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Generation the status was computed from.'),
    conditions: conditions().optional(),
    pool: poolStatus.optional(), // warm pool (issue 16)
  })
  .describe('Observed state of the template.');

export type AssessmentTemplateSpec = z.infer<typeof assessmentTemplateSpec>;
export type AssessmentTemplateSpecInput = z.input<typeof assessmentTemplateSpec>;
export type AssessmentTemplateStatus = z.infer<typeof assessmentTemplateStatus>;
export type Sandbox = z.infer<typeof sandbox>;
export type Task = z.infer<typeof task>;
export type Check = z.infer<typeof check>;

export interface AssessmentTemplate {
  apiVersion: typeof API_VERSION;
  kind: 'AssessmentTemplate';
  metadata: ObjectMeta;
  spec: AssessmentTemplateSpec;
  status?: AssessmentTemplateStatus & { conditions?: Condition[] };
}

/** The kind of a sandbox entry (the one kind field it sets). */
export function sandboxKind(s: Sandbox): SandboxKind {
  const kinds = SANDBOX_KINDS.filter((k) => s[k] !== undefined);
  if (kinds.length !== 1)
    throw new Error(`sandbox "${s.name}" must set exactly one kind, got ${kinds.length}`);
  return kinds[0]!;
}
