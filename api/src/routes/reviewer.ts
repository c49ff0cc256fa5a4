import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  InterviewView,
  RequestLogView,
  ScoreView,
  toInterviewView,
  toRequestLogView,
  toScoreView,
} from '../views.ts';
import { assessmentParams, BODY_PROBLEMS, problems, STAFF, STAFF_PROBLEMS } from './schemas.ts';
import { audit } from './staff.ts';

/**
 * Reviewer routes: the interview guide with reference answers (never shown to candidates), scores,
 * and what the candidate asked the data API.
 */
export default async function reviewerRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { assessments, interviews, requestLogs } = app;

  r.get(
    '/teams/:team/assessments/:name/interview',
    {
      schema: {
        tags: ['interview'],
        summary: 'The interview guide with reference answers, and the scores given so far',
        security: STAFF,
        params: assessmentParams,
        response: {
          200: InterviewView,
          ...problems([...STAFF_PROBLEMS, 404], {
            404: 'No such assessment, or its template names no installed interview guide',
          }),
        },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const { guide, scores } = await interviews.sheet(
        assessments.get(request.params.team, request.params.name),
      );
      return toInterviewView(guide, scores);
    },
  );

  r.put(
    '/teams/:team/assessments/:name/interview/scores/:question',
    {
      schema: {
        tags: ['interview'],
        summary: 'Score one question from 0 to 4, with a note',
        security: STAFF,
        params: assessmentParams.extend({ question: z.string().max(63) }),
        body: z.object({ score: z.number().int().min(0).max(4), note: z.string().max(2000).default('') }),
        response: {
          200: ScoreView,
          ...problems([...STAFF_PROBLEMS, ...BODY_PROBLEMS, 404], {
            404: 'No such assessment, interview guide, or question in the guide',
          }),
        },
      },
      onRequest: app.requireStaff('interview:score'),
    },
    async (request) => {
      const a = assessments.get(request.params.team, request.params.name);
      const value = await interviews.score(a, request.params.question, request.body, request.staff!.subject);
      audit(request, 'interview.score', {
        assessment: a.metadata.name,
        question: request.params.question,
        score: value.score,
      });
      return toScoreView(request.params.question, value);
    },
  );

  r.get(
    '/teams/:team/assessments/:name/requests',
    {
      schema: {
        tags: ['results'],
        summary: 'What the candidate asked the data API: each call, when, with what result',
        security: STAFF,
        params: assessmentParams,
        querystring: z.object({
          since: z.iso.datetime({ offset: true }).optional(),
          limit: z.coerce.number().int().min(1).max(10000).default(1000),
        }),
        response: {
          200: RequestLogView,
          ...problems([...STAFF_PROBLEMS, 404], {
            404: 'No such assessment, or it has no running data API',
          }),
        },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) =>
      toRequestLogView(
        await requestLogs.read(assessments.get(request.params.team, request.params.name), request.query),
      ),
  );
}
