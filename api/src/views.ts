/**
 * Every JSON shape the API answers with, in one place: a zod schema (the routes' response schemas,
 * hence the OpenAPI document and the serializer, which drops any field not declared here) and the
 * function that builds it from what the services return. No credential of staff, no grader
 * credential and no reference answer appears in a view meant for candidates.
 */
import {
  ANNOTATIONS,
  DATA_API_CREDENTIAL_KEYS as API_KEYS,
  assessmentTemplateSpec,
  DB_CREDENTIAL_KEYS as KEYS,
  PHASES,
  SANDBOX_KINDS,
} from '@epreuve/crds';
import { z } from 'zod';
import type { Guide } from './guides/index.ts';
import type { AssessmentObject, TemplateObject } from './services/assessments.ts';
import type { CandidateSession, CandidateTaskWithAttempts } from './services/candidates.ts';
import { snippets } from './services/connections.ts';
import type { SubmissionObject } from './services/grading.ts';
import { type InterviewScore, interviewScore, type Scores } from './services/interviews.ts';
import type { IssuedLink } from './services/links.ts';
import type { SandboxRequestLog } from './services/request-log.ts';
import type { Scorecard } from './services/scorecards.ts';

const timestamp = () => z.string().meta({ format: 'date-time' });

// ---------------------------------------------------------------------------------------------
// Staff: templates and assessments

export const TemplateSummaryView = z
  .object({
    name: z.string(),
    title: z.string(),
    duration: z.string(),
    maxDuration: z.string(),
    sandboxes: z.array(z.string()).describe('Sandbox names'),
    tasks: z.array(z.string()).describe('Task ids'),
    interviewGuide: z.string().nullable(),
  })
  .meta({ id: 'TemplateSummary' });
export const TemplateListView = z.object({ items: z.array(TemplateSummaryView) });

export const toTemplateSummaryView = (t: TemplateObject): z.output<typeof TemplateSummaryView> => ({
  name: t.metadata.name!,
  title: t.spec.title,
  duration: t.spec.duration,
  maxDuration: t.spec.maxDuration,
  sandboxes: t.spec.sandboxes.map((s) => s.name),
  tasks: (t.spec.tasks ?? []).map((x) => x.id),
  interviewGuide: t.spec.interviewGuide ?? null,
});

export const TemplateView = z
  .object({ name: z.string(), spec: assessmentTemplateSpec })
  .meta({ id: 'Template' })
  .describe('A template: its name and its whole spec, as stored.');

export const toTemplateView = (t: TemplateObject): z.output<typeof TemplateView> => ({
  name: t.metadata.name!,
  spec: t.spec,
});

/** What staff see of an assessment: no credentials, no internals. */
export const AssessmentView = z
  .object({
    name: z.string(),
    team: z.string(),
    template: z.string(),
    candidate: z.object({ name: z.string(), email: z.string() }),
    duration: z.string().nullable().describe('Its own time box; null: the template default'),
    startPolicy: z.enum(['Immediate', 'OnFirstAccess']),
    revoked: z.boolean(),
    phase: z.enum(PHASES),
    namespace: z.string().nullable().describe('The candidate namespace, once made'),
    createdAt: z.string(),
    startedAt: timestamp().nullable(),
    readyAt: timestamp().nullable(),
    expiresAt: timestamp().nullable(),
    hibernatedUntil: timestamp()
      .nullable()
      .describe('Hibernated: when the stopped sandboxes and their volumes are deleted (issue 17)'),
    reopenedUntil: timestamp().nullable().describe('Hibernated and reopened by staff: until when'),
    sandboxes: z.array(
      z.object({
        name: z.string(),
        kind: z.enum(SANDBOX_KINDS),
        ready: z.boolean(),
        host: z.string().nullable(),
        port: z.number().int().nullable(),
      }),
    ),
    conditions: z.array(
      z.object({
        type: z.string(),
        status: z.enum(['True', 'False', 'Unknown']),
        reason: z.string(),
        message: z.string(),
      }),
    ),
    linkIssued: z.boolean().describe('Whether a candidate link is current'),
  })
  .meta({ id: 'Assessment' });
