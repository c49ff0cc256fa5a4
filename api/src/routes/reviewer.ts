import { API_VERSION, credentialsSecretName, DATA_API_CREDENTIAL_KEYS, KINDS, LABELS } from '@epreuve/crds';
import { isNotFound, type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { guides, questionIds } from '../guides/index.ts';
import { Problem } from '../plugins/problem.ts';
import type { A, AssessmentStore } from '../services/assessments.ts';
import { namespaceOfAssessment } from '../services/assessments.ts';
import { readSecretData } from '../services/secrets.ts';

const CONFIGMAP = resourceFor('v1', 'ConfigMap');
const params = z.object({ team: z.string().max(63), name: z.string().max(63) });
type Scores = Record<string, { score: number; note: string; reviewer: string; at: string }>;

/**
 * Interview scores live in a ConfigMap `interview-<assessment>` in the team namespace, owned by
 * the Assessment (deleted with it, kept after it expires). One key per question, written with a
 * merge patch, so two reviewers scoring different questions never overwrite each other.
 */
const scoresName = (a: A) => `interview-${a.metadata.name}`;

async function readScores(client: KubeClient, a: A): Promise<Scores> {
  const cm = await client.get<KubeObject & { data?: Record<string, string> }>(
    CONFIGMAP,
    a.metadata.namespace,
    scoresName(a),
  );
  return Object.fromEntries(Object.entries(cm?.data ?? {}).map(([k, v]) => [k, JSON.parse(v)]));
}

/** Reviewer routes: the interview guide with reference answers (never shown to candidates) and scores. */
export default async function reviewerRoutes(
  app: FastifyInstance,
  opts: { store: AssessmentStore; client: KubeClient },
) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  const guideFor = (a: A) => {
    const t = opts.store.template(a.metadata.namespace!, a.spec.templateRef.name);
    const id = t?.spec.interviewGuide;
    const guide = id ? guides().get(id) : undefined;
    if (!guide)
      throw new Problem(
        404,
        id
          ? `interview guide ${id} is not installed`
          : `template ${a.spec.templateRef.name} names no interview guide`,
      );
    return guide;
  };

  r.get(
    '/teams/:team/assessments/:name/interview',
    {
      schema: {
        tags: ['interview'],
        summary: 'The interview guide with reference answers, and the scores given so far',
        params,
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const a = opts.store.get(request.params.team, request.params.name);
      const guide = guideFor(a);
      const scores = await readScores(opts.client, a);
      const ids = questionIds(guide);
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
    },
  );

  r.put(
    '/teams/:team/assessments/:name/interview/scores/:question',
    {
      schema: {
        tags: ['interview'],
        summary: 'Score one question from 0 to 4, with a note',
        params: params.extend({ question: z.string().max(63) }),
        body: z.object({ score: z.number().int().min(0).max(4), note: z.string().max(2000).default('') }),
      },
      onRequest: app.requireStaff('interview:score'),
    },
    async (request) => {
      const a = opts.store.get(request.params.team, request.params.name);
      const guide = guideFor(a);
      if (!questionIds(guide).includes(request.params.question)) {
        throw new Problem(404, `no question ${request.params.question} in guide ${guide.id}`, {
          invalidParams: [{ name: 'params.question', reason: 'not in the guide' }],
        });
      }
      const value = { ...request.body, reviewer: request.staff!.subject, at: new Date().toISOString() };
      const data = { [request.params.question]: JSON.stringify(value) };
      try {
        await opts.client.mergePatch(CONFIGMAP, a.metadata.namespace, scoresName(a), { data });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await opts.client.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: scoresName(a),
            namespace: a.metadata.namespace,
            labels: {
              [LABELS.assessment]: a.metadata.name!,
              'app.kubernetes.io/component': 'interview-scores',
            },
            ownerReferences: [
              {
                apiVersion: API_VERSION,
                kind: KINDS.Assessment.kind,
                name: a.metadata.name!,
                uid: a.metadata.uid!,
              },
            ],
          },
          data,
        });
      }
      request.log.info(
        {
          audit: {
            actor: request.staff!.subject,
            action: 'interview.score',
            assessment: a.metadata.name,
            question: request.params.question,
            score: value.score,
          },
        },
        'audit: interview.score',
      );
      return { question: request.params.question, ...value };
    },
  );

  r.get(
    '/teams/:team/assessments/:name/requests',
    {
      schema: {
        tags: ['results'],
        summary: 'What the candidate asked the data API: each call, when, with what result',
        params,
        querystring: z.object({
          since: z.iso.datetime({ offset: true }).optional(),
          limit: z.coerce.number().int().min(1).max(10000).default(1000),
        }),
      },
      onRequest: app.requireStaff('results:read'),
    },
    async (request) => {
      const a = opts.store.get(request.params.team, request.params.name);
      const apis = (a.status?.sandboxes ?? []).filter((s) => s.kind === 'dataApi');
      if (apis.length === 0)
        throw new Problem(404, 'this assessment has no running data API (it may have ended)');
      const ns = namespaceOfAssessment(a);
      const sandboxes = await Promise.all(
        apis.map(async (s) => {
          const secret = s.secretName ?? credentialsSecretName(s.name);
          const adminKey = (await readSecretData(opts.client, ns, secret))?.[
            DATA_API_CREDENTIAL_KEYS.adminKey
          ];
          if (!adminKey || !s.host || !s.port) return { sandbox: s.name, available: false, items: [] };
          const q = new URLSearchParams({
            limit: String(request.query.limit),
            ...(request.query.since ? { since: request.query.since } : {}),
          });
          try {
            const res = await fetch(`http://${s.host}:${s.port}/admin/requests?${q}`, {
              headers: { 'x-admin-key': adminKey },
              signal: AbortSignal.timeout(5000),
            });
            if (!res.ok) return { sandbox: s.name, available: false, items: [] };
            const body = (await res.json()) as { data?: unknown[] };
            return { sandbox: s.name, available: true, items: body.data ?? [] };
          } catch {
            return { sandbox: s.name, available: false, items: [] };
          }
        }),
      );
      return { sandboxes };
    },
  );
}
