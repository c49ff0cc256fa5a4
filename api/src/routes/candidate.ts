import { ANSWER_ERRORS, consoleRequest, consoleResponse } from '@epreuve/crds';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem, TITLES } from '../plugins/app/problem.ts';
import { ConsoleFailed } from '../services/console.ts';
import {
  ProblemView,
  SessionView,
  StartView,
  SubmissionView,
  TaskListView,
  toSessionView,
  toStartView,
  toSubmissionView,
  toTaskListView,
} from '../views.ts';
import { BODY_PROBLEMS, CANDIDATE, CANDIDATE_PROBLEMS, problems } from './schemas.ts';

// The snippets moved to services/connections.ts; test/integration/seeder-ferretdb-auth.test.ts
// still imports them from here.
export { candidateEndpoint, snippets } from '../services/connections.ts';

const candidateActor = (request: FastifyRequest) => {
  const a = request.candidate!.assessment;
  return {
    actor: `candidate:${a.metadata.namespace}/${a.metadata.name}`,
    requestId: request.id,
    client: request.ip,
  };
};
const candidateAudit = (request: FastifyRequest, action: string, target: Record<string, unknown> = {}) => {
  request.server.audit.record({ ...candidateActor(request), action, target, outcome: 'allowed' });
};

/**
 * The submission rate limit: per assessment, not per link — every link of one assessment (a
 * renewed one, a second one staff issued) shares one bucket, so more links buy no more grading.
 */
