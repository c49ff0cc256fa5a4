import {
  assessmentSpec,
  durationMs,
  duration as durationSchema,
  HIBERNATION,
  MAX_ASSESSMENT_NAME,
  PHASES,
} from '@epreuve/crds';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { traceparentOf } from '../plugins/app/observability.ts';
import { ReopenBody, ReopenView } from '../services/hibernation.ts';
import {
  AssessmentPageView,
  AssessmentView,
  LinkView,
  SubmissionListView,
  TemplateListView,
  TemplateView,
  toAssessmentView,
  toLinkView,
  toReviewedSubmissionView,
  toTemplateSummaryView,
  toTemplateView,
} from '../views.ts';
import { assessmentParams, BODY_PROBLEMS, problems, STAFF, STAFF_PROBLEMS, teamParams } from './schemas.ts';

/**
 * The body of POST /assessments: the CRD spec, plus an optional name. The email pattern is the
 * CRD's CEL rule, said here too so a bad address is a 400 naming body.candidate.email (and the
 * OpenAPI document tells clients) rather than a refusal from the Kubernetes API.
 */
export const createAssessmentBody = assessmentSpec.extend({
  candidate: assessmentSpec.shape.candidate.extend({
    email: assessmentSpec.shape.candidate.shape.email.regex(
      /^[^@\s]+@[^@\s]+\.[^@\s]+$/,
      'must be an email address such as jane@example.com',
    ),
  }),
  name: z
    .string()
    .max(MAX_ASSESSMENT_NAME)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label (lowercase letters, digits and -)')
    .optional()
    .describe('Name of the Assessment; derived from the candidate name when absent.'),
});

/** One audit line per staff action or sensitive read: who, in which role, did what to what. */
export function audit(request: FastifyRequest, action: string, target: Record<string, unknown>): void {
  request.server.audit.record({
    actor: request.staff?.subject ?? 'unknown',
    role: request.staff?.role,
    action,
    target,
    outcome: 'allowed',
    requestId: request.id,
    client: request.ip,
  });
}

