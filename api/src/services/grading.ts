import {
  API_VERSION,
  credentialsSecretName,
  DB_CREDENTIAL_KEYS as KEYS,
  KINDS,
  LABELS,
  type Submission,
  type Task,
} from '@epreuve/crds';
import type { KubeClient, KubeObject } from '@epreuve/kube';
import { type Exercise, findExercise } from '@epreuve/sandboxes/exercises';
import { AnswerError, type GradeResult, gradeMongo, gradeSql } from '@epreuve/sandboxes/grader';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { MongoClient } from 'mongodb';
import { type AssessmentObject, type AssessmentStore, namespaceOfAssessment } from './assessments.ts';
import { Conflict, Misconfigured, NotFound, Unavailable } from './errors.ts';
import { readSecretData } from './secrets.ts';

const SUBMISSION = KINDS.Submission;
/** A Submission as the API server stores it. */
export type SubmissionObject = Submission & KubeObject;

interface Graded {
  exercise?: Exercise;
  kind: 'sql' | 'mongo' | 'manual';
  reference?: string;
  collection?: string;
  options: { orderMatters: boolean; numericTolerance: number; ignoreColumnNames: boolean };
}

/** How a task is graded: its catalogue exercise, overridden by the template's own grader settings. */
export function gradingOf(task: Task): Graded {
  const ex = task.exercise ? findExercise(task.exercise) : undefined;
  const g = task.grader;
  if (g?.manual || ex?.manual)
    return {
      exercise: ex,
      kind: 'manual',
      options: ex?.grader ?? { orderMatters: false, numericTolerance: 0, ignoreColumnNames: false },
    };
  if (g?.mongoResult || ex?.kind === 'mongo') {
    const m = g?.mongoResult;
    return {
      exercise: ex,
      kind: 'mongo',
      reference: m?.reference ?? ex?.reference,
      collection: m?.collection ?? ex?.collection,
      options: {
        ...(ex?.grader ?? { ignoreColumnNames: false }),
        ...(m ? { orderMatters: m.orderMatters, numericTolerance: m.numericTolerance } : {}),
      } as Graded['options'],
    };
  }
  const q = g?.sqlResult;
  return {
    exercise: ex,
    kind: 'sql',
    reference: q?.reference ?? ex?.reference,
    options: {
      ...(ex?.grader ?? {}),
      ...(q
        ? {
            orderMatters: q.orderMatters,
            numericTolerance: q.numericTolerance,
            ignoreColumnNames: q.ignoreColumnNames,
          }
        : {}),
    } as Graded['options'],
  };
}

/**
 * Grades a candidate's answer against their own sandbox, as its read-only grader role, and records
 * the answer and the grade as a Submission owned by the Assessment.
 */
export class GradingService {
  private readonly client: KubeClient;
  private readonly store: AssessmentStore;

  constructor(client: KubeClient, store: AssessmentStore) {
    this.client = client;
    this.store = store;
  }