export function submissionRateLimit(perMinute: number) {
  return {
    max: perMinute,
    timeWindow: '1 minute',
    keyGenerator: (request: FastifyRequest) => {
      const a = request.candidate!.assessment.metadata;
      return `submissions:${a.uid ?? `${a.namespace}/${a.name}`}`;
    },
    errorResponseBuilder: (_request: FastifyRequest, ctx: { max: number; ttl: number }) =>
      new Problem(429, {
        en: `submission rate limit of ${ctx.max} answers per minute for this assessment reached; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
        fr: `limite de ${ctx.max} réponses par minute atteinte pour cette évaluation ; réessayez dans ${Math.ceil(ctx.ttl / 1000)} s`,
      }),
  };
}

/** Candidate routes: their session (tasks, time left, connection details), the clock, answers. */
export default async function candidateRoutes(app: FastifyInstance, opts: { writesPerMinute: number }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { candidates } = app;
  const query = z.object({ lang: z.enum(['en', 'fr']).default('en') });

  r.get(
    '/candidate/session',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Time left, tasks and connection details',
        security: CANDIDATE,
        querystring: query,
        response: {
          200: SessionView.describe('The session (Cache-Control: no-store)'),
          ...problems(CANDIDATE_PROBLEMS),
        },
      },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const { assessment, linkId } = request.candidate!;
      const session = await candidates.session(assessment, request.query.lang);
      const view = toSessionView(session);
      const handed = (view.sandboxes ?? []).filter((s) => s.password || s.apiKey).map((s) => s.name);
      if (handed.length > 0) {
        // Once per link and start: a page refresh hands nothing new.
        app.audit.credentialsHanded(
          { ...candidateActor(request), target: { sandboxes: handed } },
          `${assessment.metadata.uid}/${linkId}/${assessment.status?.startedAt ?? ''}`,
        );
      }
      return view;
    },
  );

  r.get(
    '/candidate/tasks',
    {
      schema: {
        tags: ['candidate'],
        summary: 'The tasks with their prompts (Markdown), once the clock runs',
        security: CANDIDATE,
        querystring: query,
        response: {
          200: TaskListView,
          ...problems([...CANDIDATE_PROBLEMS, 409], { 409: 'The clock has not started: press Start first' }),
        },
      },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      // Attempts change with every submission: revalidate.
      reply.header('cache-control', 'private, no-cache');
      return toTaskListView(
        await candidates.tasksWithAttempts(request.candidate!.assessment, request.query.lang),
      );
    },
  );

  r.post(
    '/candidate/start',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Start the clock (OnFirstAccess); returns a link that expires with the assessment',
        security: CANDIDATE,
        querystring: query,
        response: {
          200: StartView,
          ...problems([...CANDIDATE_PROBLEMS, 409], {
            409: 'The assessment started when it was created (Immediate), or its template is gone',
          }),
        },
      },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      const { assessment, linkId } = request.candidate!;
      const started = await candidates.start(assessment, linkId);
      candidateAudit(request, 'candidate.start');
      reply.header('cache-control', 'no-store');
      return toStartView(started);
    },
  );

  r.post(
    '/candidate/tasks/:task/submissions',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Submit an answer; it is graded against your own sandbox',
        description:
          'A check task (a build task graded by named checks on your work schema) takes no answer: send an empty body or an empty answer, and each failing check is named with a hint.',
        security: CANDIDATE,
        params: z.object({ task: z.string().min(1).max(63) }),
        body: z
          .object({
            answer: z
              .string()
              .max(20000)
              .default('')
              .describe('SQL, a JSON aggregation pipeline, or text; empty (or absent) for a check task'),
          })
          // Fastify hands a request without a body over as null: a check task needs none.
          .nullish(),
        response: {
          201: SubmissionView.describe('Recorded, and graded unless a reviewer grades it'),
          ...problems([...CANDIDATE_PROBLEMS, ...BODY_PROBLEMS, 404, 409, 500], {
            404: 'No such task in this assessment',
            409: 'The sandboxes are not ready yet, the clock has not started, or the assessment ended or was revoked (also while this answer was being graded: then it is not recorded)',
            500: 'The task cannot be graded as configured (no reference answer): tell the recruiter',
            503: 'Overloaded, or the sandbox could not run the grading now (Retry-After)',
          }),
        },
      },
      onRequest: app.requireCandidate(),
      config: { rateLimit: submissionRateLimit(opts.writesPerMinute) },
    },
    async (request, reply) => {
      const s = await candidates.submit(
        request.candidate!.assessment,
        request.params.task,
        request.body?.answer ?? '',
      );
      candidateAudit(request, 'candidate.submit', { task: request.params.task, pass: s.status?.pass });
      reply.code(201).header('cache-control', 'no-store');
      return toSubmissionView(s, request.pageLanguage());
    },
  );

  // -------------------------------------------------------------------------------------------
  // The console (issue 17): SQL or a pipeline run on the candidate's own sandbox, as the candidate,
  // by the grader in their namespace. Gated like submissions, rate-limited per assessment in a
  // bucket of its own, audited by count and outcome — never by the statement's text.
  r.post(
    '/candidate/console',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Run SQL or a pipeline on your sandbox, as you (nothing is graded)',
        description:
          'Runs one SQL statement on a PostgreSQL sandbox (`query`) or an aggregation pipeline on a MongoDB one (`pipeline` and `collection`) as your own database user, under the grading limits: a statement timeout, a byte cap, and at most 1000 rows (`truncated` says more were there). Writes to your `work` schema are kept; the graded data is read-only to you. Pipelines may only read.',
        security: CANDIDATE,
        body: consoleRequest,
        response: {
          200: consoleResponse.describe('The columns and rows, how many, and how long it took'),
          422: {
            description:
              'The statement failed (syntax, permission, timeout, size), or a sandbox of the other kind: `reason` says which, `position` the 1-based character PostgreSQL points at',
            content: { 'application/problem+json': { schema: ConsoleProblem } },
          },
          ...problems([...CANDIDATE_PROBLEMS, ...BODY_PROBLEMS, 404, 409, 500], {
            404: 'No such sandbox in this assessment',
            409: 'The sandboxes are not ready yet, the clock has not started, or the assessment ended or was revoked',
            500: 'The grader refused the run (tell the recruiter)',
            503: 'Overloaded, or the sandbox cannot run it now (Retry-After)',
          }),
        },
      },
      onRequest: app.requireCandidate(),
      config: { rateLimit: consoleRateLimit(opts.writesPerMinute) },
    },
    async (request, reply) => {
      const a = request.candidate!.assessment;
      const kind = request.body.query !== undefined ? 'sql' : 'mongo';
      const audit = (outcome: string, extra: Record<string, unknown> = {}) =>
        candidateAudit(request, 'candidate.console', {
          sandbox: request.body.sandbox,
          kind,
          result: outcome,
          runs: app.candidateConsole.count(a),
          ...extra,
        });
      reply.header('cache-control', 'no-store');
      try {
        const result = await app.candidateConsole.run(a, request.body, app.assessments.templateOf(a));
        audit('ok', { rows: result.rowCount, truncated: result.truncated, durationMs: result.durationMs });
        return result;
      } catch (err) {
        if (!(err instanceof ConsoleFailed)) throw err;
        audit(err.failure.reason);
        return reply
          .code(422)
          .type('application/problem+json')
          .send({
            type: 'about:blank',
            title: TITLES[422]!,
            status: 422,
            detail: err.localized?.[request.pageLanguage()] ?? err.message,
            instance: request.url.split('?')[0]!,
            ...err.failure,
          });
      }
    },
  );
}

/** A console failure: the problem, with why the statement failed and where. */
const ConsoleProblem = ProblemView.extend({
  reason: z
    .enum(ANSWER_ERRORS)
    .optional()
    .describe(
      'Why the statement failed: SqlError, Forbidden, Timeout, TooLarge, NotAQuery, Empty, TooLong (absent when the request itself is at fault: invalid_params says where)',
    ),
  position: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('The 1-based character of the statement the error points at'),
}).meta({ id: 'ConsoleProblem' });

/** Console runs per minute and assessment: a bucket of their own, apart from submissions. */
export function consoleRateLimit(perMinute: number) {
  return {
    max: perMinute,
    timeWindow: '1 minute',
    keyGenerator: (request: FastifyRequest) => {
      const a = request.candidate!.assessment.metadata;
      return `console:${a.uid ?? `${a.namespace}/${a.name}`}`;
    },
    errorResponseBuilder: (_request: FastifyRequest, ctx: { max: number; ttl: number }) =>
      new Problem(
        429,
        `console limit of ${ctx.max} runs per minute for this assessment reached; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      ),
  };
}
