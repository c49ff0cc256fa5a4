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
import { type GradeResult, gradeMongo, gradeSql } from '@epreuve/sandboxes/grader';
import { MongoClient } from 'mongodb';
import { Problem } from '../plugins/problem.ts';
import { type A, type AssessmentStore, namespaceOfAssessment } from './assessments.ts';
import { readSecretData } from './secrets.ts';

const SUBMISSION = KINDS.Submission;
export type S = Submission & KubeObject;

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

  async submit(a: A, taskId: string, answer: string): Promise<S> {
    const t = this.store.template(a.metadata.namespace!, a.spec.templateRef.name);
    const task = t?.spec.tasks?.find((x) => x.id === taskId);
    if (!task)
      throw new Problem(404, `no task ${taskId} in this assessment`, {
        invalidParams: [{ name: 'params.task', reason: 'no such task' }],
      });
    const grading = gradingOf(task);
    const submittedAt = new Date().toISOString(); // milliseconds: submissions in one second keep their order
    let grade: GradeResult | undefined;
    if (grading.kind !== 'manual') {
      if (!grading.reference) throw new Problem(500, 'this task has no reference answer; tell the recruiter');
      grade = await this.grade(a, task.sandbox, grading, answer);
    }
    const created = await this.client.create<S>({
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
    return this.client.mergePatch<S>(
      SUBMISSION,
      created.metadata.namespace,
      created.metadata.name!,
      { status },
      'status',
    );
  }

  list(a: A): Promise<S[]> {
    return this.client
      .list<S>(SUBMISSION, {
        namespace: a.metadata.namespace,
        labelSelector: `${LABELS.assessment}=${a.metadata.name}`,
      })
      .then((l) => l.items.sort((x, y) => x.spec.submittedAt.localeCompare(y.spec.submittedAt)));
  }

  private async grade(a: A, sandboxName: string, g: Graded, answer: string): Promise<GradeResult> {
    const sandbox = a.status?.sandboxes?.find((s) => s.name === sandboxName);
    if (!sandbox?.ready || !sandbox.host || !sandbox.port)
      throw new Problem(409, `sandbox ${sandboxName} is not ready yet; try again in a moment`);
    const ns = namespaceOfAssessment(a);
    const c = await readSecretData(this.client, ns, sandbox.secretName ?? credentialsSecretName(sandboxName));
    if (!c) throw new Problem(409, `sandbox ${sandboxName} has no credentials yet; try again in a moment`);
    const exercise = { reference: g.reference!, collection: g.collection, grader: g.options };
    if (g.kind === 'sql') {
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
      );
    }
    const db = c[KEYS.database];
    const url = `mongodb://${encodeURIComponent(c[KEYS.graderUsername] ?? '')}:${encodeURIComponent(c[KEYS.graderPassword] ?? '')}@${sandbox.host}:${sandbox.port}/${db}?authSource=${db}`;
    const client = await new MongoClient(url, { serverSelectionTimeoutMS: 5000 }).connect();
    try {
      return await gradeMongo(client, db!, exercise, answer);
    } finally {
      await client.close();
    }
  }
}
