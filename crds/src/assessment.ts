import { z } from 'zod';
import { cel, conditions, duration, type ObjectMeta, timestamp } from './common.ts';
import { type API_VERSION, HOST_KEY_LENGTH, HOST_KEY_PATTERN, MAX_ASSESSMENT_NAME } from './names.ts';
import { assessmentSignals } from './signals.ts';
import { SANDBOX_KINDS } from './template.ts';

/** Hibernated: past the deadline with onExpiry Hibernate, sandboxes stopped, volumes kept (issue 17). */
export const PHASES = [
  'Pending',
  'Provisioning',
  'Ready',
  'Hibernated',
  'Expired',
  'Failed',
  'Terminating',
] as const;
export type Phase = (typeof PHASES)[number];

/** Longest assessment any template may allow; a guard against typos such as 400h. */
export const MAX_DURATION = '168h';

export const assessmentSpec = z
  .object({
    templateRef: cel(
      z
        .object({
          name: z.string().min(1).max(253).describe('Name of an AssessmentTemplate in the same namespace.'),
        })
        .describe('The template this assessment is made from. Immutable.'),
      {
        rule: 'self == oldSelf',
        message: 'templateRef is immutable: create a new Assessment to use another template',
      },
    ),
    candidate: z
      .object({
        name: z.string().min(1).max(200).describe('Full name of the candidate, as shown to staff.'),
        email: cel(z.string().min(3).max(254).describe('Email address of the candidate.'), {
          rule: "self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')",
          message: 'must be an email address such as jane@example.com',
        }),
      })
      .describe('Who takes the assessment.'),
    duration: cel(
      duration()
        .optional()
        .describe('Time box of this assessment, overriding the template; at most the template maxDuration.'),
      {
        rule: `duration(self) <= duration('${MAX_DURATION}')`,
        message: `must be at most ${MAX_DURATION}`,
      },
    ),
    startPolicy: z
      .enum(['Immediate', 'OnFirstAccess'])
      .default('Immediate')
      .describe(
        'When the clock starts: Immediate, or OnFirstAccess when the candidate first opens the link.',
      ),
    revoked: z
      .boolean()
      .optional()
      .describe('Set to true to end the assessment now: access is revoked and the namespace is deleted.'),
  })
  .describe('Desired state of one candidate assessment.');

export const sandboxStatus = z
  .object({
    name: z.string().max(30).describe('Sandbox name, from the template.'),
    kind: z.enum(SANDBOX_KINDS).describe('Sandbox kind: postgres, mongo or dataApi.'),
    ready: z.boolean().describe('Whether the sandbox is up and seeded.'),
    host: z.string().max(253).optional().describe('Host name of the sandbox inside the cluster.'),
    port: z.number().int().min(1).max(65535).optional().describe('Port the sandbox listens on.'),
    secretName: z
      .string()
      .max(253)
      .optional()
      .describe('Secret in the candidate namespace with its credentials.'),
    message: z.string().max(1024).optional().describe('Why the sandbox is not ready, when it is not.'),
  })
  .describe('Observed state of one sandbox.');

/** When each provisioning step first completed: where the time to Ready goes. */
export const provisioningTimes = z
  .object({
    appliedAt: timestamp()
      .optional()
      .describe('When the candidate namespace and every object in it were first applied.'),
    sandboxesReadyAt: timestamp()
      .optional()
      .describe('When every sandbox first passed its readiness probe (databases answering, data API up).'),
    seededAt: timestamp()
      .optional()
      .describe('When the seed Job completed, datasets and hidden variants loaded.'),
    graderReadyAt: timestamp().optional().describe('When the grader first became available.'),
  })
  .describe(
    'When each provisioning step first completed, to millisecond precision (seededAt: the Job completionTime). Each is set once.',
  );

export const assessmentStatus = z
  .object({
    phase: z.enum(PHASES).optional().describe('Where the assessment is in its life.'),
    namespace: z
      .string()
      .max(63)
      .optional()
      .describe(
        'Candidate namespace holding the sandboxes: the only source of where an assessment lives (a claimed pool namespace keeps its pool name).',
      ),
    pool: z
      .object({
        template: z.string().max(253).describe('The template whose warm pool the namespace came from.'),
        claimedAt: timestamp().describe('When the namespace was claimed.'),
      })
      .optional()
      .describe('Set when the namespace was claimed from a warm pool instead of provisioned cold.'),
    hostKey: z
      .string()
      .max(HOST_KEY_LENGTH)
      .regex(new RegExp(HOST_KEY_PATTERN))
      .optional()
      .describe(
        "Random part of the sandboxes' gateway host names (<sandbox>-<hostKey>.<domain>): drawn once by the operator and kept for the assessment's life, so nobody can derive a host name from the team and assessment names.",
      ),
    startedAt: timestamp().optional().describe('When the clock started.'),
    readyAt: timestamp().optional().describe('When every sandbox first became ready.'),
    provisioning: provisioningTimes.optional(),
    expiresAt: timestamp()
      .optional()
      .describe(
        'When the assessment ends and its namespace is deleted (or hibernated, see hibernatedUntil).',
      ),
    // ---- hibernation (issue 17) ----
    hibernatedUntil: timestamp()
      .optional()
      .describe(
        'Hibernated: when the stopped sandboxes and their volumes are deleted (the deadline plus the template hibernateFor).',
      ),
    reopenedUntil: timestamp()
      .optional()
      .describe('Hibernated and reopened by staff: when the sandboxes are stopped again.'),
    // ---- end hibernation ----
    sandboxes: z
      .array(sandboxStatus)
      .max(8)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe('Endpoints and readiness of each sandbox.'),
    conditions: conditions().optional(),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Generation the status was computed from.'),
    signals: assessmentSignals.optional(),
  })
  .describe('Observed state of the assessment, written by the operator (signals: by the gateway).');

/**
 * Rules on the whole object. Only metadata.name and generateName are visible to CEL here.
 * The name bound keeps `epreuve-<name>-<hash>` within the 63 characters of a DNS label.
 */
export const assessmentRootRules = [
  {
    rule: `size(self.metadata.name) <= ${MAX_ASSESSMENT_NAME}`,
    message: `metadata.name must be at most ${MAX_ASSESSMENT_NAME} characters, so that the candidate namespace epreuve-<name>-<hash> fits in 63`,
  },
  {
    rule: "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    message:
      'metadata.name must be a DNS label (lowercase letters, digits and -, no dots): it names the candidate namespace',
  },
];

export type AssessmentSpec = z.infer<typeof assessmentSpec>;
export type AssessmentSpecInput = z.input<typeof assessmentSpec>;
export type AssessmentStatus = z.infer<typeof assessmentStatus>;
export type SandboxStatus = z.infer<typeof sandboxStatus>;
export type ProvisioningTimes = z.infer<typeof provisioningTimes>;

export interface Assessment {
  apiVersion: typeof API_VERSION;
  kind: 'Assessment';
  metadata: ObjectMeta;
  spec: AssessmentSpec;
  status?: AssessmentStatus;
}