export type AssessmentView = z.output<typeof AssessmentView>;

export function toAssessmentView(a: AssessmentObject): AssessmentView {
  const s = a.status ?? {};
  return {
    name: a.metadata.name!,
    team: a.metadata.namespace!,
    template: a.spec.templateRef.name,
    candidate: a.spec.candidate,
    duration: a.spec.duration ?? null,
    startPolicy: a.spec.startPolicy,
    revoked: a.spec.revoked ?? false,
    phase: s.phase ?? 'Pending',
    namespace: s.namespace ?? null,
    createdAt: String(a.metadata.creationTimestamp ?? ''),
    startedAt: s.startedAt ?? null,
    readyAt: s.readyAt ?? null,
    expiresAt: s.expiresAt ?? null,
    hibernatedUntil: s.hibernatedUntil ?? null,
    reopenedUntil: s.reopenedUntil ?? null,
    sandboxes: (s.sandboxes ?? []).map(({ name, kind, ready, host, port }) => ({
      name,
      kind,
      ready,
      host: host ?? null,
      port: port ?? null,
    })),
    conditions: (s.conditions ?? []).map(({ type, status, reason, message }) => ({
      type,
      status,
      reason,
      message,
    })),
    linkIssued: Boolean(a.metadata.annotations?.[ANNOTATIONS.linkId]),
  };
}

export const AssessmentPageView = z.object({
  items: z.array(AssessmentView),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
});

export const LinkView = z
  .object({
    url: z.string().describe('The candidate page, with the token in the URL fragment'),
    token: z.string(),
    expiresAt: timestamp(),
  })
  .meta({ id: 'CandidateLink' });