/** Staff routes: templates and assessments of a team. Every call is authorised and audited. */
export default async function staffRoutes(app: FastifyInstance, opts: { writesPerMinute: number }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { assessments, links, grading } = app;
  // Creating assessments and issuing links is stricter than reading.
  const writes = { rateLimit: { max: opts.writesPerMinute, timeWindow: '1 minute' } };

  r.get(
    '/teams/:team/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'List templates',
        security: STAFF,
        params: teamParams,
        response: { 200: TemplateListView, ...problems(STAFF_PROBLEMS) },
      },
      onRequest: app.requireStaff('templates:read'),
    },
    async (request) => ({ items: assessments.listTemplates(request.params.team).map(toTemplateSummaryView) }),
  );

  r.get(
    '/teams/:team/templates/:name',
    {
      schema: {
        tags: ['templates'],
        summary: 'Get a template',
        security: STAFF,
        params: assessmentParams,
        response: { 200: TemplateView, ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('templates:read'),
    },
    async (request) => toTemplateView(assessments.getTemplate(request.params.team, request.params.name)),
  );

  r.post(
    '/teams/:team/assessments',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Create an assessment (idempotent with an Idempotency-Key header)',
        security: STAFF,
        params: teamParams,
        headers: z.object({ 'idempotency-key': z.string().min(8).max(200).optional() }).loose(),
        body: createAssessmentBody,
        response: {
          200: AssessmentView.describe('A retry with the same Idempotency-Key and body: the first one'),
          201: AssessmentView.describe('Created (Location: its URL)'),
          ...problems([...STAFF_PROBLEMS, ...BODY_PROBLEMS, 409, 422], {
            409: 'The name is taken, or the Idempotency-Key was used for another body',
            422: 'No such template, or a duration over its maxDuration',
          }),
        },
      },
      onRequest: app.requireStaff('assessments:write'),
      config: writes,
    },
    async (request, reply) => {
      const { assessment, replayed } = await assessments.create(request.params.team, request.body, {
        idempotencyKey: request.headers['idempotency-key'],
        // The active span's context when tracing is on; else the caller's own traceparent, if any.
        traceparent:
          traceparentOf(request) ??
          (typeof request.headers.traceparent === 'string' ? request.headers.traceparent : undefined),
        actor: request.staff!.subject,
      });
      audit(request, replayed ? 'assessment.create.replayed' : 'assessment.create', {
        team: request.params.team,
        assessment: assessment.metadata.name,
      });
      reply
        .code(replayed ? 200 : 201)
        .header('location', `/api/v1/teams/${request.params.team}/assessments/${assessment.metadata.name}`);
      return toAssessmentView(assessment);
    },
  );

  r.get(
    '/teams/:team/assessments',
    {
      schema: {
        tags: ['assessments'],
        summary: 'List assessments, filtered, with cursor pagination',
        security: STAFF,
        params: teamParams,
        querystring: z.object({
          phase: z.enum(PHASES).optional(),
          template: z.string().max(253).optional(),
          candidate: z.string().max(200).optional().describe('Substring of the candidate name or email'),
          limit: z.coerce.number().int().min(1).max(500).default(50),
          cursor: z.string().max(500).optional().describe('nextCursor of the previous page'),
        }),
        response: { 200: AssessmentPageView, ...problems(STAFF_PROBLEMS) },
      },
      onRequest: app.requireStaff('assessments:read'),
    },
    async (request) => {
      const page = assessments.list(request.params.team, request.query);
      return { items: page.items.map(toAssessmentView), nextCursor: page.nextCursor };
    },
  );

  r.get(
    '/teams/:team/assessments/:name',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Get an assessment',
        security: STAFF,
        params: assessmentParams,
        response: { 200: AssessmentView, ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('assessments:read'),
    },
    async (request) => toAssessmentView(assessments.get(request.params.team, request.params.name)),
  );

  r.post(
    '/teams/:team/assessments/:name/extend',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Change the time box (up to the template maxDuration)',
        security: STAFF,
        params: assessmentParams,
        body: z.object({ duration: durationSchema() }),
        response: {
          200: AssessmentView,
          ...problems([...STAFF_PROBLEMS, ...BODY_PROBLEMS, 404, 409, 422], {
            409: 'The assessment has ended',
            422: "The duration is over the template's maxDuration",
          }),
        },
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request) => {
      const before = assessments.get(request.params.team, request.params.name);
      const a = await assessments.setDuration(before, request.body.duration);
      const startedAt = before.status?.startedAt;
      audit(request, 'assessment.extend', {
        team: request.params.team,
        assessment: request.params.name,
        oldDuration: before.spec.duration ?? null,
        duration: request.body.duration,
        oldDeadline: before.status?.expiresAt ?? null,
        // What the operator will write: the clock's start plus the new duration.
        newDeadline: startedAt
          ? new Date(Date.parse(startedAt) + durationMs(request.body.duration)).toISOString()
          : null,
      });
      return toAssessmentView(a);
    },
  );

  r.post(
    '/teams/:team/assessments/:name/revoke',
    {
      schema: {
        tags: ['assessments'],
        summary: 'End the assessment now and invalidate its links',
        security: STAFF,
        params: assessmentParams,
        response: { 200: AssessmentView, ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request) => {
      const a = await assessments.revoke(assessments.get(request.params.team, request.params.name));
      audit(request, 'assessment.revoke', { team: request.params.team, assessment: request.params.name });
      return toAssessmentView(a);
    },
  );

  r.delete(
    '/teams/:team/assessments/:name',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Delete the assessment and its sandboxes',
        security: STAFF,
        params: assessmentParams,
        response: { 204: z.undefined().describe('Deleted'), ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request, reply) => {
      await assessments.remove(assessments.get(request.params.team, request.params.name));
      audit(request, 'assessment.delete', { team: request.params.team, assessment: request.params.name });
      return reply.code(204).send();
    },
  );

  r.post(
    '/teams/:team/assessments/:name/link',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Issue or rotate the candidate link (earlier links stop working)',
        security: STAFF,
        params: assessmentParams,
        response: {
          200: LinkView.describe('The link (Cache-Control: no-store)'),
          ...problems([...STAFF_PROBLEMS, 404, 409], { 409: 'The assessment has ended' }),
        },
      },
      onRequest: app.requireStaff('assessments:write'),
      config: writes,
    },
    async (request, reply) => {
      const link = await links.issue(assessments.get(request.params.team, request.params.name));
      audit(request, 'assessment.link', { team: request.params.team, assessment: request.params.name });
      reply.header('cache-control', 'no-store');
      return toLinkView(link);
    },
  );

  r.get(
    '/teams/:team/assessments/:name/submissions',
    {
      schema: {
        tags: ['results'],
        summary: 'Submissions and grades of an assessment',
        security: STAFF,
        params: assessmentParams,
        response: { 200: SubmissionListView, ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const a = assessments.get(request.params.team, request.params.name);
      const items = (await grading.list(a)).map(toReviewedSubmissionView);
      audit(request, 'submissions.read', {
        team: request.params.team,
        assessment: request.params.name,
        submissions: items.length,
      });
      return { items };
    },
  );

  // ---- hibernation (issue 17): staff reopen of a hibernated assessment ----
  r.post(
    '/teams/:team/assessments/:name/reopen',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Reopen a hibernated assessment read-only for the follow-up interview (staff only)',
        description:
          'The operator scales the stopped sandboxes back up until reopenedUntil (at most the deletion time), then stops them again. The candidate stays refused. The response holds a read-only staff credential (the grader role), reachable with kubectl port-forward.',
        security: STAFF,
        params: assessmentParams,
        body: ReopenBody,
        response: {
          200: ReopenView,
          ...problems([...STAFF_PROBLEMS, ...BODY_PROBLEMS, 404, 409, 422], {
            409: 'The assessment is not hibernated (running, deleted, revoked, or its template deletes on expiry)',
            422: `The duration is over ${HIBERNATION.maxReopen}`,
          }),
        },
      },
      onRequest: app.requireStaff('assessments:reopen'),
      config: writes,
    },
    async (request, reply) => {
      const a = assessments.get(request.params.team, request.params.name);
      const view = await app.hibernation.reopen(a, request.body.duration);
      audit(request, 'assessment.reopen', {
        team: request.params.team,
        assessment: request.params.name,
        reopenedUntil: view.reopenedUntil,
        hibernatedUntil: view.hibernatedUntil,
      });
      reply.header('cache-control', 'no-store');
      return view;
    },
  );
  // ---- end hibernation ----
}
