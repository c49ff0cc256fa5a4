import { duration as durationSchema, PHASES } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { traceparentOf } from '../plugins/observability.ts';
import { Problem } from '../plugins/problem.ts';
import { type AssessmentStore, createAssessmentBody } from '../services/assessments.ts';
import type { GradingService } from '../services/grading.ts';
import { LinkSigner } from '../services/links.ts';
import { assessmentView } from '../services/views.ts';

const teamParams = z.object({
  team: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name')
    .max(63),
});
const assessmentParams = teamParams.extend({ name: z.string().min(1).max(63) });

/** Staff routes: templates and assessments of a team. Every call is authorised and audited. */
export default async function staffRoutes(
  app: FastifyInstance,
  opts: {
    store: AssessmentStore;
    links: LinkSigner;
    grading: GradingService;
    publicUrl: string;
    linkMaxAgeMs: number;
    writesPerMinute: number;
  },
) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = opts;
  // Creating assessments and issuing links is stricter than reading.
  const writes = { rateLimit: { max: opts.writesPerMinute, timeWindow: '1 minute' } };
  const audit = (
    request: { staff?: { subject: string; role: string }; log: { info: (o: object, m: string) => void } },
    action: string,
    target: object,
  ) =>
    request.log.info(
      { audit: { actor: request.staff?.subject, role: request.staff?.role, action, ...target } },
      `audit: ${action}`,
    );

  r.get(
    '/teams/:team/templates',
    {
      schema: { tags: ['templates'], summary: 'List templates', params: teamParams },
      onRequest: app.requireStaff('templates:read'),
    },
    async (request) => ({
      items: store.listTemplates(request.params.team).map((t) => ({
        name: t.metadata.name!,
        title: t.spec.title,
        duration: t.spec.duration,
        maxDuration: t.spec.maxDuration,
        sandboxes: t.spec.sandboxes.map((s) => s.name),
        tasks: (t.spec.tasks ?? []).map((x) => x.id),
        interviewGuide: t.spec.interviewGuide ?? null,
      })),
    }),
  );

  r.get(
    '/teams/:team/templates/:name',
    {
      schema: { tags: ['templates'], summary: 'Get a template', params: assessmentParams },
      onRequest: app.requireStaff('templates:read'),
    },
    async (request) => {
      const t = store.template(request.params.team, request.params.name);
      if (!t) throw new Problem(404, `no template ${request.params.name} in team ${request.params.team}`);
      return { name: t.metadata.name!, spec: t.spec };
    },
  );

  r.post(
    '/teams/:team/assessments',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Create an assessment (idempotent with an Idempotency-Key header)',
        params: teamParams,
        headers: z.object({ 'idempotency-key': z.string().min(8).max(200).optional() }).loose(),
        body: createAssessmentBody,
      },
      onRequest: app.requireStaff('assessments:write'),
      config: writes,
    },
    async (request, reply) => {
      const { assessment, replayed } = await store.create(request.params.team, request.body, {
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
      return assessmentView(assessment);
    },
  );

  r.get(
    '/teams/:team/assessments',
    {
      schema: {
        tags: ['assessments'],
        summary: 'List assessments, filtered, with cursor pagination',
        params: teamParams,
        querystring: z.object({
          phase: z.enum(PHASES).optional(),
          template: z.string().max(253).optional(),
          candidate: z.string().max(200).optional().describe('Substring of the candidate name or email'),
          limit: z.coerce.number().int().min(1).max(500).default(50),
          cursor: z.string().max(500).optional(),
        }),
      },
      onRequest: app.requireStaff('assessments:read'),
    },
    async (request) => {
      const page = store.list(request.params.team, request.query);
      return { items: page.items.map(assessmentView), nextCursor: page.nextCursor };
    },
  );

  r.get(
    '/teams/:team/assessments/:name',
    {
      schema: { tags: ['assessments'], summary: 'Get an assessment', params: assessmentParams },
      onRequest: app.requireStaff('assessments:read'),
    },
    async (request) => assessmentView(store.get(request.params.team, request.params.name)),
  );

  r.post(
    '/teams/:team/assessments/:name/extend',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Change the time box (up to the template maxDuration)',
        params: assessmentParams,
        body: z.object({ duration: durationSchema() }),
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request) => {
      const a = await store.setDuration(
        store.get(request.params.team, request.params.name),
        request.body.duration,
      );
      audit(request, 'assessment.extend', {
        team: request.params.team,
        assessment: request.params.name,
        duration: request.body.duration,
      });
      return assessmentView(a);
    },
  );

  r.post(
    '/teams/:team/assessments/:name/revoke',
    {
      schema: {
        tags: ['assessments'],
        summary: 'End the assessment now and invalidate its links',
        params: assessmentParams,
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request) => {
      const a = await store.revoke(store.get(request.params.team, request.params.name));
      audit(request, 'assessment.revoke', { team: request.params.team, assessment: request.params.name });
      return assessmentView(a);
    },
  );

  r.delete(
    '/teams/:team/assessments/:name',
    {
      schema: {
        tags: ['assessments'],
        summary: 'Delete the assessment and its sandboxes',
        params: assessmentParams,
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request, reply) => {
      await store.remove(store.get(request.params.team, request.params.name));
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
        params: assessmentParams,
      },
      onRequest: app.requireStaff('assessments:write'),
      config: writes,
    },
    async (request, reply) => {
      const a = store.get(request.params.team, request.params.name);
      if (a.spec.revoked || a.status?.phase === 'Expired')
        throw new Problem(409, 'this assessment has ended; it cannot have a link');
      const linkId = LinkSigner.newLinkId();
      const updated = await store.setLinkId(a, linkId);
      const cap = Date.now() + opts.linkMaxAgeMs;
      const expiresAt = new Date(
        updated.status?.expiresAt ? Math.min(Date.parse(updated.status.expiresAt), cap) : cap,
      );
      const token = await opts.links.sign({
        assessment: `${a.metadata.namespace}/${a.metadata.name}`,
        linkId,
        expiresAt,
      });
      audit(request, 'assessment.link', { team: request.params.team, assessment: request.params.name });
      reply.header('cache-control', 'no-store');
      // The token travels in the URL fragment: browsers never send it to servers or in Referer.
      return {
        url: `${opts.publicUrl.replace(/\/$/, '')}/candidate#token=${token}`,
        token,
        expiresAt: expiresAt.toISOString(),
      };
    },
  );

  r.get(
    '/teams/:team/assessments/:name/submissions',
    {
      schema: {
        tags: ['results'],
        summary: 'Submissions and grades of an assessment',
        params: assessmentParams,
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const a = store.get(request.params.team, request.params.name);
      const items = await opts.grading.list(a);
      return {
        items: items.map((s) => ({
          id: s.metadata.name!,
          task: s.spec.task,
          answer: s.spec.answer,
          submittedAt: s.spec.submittedAt,
          graded: s.status?.graded ?? false,
          pass: s.status?.pass ?? null,
          explanation: s.status?.explanation ?? null,
          points: s.status?.points ?? null,
        })),
      };
    },
  );
}