export const toLinkView = (l: IssuedLink): z.output<typeof LinkView> => ({
  url: l.url,
  token: l.token,
  expiresAt: l.expiresAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------
// Submissions

const submissionFields = {
  id: z.string(),
  task: z.string(),
  submittedAt: timestamp(),
  graded: z.boolean(),
  pass: z.boolean().nullable(),
  explanation: z.string().nullable(),
  points: z.number().int().nullable(),
};

/**
 * A submission as the candidate sees it, right after submitting: pass or fail and a hint, never
 * the reference's rows or values (which would let a listed answer be rebuilt by trial).
 */
export const SubmissionView = z
  .object({
    ...submissionFields,
    explanation: submissionFields.explanation.describe(
      'A hint: the kind of mistake, never a value of the reference',
    ),
  })
  .meta({ id: 'Submission' });
/** A submission as reviewers see it: with the answer and the full diff. */
const { id, task, ...gradeFields } = submissionFields;
export const ReviewedSubmissionView = z
  .object({ id, task, answer: z.string(), ...gradeFields })
  .meta({ id: 'ReviewedSubmission' });
export const SubmissionListView = z.object({ items: z.array(ReviewedSubmissionView) });

const gradeOf = (s: SubmissionObject, explanation: string | undefined) => ({
  id: s.metadata.name!,
  task: s.spec.task,
  submittedAt: s.spec.submittedAt,
  graded: s.status?.graded ?? false,
  pass: s.status?.pass ?? null,
  explanation: explanation ?? null,
  points: s.status?.points ?? null,
});

/**
 * The candidate's view: the hint (a manual task's note when there is no hint), in the page's
 * language where the grader said it in French too.
 */
export const toSubmissionView = (
  s: SubmissionObject,
  language: 'en' | 'fr' = 'en',
): z.output<typeof SubmissionView> =>
  gradeOf(
    s,
    (language === 'fr' ? s.status?.hintFr : undefined) ??
      s.status?.hint ??
      (s.status?.graded ? undefined : s.status?.explanation),
  );

export const toReviewedSubmissionView = (s: SubmissionObject): z.output<typeof ReviewedSubmissionView> => {
  const { id, task, ...rest } = gradeOf(s, s.status?.explanation);
  return { id, task, answer: s.spec.answer, ...rest };
};

// ---------------------------------------------------------------------------------------------
// Candidates

const CandidateTaskFields = {
  id: z.string(),
  sandbox: z.string(),
  points: z.number().int(),
  title: z.string(),
  answer: z
    .enum(['sql', 'pipeline', 'text', 'none'])
    .describe(
      'What the answer is: SQL, a JSON pipeline, text, or none (a check task: its checks run on your work)',
    ),
};
export const TaskView = z.object({
  ...CandidateTaskFields,
  prompt: z.string().describe('Markdown'),
  attempts: z
    .object({ used: z.number().int(), max: z.number().int() })
    .describe('Answers submitted to this task, and how many are allowed'),
});
export const TaskListView = z.object({
  tasks: z.array(TaskView),
  submissions: z
    .object({ used: z.number().int(), max: z.number().int() })
    .describe('Answers submitted to all tasks of the assessment, and how many are allowed in all'),
});

export const toTaskListView = (list: {
  tasks: CandidateTaskWithAttempts[];
  submissions: { used: number; max: number };
}): z.output<typeof TaskListView> => list;

export const SessionView = z
  .object({
    assessment: z.string(),
    candidate: z.string(),
    title: z.string(),
    description: z.string().nullable().describe('Markdown'),
    phase: z.enum(PHASES),
    startPolicy: z.enum(['Immediate', 'OnFirstAccess']),
    started: z.boolean(),
    expiresAt: timestamp().nullable(),
    timeLeftSeconds: z.number().int().nullable(),
    tasks: z
      .array(z.object(CandidateTaskFields))
      .describe('Titles only: the prompts come from /candidate/tasks'),
    sandboxes: z.array(
      z.object({
        name: z.string(),
        kind: z.enum(SANDBOX_KINDS),
        ready: z.boolean(),
        host: z.string(),
        port: z.number().int(),
        tls: z.enum(['none', 'trusted', 'private']),
        database: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        apiKey: z.string().optional().describe('The data API key (dataApi sandboxes)'),
        snippets: z
          .record(z.string(), z.string())
          .nullable()
          .describe('Ready-to-paste commands (psql, mongosh, curl, Python); null until credentials exist'),
      }),
    ),
  })
  .meta({ id: 'CandidateSession' });

/** Views of sessions already built: CandidateSessions returns the same object while nothing changed. */
const sessionViews = new WeakMap<CandidateSession, z.output<typeof SessionView>>();

/**
 * The session as the candidate reads it. Everything but the time left is a function of the session
 * object, so its view (snippets included) is built once per session object; the time left is
 * worked out on every call.
 */
export function toSessionView(s: CandidateSession, now = Date.now()): z.output<typeof SessionView> {
  let view = sessionViews.get(s);
  if (!view) {
    view = buildSessionView(s);
    sessionViews.set(s, view);
  }
  const left = s.expiresAt ? Math.floor((Date.parse(s.expiresAt) - now) / 1000) : Number.NaN;
  return { ...view, timeLeftSeconds: Number.isFinite(left) ? Math.max(0, left) : null };
}

function buildSessionView(s: CandidateSession): z.output<typeof SessionView> {
  const { assessment: a, template: t, expiresAt } = s;
  return {
    assessment: a.metadata.name!,
    candidate: a.spec.candidate.name,
    title: t?.spec.title ?? a.spec.templateRef.name,
    description: t?.spec.description ?? null,
    phase: a.status?.phase ?? 'Pending',
    startPolicy: a.spec.startPolicy,
    started: s.started,
    expiresAt,
    timeLeftSeconds: null, // per call (toSessionView)
    tasks: s.tasks.map(({ prompt: _prompt, ...task }) => task),
    sandboxes: s.sandboxes.map((sb) => {
      const creds = sb.credentials ?? {};
      const own =
        sb.kind === 'dataApi'
          ? { apiKey: creds[API_KEYS.apiKey] }
          : {
              database: creds[KEYS.database],
              username: creds[KEYS.username],
              password: creds[KEYS.password],
            };
      return {
        name: sb.name,
        kind: sb.kind,
        ready: sb.ready,
        host: sb.endpoint.host,
        port: sb.endpoint.port,
        tls: sb.endpoint.tls,
        ...own,
        snippets: sb.credentials ? snippets(sb.kind, sb.endpoint, creds) : null,
      };
    }),
  };
}

export const StartView = z.object({
  token: z.string().describe('The link token, now expiring with the assessment'),
  startedAt: timestamp(),
  expiresAt: timestamp(),
});

export const toStartView = (s: {
  token: string;
  startedAt: Date;
  expiresAt: Date;
}): z.output<typeof StartView> => ({
  token: s.token,
  startedAt: s.startedAt.toISOString(),
  expiresAt: s.expiresAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------
// Reviewers

export const InterviewScoreView = interviewScore.meta({ id: 'InterviewScore' });
export const ScoreView = z.object({ question: z.string(), ...interviewScore.shape });

export const toScoreView = (question: string, s: InterviewScore): z.output<typeof ScoreView> => ({
  question,
  ...s,
});

export const InterviewView = z.object({
  guide: z.object({ id: z.string(), title: z.string(), language: z.string(), scale: z.string().nullable() }),
  sections: z.array(
    z.object({
      title: z.string(),
      questions: z.array(
        z.object({
          id: z.string(),
          question: z.string(),
          topic: z.string().optional(),
          answer: z.string().describe('The reference answer (reviewers only)'),
          score: InterviewScoreView.nullable(),
        }),
      ),
    }),
  ),
  summary: z.object({
    questions: z.number().int(),
    scored: z.number().int(),
    average: z.number().nullable(),
  }),
});

export function toInterviewView(guide: Guide, scores: Scores): z.output<typeof InterviewView> {
  const ids = guide.sections.flatMap((s) => s.questions.map((q) => q.id));
  const scored = ids.filter((id) => scores[id]);
  return {
    guide: { id: guide.id, title: guide.title, language: guide.language, scale: guide.scale ?? null },
    sections: guide.sections.map((s) => ({
      title: s.title,
      questions: s.questions.map((q) => ({ ...q, score: scores[q.id] ?? null })),
    })),
    summary: {
      questions: ids.length,
      scored: scored.length,
      average: scored.length
        ? Math.round((scored.reduce((sum, id) => sum + scores[id]!.score, 0) / scored.length) * 100) / 100
        : null,
    },
  };
}

export const RequestLogView = z.object({
  sandboxes: z.array(
    z.object({
      sandbox: z.string(),
      available: z.boolean().describe('false: the data API did not answer (it may have ended)'),
      items: z
        .array(
          z
            .object({
              seq: z.number().int().optional(),
              time: timestamp().optional(),
              method: z.string().optional(),
              path: z.string().optional().describe('Secrets in the query are redacted'),
              status: z.number().int().optional(),
              duration_ms: z.number().optional(),
              auth: z.enum(['ok', 'missing', 'invalid']).nullable().optional(),
              fault: z.unknown().optional().describe('The fault the data API injected, if any'),
              client: z.string().optional(),
            })
            .loose(),
        )
        .describe("Entries as the data API's /admin/requests gives them, oldest first"),
    }),
  ),
});

export const toRequestLogView = (logs: SandboxRequestLog[]): z.output<typeof RequestLogView> => ({
  sandboxes: logs,
});

// ---------------------------------------------------------------------------------------------
// Probes

export const HealthView = z.object({ status: z.string() });

// ---------------------------------------------------------------------------------------------
// Errors

/** RFC 9457 problem details, as every error is answered (application/problem+json). */
export const ProblemView = z
  .object({
    type: z.string().describe('about:blank: the status and title say what happened'),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().describe('What went wrong, for people'),
    instance: z.string().describe('The path of the request'),
    invalid_params: z
      .array(
        z.object({
          name: z
            .string()
            .describe('Where the bad value is, such as body.candidate.email or querystring.cursor'),
          reason: z.string(),
        }),
      )
      .optional(),
  })
  .meta({ id: 'Problem' });

// ---------------------------------------------------------------------------------------------
// Scorecards

const points = z.object({ earned: z.number().int(), max: z.number().int() });

/** Integrity signals (services/signals.ts): for a reviewer to look at, never a verdict. */
const IntegritySignalsView = z
  .object({
    firstConnectionAt: z.string().nullable().describe('First logged-in connection through the gateway'),
    connections: z.number().int().describe('Logged-in connections through the gateway'),
    clientAddresses: z
      .array(z.string())
      .describe('The first 16 distinct client addresses the gateway saw; deleted with the assessment'),
    clientAddressCount: z.number().int().describe('Distinct client addresses, counted up to 64'),
    maxConcurrentSessions: z.number().int().describe('Most logged-in connections open at once'),
    sandboxes: z.array(z.object({ name: z.string(), connections: z.number().int() })),
    firstAnswerAt: z.string().nullable(),
    secondsToFirstAnswer: z
      .number()
      .int()
      .nullable()
      .describe('From the first connection to the first answer; null without both (or answer first)'),
    dataApi: z
      .object({
        available: z.boolean().describe('Whether every data API answered (its log ends with the sandbox)'),
        calls: z.number().int().describe("The candidate's authenticated calls"),
        firstCallAt: z.string().nullable(),
        lastCallAt: z.string().nullable(),
        errorResponses: z.number().int().describe('4xx/5xx answers among the calls still in the log'),
      })
      .nullable()
      .describe(
        'Data API use, from the sandboxes: on a single scorecard asked with ?dataApi=true, while they run; null otherwise',
      ),
    flags: z
      .array(
        z.object({
          code: z.enum(['clientAddresses', 'concurrentSessions', 'firstAnswerAfter', 'dataApiCalls']),
          value: z.number().int(),
        }),
      )
      .describe('What the page shows as neutral flags (signals, not verdicts)'),
  })
  .meta({ id: 'IntegritySignals' });
export const ScorecardView = z
  .object({
    assessment: z.string(),
    candidate: z.string(),
    template: z.string(),
    phase: z.string(),
    tasks: z.array(
      z.object({
        id: z.string(),
        kind: z.enum(['auto', 'manual']),
        max: z.number().int(),
        earned: z.number().int().describe('Best points over the attempts'),
        attempts: z.number().int(),
        toReview: z.boolean().describe('A manual answer no reviewer has graded yet'),
      }),
    ),
    auto: points,
    manual: points.extend({ toReview: z.number().int() }),
    interview: points.extend({ scored: z.number().int().describe('Questions scored, 0–4 each') }),
    total: points,
    timeUsedSeconds: z.number().int().nullable(),
    startedAt: z.string().nullable(),
    expiresAt: z.string().nullable().describe('When the clock stops; null until it starts'),
    revoked: z.boolean(),
    signals: IntegritySignalsView,
  })
  .meta({ id: 'Scorecard' });

const party = z.object({ assessment: z.string(), candidate: z.string() });
export const SimilarityView = z
  .object({
    threshold: z.number().describe('Pairs at or above this share of common fingerprints are listed'),
    pairs: z.array(
      z.object({
        template: z.string(),
        task: z.string(),
        a: party,
        b: party,
        similarity: z.number().min(0).max(1),
      }),
    ),
  })
  .meta({ id: 'Similarity' });

export const ScorecardListView = z.object({ items: z.array(ScorecardView) }).meta({ id: 'ScorecardList' });

export const toScorecardView = (c: Scorecard): z.output<typeof ScorecardView> => c;
