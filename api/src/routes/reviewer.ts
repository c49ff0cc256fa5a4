import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SIMILARITY_THRESHOLD } from '../services/similarity.ts';
import {
  InterviewView,
  RequestLogView,
  ReviewedSubmissionView,
  ScorecardListView,
  ScorecardView,
  ScoreView,
  SimilarityView,
  toInterviewView,
  toRequestLogView,
  toReviewedSubmissionView,
  toScorecardView,
  toScoreView,
} from '../views.ts';
import { assessmentParams, BODY_PROBLEMS, problems, STAFF, STAFF_PROBLEMS, teamParams } from './schemas.ts';
import { audit } from './staff.ts';

/**
 * Reviewer routes: the interview guide with reference answers (never shown to candidates), scores,
 * and what the candidate asked the data API.
 */
export default async function reviewerRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { assessments, grading, interviews, requestLogs, scorecards } = app;

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
      // Reference answers and the interviewers' notes.
      audit(request, 'interview.read', { team: request.params.team, assessment: request.params.name });
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

  r.put(
    '/teams/:team/assessments/:name/submissions/:submission/grade',
    {
      schema: {
        tags: ['results'],
        summary: "Grade an answer to a manual task: points up to the task's, and a comment",
        security: STAFF,
        params: assessmentParams.extend({
          submission: z
            .string()
            .max(253)
            .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a submission name (a DNS subdomain)'),
        }),
        body: z.object({
          points: z.number().int().min(0).max(100),
          comment: z.string().max(4000).default(''),
        }),
        response: {
          200: ReviewedSubmissionView,
          ...problems([...STAFF_PROBLEMS, ...BODY_PROBLEMS, 404, 409, 422], {
            404: 'No such assessment, or no such submission in it',
            409: 'The task is graded automatically',
            422: "More points than the task's",
          }),
        },
      },
      onRequest: app.requireStaff('answers:grade'),
    },
    async (request) => {
      const a = assessments.get(request.params.team, request.params.name);
      const graded = await grading.gradeByHand(
        a,
        request.params.submission,
        request.body,
        request.staff!.subject,
      );
      audit(request, 'submission.grade', {
        team: request.params.team,
        assessment: a.metadata.name,
        submission: request.params.submission,
        task: graded.spec.task,
        points: request.body.points,
      });
      return toReviewedSubmissionView(graded);
    },
  );

  r.get(
    '/teams/:team/assessments/:name/scorecard',
    {
      schema: {
        tags: ['results'],
        summary: 'Scorecard: automatic, manual and interview points, attempts and time used',
        security: STAFF,
        params: assessmentParams,
        querystring: z.object({
          dataApi: z
            .enum(['true', 'false'])
            .default('false')
            .describe(
              "true: signals.dataApi is read from the assessment's data API sandboxes (one request each; the Results view asks for it)",
            ),
        }),
        response: { 200: ScorecardView, ...problems([...STAFF_PROBLEMS, 404]) },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const card = await scorecards.of(
        assessments.get(request.params.team, request.params.name),
        new Date(),
        request.query.dataApi === 'true',
      );
      audit(request, 'scorecard.read', { team: request.params.team, assessment: request.params.name });
      return toScorecardView(card);
    },
  );

  r.get(
    '/teams/:team/scorecards',
    {
      schema: {
        tags: ['results'],
        summary: "The team's scorecards, one per assessment (the staff page's results view)",
        security: STAFF,
        params: teamParams,
        response: { 200: ScorecardListView, ...problems(STAFF_PROBLEMS) },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      audit(request, 'scorecards.read', { team: request.params.team });
      return { items: (await scorecards.team(request.params.team)).map(toScorecardView) };
    },
  );

  r.get(
    '/teams/:team/similarity',
    {
      schema: {
        tags: ['results'],
        summary:
          'Answers that look alike between candidates of a template (an integrity signal for a reviewer, never a grade)',
        security: STAFF,
        params: teamParams,
        querystring: z.object({
          threshold: z.coerce
            .number()
            .min(0.3)
            .max(1)
            .default(SIMILARITY_THRESHOLD)
            .describe('Share of common fingerprints from which a pair is listed'),
        }),
        response: { 200: SimilarityView, ...problems(STAFF_PROBLEMS) },
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      audit(request, 'similarity.read', { team: request.params.team });
      const { threshold } = request.query;
      return { threshold, pairs: await scorecards.similarAnswers(request.params.team, threshold) };
    },
  );

  r.get(
    '/teams/:team/scorecards.csv',
    {
      // CSV for spreadsheets; the same figures as the scorecard route, one line per assessment.
      schema: { hide: true, params: teamParams },
      onRequest: app.requireStaff('results:read'),
    },
    async (request, reply) => {
      audit(request, 'scorecards.export', { team: request.params.team });
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${request.params.team}-scorecards.csv"`)
        .send(await scorecards.csv(request.params.team));
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
    async (request) => {
      const logs = await requestLogs.read(
        assessments.get(request.params.team, request.params.name),
        request.query,
      );
      audit(request, 'requestlog.read', { team: request.params.team, assessment: request.params.name });
      return toRequestLogView(logs);
    },
  );
}
