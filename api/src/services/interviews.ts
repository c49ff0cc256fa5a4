import { API_VERSION, KINDS, LABELS } from '@epreuve/crds';
import {
  isConflict,
  isNotFound,
  type KubeClient,
  KubeError,
  type KubeObject,
  resourceFor,
} from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { type Guide, guides, questionIds } from '../guides/index.ts';
import type { AssessmentObject, AssessmentStore } from './assessments.ts';
import { NotFound } from './errors.ts';

const CONFIGMAP = resourceFor('v1', 'ConfigMap');

/** One reviewer's score of one question, as stored. */
export const interviewScore = z.object({
  score: z.number().int().min(0).max(4),
  note: z.string(),
  reviewer: z.string(),
  at: z.string(),
});
export type InterviewScore = z.infer<typeof interviewScore>;
export type Scores = Record<string, InterviewScore>;

/**
 * Interview scores live in a ConfigMap `interview-<assessment>` in the team namespace, owned by
 * the Assessment (deleted with it, kept after it expires). One key per question, written with a
 * merge patch, so two reviewers scoring different questions never overwrite each other.
 */
const scoresName = (a: AssessmentObject) => `interview-${a.metadata.name}`;

/** The interview of an assessment: its template's question bank (with reference answers) and scores. */
export class Interviews {
  private readonly client: KubeClient;
  private readonly store: AssessmentStore;

  constructor(client: KubeClient, store: AssessmentStore) {
    this.client = client;
    this.store = store;
  }

  /** The guide the assessment's template names. */
  guideOf(a: AssessmentObject): Guide {
    const id = this.store.templateOf(a)?.spec.interviewGuide;
    const guide = id ? guides().get(id) : undefined;
    if (!guide)
      throw new NotFound(
        id
          ? `interview guide ${id} is not installed`
          : `template ${a.spec.templateRef.name} names no interview guide`,
      );
    return guide;
  }

  /** The guide and the scores given so far. */
  async sheet(a: AssessmentObject): Promise<{ guide: Guide; scores: Scores }> {
    const guide = this.guideOf(a);
    return { guide, scores: await this.scoresOf(a) };
  }

  /** The scores given so far (none without a guide). A stored entry that is not a score is left out. */
  async scoresOf(a: AssessmentObject): Promise<Scores> {
    const cm = await this.ownScores(a);
    const scores: Scores = {};
    for (const [id, raw] of Object.entries(cm?.data ?? {})) {
      const parsed = interviewScore.safeParse(parseJson(raw));
      if (parsed.success) scores[id] = parsed.data;
    }
    return scores;
  }

  /**
   * The assessment's scores ConfigMap, if it is this assessment's: one left by a deleted assessment
   * of the same name (its garbage collection still pending) is deleted, not read or added to.
   */
  private async ownScores(a: AssessmentObject): Promise<ScoresMap | undefined> {
    const cm = await this.client.get<ScoresMap>(CONFIGMAP, a.metadata.namespace, scoresName(a));
    if (!cm || cm.metadata.ownerReferences?.some((o) => o.uid === a.metadata.uid)) return cm;
    await this.client
      .delete(CONFIGMAP, a.metadata.namespace, scoresName(a), { uid: cm.metadata.uid })
      .catch((err: unknown) => {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      });
    return undefined;
  }

  /** Records one question's score; another question's score is untouched. */
  async score(
    a: AssessmentObject,
    question: string,
    given: { score: number; note: string },
    reviewer: string,
  ): Promise<InterviewScore> {
    const guide = this.guideOf(a);
    if (!questionIds(guide).includes(question))
      throw new NotFound(`no question ${question} in guide ${guide.id}`, {
        field: 'question',
        reason: 'not in the guide',
      });
    const value = { ...given, reviewer, at: new Date().toISOString() };
    const data = { [question]: JSON.stringify(value) };
    try {
      if (!(await this.ownScores(a))) throw new KubeError(404, 'NotFound', 'no scores yet');
      await this.client.mergePatch(CONFIGMAP, a.metadata.namespace, scoresName(a), { data });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create({
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
    return value;
  }
}

type ScoresMap = KubeObject & { data?: Record<string, string> };

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Interview guides and scores. */
    interviews: Interviews;
  }
}

/** `app.interviews`. */
export default fp(
  async function interviewsPlugin(app: FastifyInstance, opts: { client: KubeClient }) {
    app.decorate('interviews', new Interviews(opts.client, app.assessments));
  },
  { name: 'interviews', dependencies: ['assessments'] },
);