  async submit(a: AssessmentObject, taskId: string, answer: string): Promise<SubmissionObject> {
    const t = this.store.templateOf(a);
    const task = t?.spec.tasks?.find((x) => x.id === taskId);
    if (!task)
      throw new NotFound(`no task ${taskId} in this assessment`, { field: 'task', reason: 'no such task' });
    const grading = gradingOf(task);
    const submittedAt = new Date().toISOString(); // milliseconds: submissions in one second keep their order
    let grade: GradeResult | undefined;
    if (grading.kind !== 'manual') {
      if (!grading.reference)
        throw new Misconfigured('this task has no reference answer; tell the recruiter');
      grade = await this.grade(a, task.sandbox, grading, answer);
    }
    const created = await this.client.create<SubmissionObject>({
      apiVersion: API_VERSION,
      kind: 'Submission',
      metadata: {
        generateName: `${a.metadata.name}-${taskId}-`.slice(0, 57),
        namespace: a.metadata.namespace,
        labels: { [LABELS.assessment]: a.metadata.name!, [LABELS.task]: taskId },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'Assessment',
            name: a.metadata.name!,
            uid: a.metadata.uid!,
            controller: false,
          },
        ],
      },
      spec: { assessmentRef: { name: a.metadata.name! }, task: taskId, answer, submittedAt },
    } as KubeObject);
    const status = grade
      ? {
          graded: true,
          pass: grade.pass,
          explanation: grade.explanation.slice(0, 4000),
          ...(grade.error ? { error: grade.error } : {}),
          points: grade.pass ? task.points : 0,
          gradedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        }
      : { graded: false, explanation: 'A reviewer will grade this answer.' };
    return this.client.mergePatch<SubmissionObject>(
      SUBMISSION,
      created.metadata.namespace,
      created.metadata.name!,
      { status },
      'status',
    );
  }

  list(a: AssessmentObject): Promise<SubmissionObject[]> {
    return this.client
      .list<SubmissionObject>(SUBMISSION, {
        namespace: a.metadata.namespace,
        labelSelector: `${LABELS.assessment}=${a.metadata.name}`,
      })
      .then((l) => l.items.sort((x, y) => x.spec.submittedAt.localeCompare(y.spec.submittedAt)));
  }

  private async grade(
    a: AssessmentObject,
    sandboxName: string,
    g: Graded,
    answer: string,
  ): Promise<GradeResult> {
    const sandbox = a.status?.sandboxes?.find((s) => s.name === sandboxName);
    if (!sandbox?.ready || !sandbox.host || !sandbox.port)
      throw new Conflict(`sandbox ${sandboxName} is not ready yet; try again in a moment`);
    const ns = namespaceOfAssessment(a);
    const c = await readSecretData(this.client, ns, sandbox.secretName ?? credentialsSecretName(sandboxName));
    if (!c) throw new Conflict(`sandbox ${sandboxName} has no credentials yet; try again in a moment`);
    const exercise = { reference: g.reference!, collection: g.collection, grader: g.options };
    const unreachable = (err: unknown): never => {
      // The answer's own failures are grades; these are the sandbox not answering the grader at all.
      throw new Unavailable(
        `sandbox ${sandboxName} could not grade this answer now (${(err as Error).message}); try again in a moment`,
        5,
      );
    };
    if (g.kind === 'sql') {
      // The reference runs first, outside the answer's grading: its failure is the sandbox's.
      return gradeSql(
        {
          host: sandbox.host,
          port: sandbox.port,
          user: c[KEYS.graderUsername],
          password: c[KEYS.graderPassword],
          database: c[KEYS.database],
        },
        exercise,
        answer,
      ).catch((err) => {
        if (!(err instanceof AnswerError)) throw err;
        if (err.reason === 'Unavailable' || err.reason === 'Timeout') return unreachable(err);
        throw new Misconfigured(
          `the reference answer of this task does not run (${err.message}); tell the recruiter`,
        );
      });
    }
    const db = c[KEYS.database];
    const url = `mongodb://${encodeURIComponent(c[KEYS.graderUsername] ?? '')}:${encodeURIComponent(c[KEYS.graderPassword] ?? '')}@${sandbox.host}:${sandbox.port}/${db}?authSource=${db}`;
    const client = await new MongoClient(url, { serverSelectionTimeoutMS: 5000 })
      .connect()
      .catch(unreachable);
    try {
      return await gradeMongo(client, db!, exercise, answer);
    } finally {
      await client.close();
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Grading: submissions graded against the candidate's sandbox and stored as Submission objects. */
    grading: GradingService;
  }
}

/** `app.grading`. */
export default fp(
  async function gradingPlugin(app: FastifyInstance, opts: { client: KubeClient }) {
    app.decorate('grading', new GradingService(opts.client, app.assessments));
  },
  { name: 'grading', dependencies: ['assessments'] },
);
