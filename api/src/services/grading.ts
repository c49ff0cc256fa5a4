import { createHash } from 'node:crypto';
import {
  API_VERSION,
  type CheckSpec,
  cutText,
  GRADER,
  type GradeResponse,
  KINDS,
  LABELS,
  type Submission,
  type Task,
} from '@epreuve/crds';
import { type KubeClient, KubeError, type KubeObject } from '@epreuve/kube';
import { type Exercise, findExercise } from '@epreuve/sandboxes/exercises';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type AssessmentObject, type AssessmentStore, namespaceOfAssessment } from './assessments.ts';
import {
  Conflict,
  Invalid,
  type Localized,
  Malformed,
  Misconfigured,
  NotFound,
  Unavailable,
} from './errors.ts';
import { GraderClient, type GraderOutcome } from './grader-client.ts';
import { readSecretData } from './secrets.ts';

const SUBMISSION = KINDS.Submission;
/** A Submission as the API server stores it. */
export type SubmissionObject = Submission & KubeObject;

interface Graded {
  exercise?: Exercise;
  kind: 'sql' | 'mongo' | 'manual' | 'check';
  /** A check task's checks (the template's `grader.check.checks`). */
  checks?: CheckSpec[];
  reference?: string;
  collection?: string;
  options: { orderMatters: boolean; numericTolerance: number; ignoreColumnNames: boolean };
}

/** How a task is graded: its catalogue exercise, overridden by the template's own grader settings. */
export function gradingOf(task: Task): Graded {
  const ex = task.exercise ? findExercise(task.exercise) : undefined;
  const g = task.grader;
  if (g?.check)
    return {
      kind: 'check',
      checks: g.check.checks.map(({ name, sql, mongo, expect, hint }) => ({
        name,
        sql,
        mongo,
        expect,
        hint,
      })),
      options: { orderMatters: false, numericTolerance: 0, ignoreColumnNames: false },
    };
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
 * Whether `mine` is past a cap, and which. A submission counts against `mine` when it was already
 * admitted (it has a status: admission is written at once) or when it is still being checked and
 * comes first in one order every replica agrees on (creation time, then the unique name). Used
 * for the total across tasks; the per-task cap is exact through slot names (GradingService.admit).
 */
export function overLimit(
  all: SubmissionObject[],
  mine: SubmissionObject,
  taskId: string,
  limits: { maxAttempts: number; maxSubmissions: number },
): Localized | undefined {
  const order = (s: SubmissionObject) => `${s.metadata.creationTimestamp ?? ''}\0${s.metadata.name}`;
  const counts = (s: SubmissionObject) =>
    s.metadata.name !== mine.metadata.name && (s.status !== undefined || order(s) < order(mine));
  if (all.filter((s) => s.spec.task === taskId && counts(s)).length >= limits.maxAttempts)
    return attemptsUsed(limits.maxAttempts, taskId);
  if (all.filter(counts).length >= limits.maxSubmissions)
    return {
      en: `you have used all ${limits.maxSubmissions} submissions of this assessment (the template's grading.maxSubmissions)`,
      fr: `vous avez utilisé les ${limits.maxSubmissions} soumissions de cette évaluation (grading.maxSubmissions du modèle)`,
    };
  return undefined;
}

const attemptsUsed = (max: number, taskId: string): Localized => ({
  en: `you have used all ${max} attempts at task ${taskId}`,
  fr: `vous avez utilisé les ${max} tentatives de la tâche ${taskId}`,
});

/**
 * Attempt `k` of a task: a name the API server holds once (see GradingService.admit). The readable
 * `<assessment>-<task>-` alone was ambiguous (assessment `ann` + task `schema-design` and
 * `ann-schema` + `design` made the same names, so one candidate took the other's slots), hence a
 * short hash of the assessment's uid and the task: unique to this assessment (a later one of the
 * same name has another uid) and task. Assessment names and task ids are DNS labels (≤ 63), so the
 * name stays a DNS-1123 subdomain well under 253 characters.
 */
export function submissionName(a: AssessmentObject, taskId: string, k: number): string {
  const hash = createHash('sha256').update(`${a.metadata.uid}/${taskId}`).digest('hex').slice(0, 10);
  return `${a.metadata.name}-${taskId}-${hash}-${k}`;
}

/** Attempt `k` as submissions were named before the hash: still read, so old attempts keep counting. */
export const legacySubmissionName = (a: AssessmentObject, taskId: string, k: number) =>
  `${a.metadata.name}-${taskId}-${k}`;

/** Whether a Submission is this assessment's answer to this task (not a namesake's). */
export const belongsTo = (s: SubmissionObject, a: AssessmentObject, taskId: string) =>
  s.spec?.task === taskId &&
  s.metadata.labels?.[LABELS.assessment] === a.metadata.name &&
  (s.metadata.ownerReferences ?? []).some((o) => o.kind === 'Assessment' && o.uid === a.metadata.uid);

/**
 * Grades a candidate's answer against their own sandbox, as its read-only grader role, and records
 * the answer and the grade as a Submission owned by the Assessment.
 */
export class GradingService {
  private readonly client: KubeClient;
  private readonly store: AssessmentStore;
  private readonly grader: GraderClient;

  /** Drops a namespace's cached grader token (see graderTokens). */
  private readonly forgetToken?: (namespace: string) => void;

  constructor(
    client: KubeClient,
    store: AssessmentStore,
    grader: GraderClient,
    forgetToken?: (namespace: string) => void,
  ) {
    this.client = client;
    this.store = store;
    this.grader = grader;
    this.forgetToken = forgetToken;
  }

  async submit(a: AssessmentObject, taskId: string, answer: string): Promise<SubmissionObject> {
    const t = this.store.templateOf(a);
    const task = t?.spec.tasks?.find((x) => x.id === taskId);
    if (!task)
      throw new NotFound(
        { en: `no task ${taskId} in this assessment`, fr: `aucune tâche ${taskId} dans cette évaluation` },
        { field: 'task', reason: 'no such task' },
      );
    const grading = gradingOf(task);
    // A check task takes no answer (the candidate's work is in their sandbox); others need one.
    if (grading.kind !== 'check' && answer === '')
      throw new Malformed('an answer is required for this task', 'body.answer', 'required');
    if (grading.kind !== 'manual' && grading.kind !== 'check' && !grading.reference)
      throw new Misconfigured({
        en: 'this task has no reference answer; tell the recruiter',
        fr: 'cette tâche n’a pas de réponse de référence ; prévenez le recruteur',
      });
    const submittedAt = new Date().toISOString(); // milliseconds: submissions in one second keep their order
    const limits = t!.spec.grading;
    const created = await this.admit(a, taskId, limits, answer, submittedAt);
    const withdraw = () =>
      this.client.delete(SUBMISSION, created.metadata.namespace, created.metadata.name!).catch(() => {});
    // Admitted: from now on it counts against every later submission, graded or not yet. Written
    // while the grader runs the answer (one API server round trip off the candidate's wait); the
    // grade is written after it. Its failure is kept, not left unhandled, and thrown below.
    const pending = { graded: false, explanation: 'Being graded.' };
    const pendingWrite =
      grading.kind !== 'manual'
        ? this.writeStatus(created, pending).then(
            () => undefined,
            (err: unknown) => err,
          )
        : Promise.resolve(undefined);
    let grade: GradeResponse | undefined;
    if (grading.kind !== 'manual') {
      try {
        grade = await this.grade(a, task.sandbox, grading, answer);
      } catch (err) {
        await pendingWrite;
        await withdraw(); // not graded: it does not cost the candidate an attempt
        throw err;
      }
    }
    const pendingFailed = await pendingWrite;
    if (pendingFailed) {
      await withdraw();
      throw pendingFailed;
    }
    const status = grade
      ? {
          graded: true,
          pass: grade.pass,
          explanation: cutText(grade.explanation),
          hint: cutText(grade.hint),
          ...(grade.hintFr ? { hintFr: cutText(grade.hintFr) } : {}),
          ...(grade.error ? { error: grade.error } : {}),
          points: grade.pass ? task.points : 0,
          gradedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        }
      : {
          graded: false,
          explanation: 'A reviewer will grade this answer.',
          hintFr: 'Un relecteur notera cette réponse.',
        };
    return this.writeStatus(created, status);
  }

  /**
   * Records the answer as attempt k of the task, in the lowest free slot (`submissionName`,
   * k ≤ maxAttempts; a slot taken under its older name stays taken). The API server refuses a
   * second object of the same name, so racing submissions — on one replica or several — can never
   * take more slots than there are: the cap is exact without a lock (ordering by creation time was
   * not: it has one-second precision, and a submission created after another's count could sort
   * before it). The total across tasks is checked after creation (`overLimit`), which may only err
   * by a few under a race.
   */
  private async admit(
    a: AssessmentObject,
    taskId: string,
    limits: { maxAttempts: number; maxSubmissions: number },
    answer: string,
    submittedAt: string,
  ): Promise<SubmissionObject> {
    const exhausted = attemptsUsed(limits.maxAttempts, taskId);
    // Each 409 means a racing submission of this task took a slot, so a few rounds past the cap
    // settle it; the bound keeps one request from looping on the API server whatever happens.
    for (let round = 0; round < limits.maxAttempts + 3; round++) {
      const all = await this.list(a);
      const taken = new Set(all.filter((s) => s.spec.task === taskId).map((s) => s.metadata.name));
      const slot = Array.from({ length: limits.maxAttempts }, (_, i) => i + 1)
        .filter((k) => !taken.has(legacySubmissionName(a, taskId, k)))
        .map((k) => submissionName(a, taskId, k))
        .find((name) => !taken.has(name));
      if (!slot) throw new Conflict(exhausted);
      let created: SubmissionObject;
      try {
        created = await this.client.create<SubmissionObject>({
          apiVersion: API_VERSION,
          kind: 'Submission',
          metadata: {
            name: slot,
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
      } catch (err) {
        if (!(err instanceof KubeError && err.code === 409)) throw err;
        // Another request of this assessment and task took this slot first: count again and take
        // the next one. Anything else holding the name is not ours to count or to wait for.
        const holder = await this.client.get<SubmissionObject>(SUBMISSION, a.metadata.namespace, slot);
        if (holder && !belongsTo(holder, a, taskId))
          throw new Conflict(`submission name ${slot} is held by another object; tell the recruiter`);
        continue;
      }
      const over = overLimit([...all, created], created, taskId, {
        maxAttempts: Number.POSITIVE_INFINITY,
        maxSubmissions: limits.maxSubmissions,
      });
      if (over) {
        await this.client
          .delete(SUBMISSION, created.metadata.namespace, created.metadata.name!)
          .catch(() => {});
        throw new Conflict(over);
      }
      return created;
    }
    throw new Unavailable(
      {
        en: `too many submissions of task ${taskId} at once; try again in a moment`,
        fr: `trop de soumissions simultanées de la tâche ${taskId} ; réessayez dans un instant`,
      },
      1,
    );
  }

  private writeStatus(s: SubmissionObject, status: object): Promise<SubmissionObject> {
    return this.client.mergePatch<SubmissionObject>(
      SUBMISSION,
      s.metadata.namespace,
      s.metadata.name!,
      { status },
      'status',
    );
  }

  /**
   * A reviewer grades an answer to a manual task: points up to the task's, and a comment the
   * candidate's record keeps. Grading again replaces the grade (the audit log keeps each).
   */
  async gradeByHand(
    a: AssessmentObject,
    submission: string,
    grade: { points: number; comment: string },
    reviewer: string,
  ): Promise<SubmissionObject> {
    const s = await this.client.get<SubmissionObject>(SUBMISSION, a.metadata.namespace, submission);
    if (!s || s.metadata.labels?.[LABELS.assessment] !== a.metadata.name)
      throw new NotFound(`no submission ${submission} in assessment ${a.metadata.name}`);
    const task = this.store.templateOf(a)?.spec.tasks?.find((x) => x.id === s.spec.task);
    if (!task) throw new NotFound(`task ${s.spec.task} is no longer in the template`);
    if (gradingOf(task).kind !== 'manual')
      throw new Conflict(`task ${task.id} is graded automatically; only manual tasks are graded by hand`);
    if (grade.points > task.points)
      throw new Invalid(
        `task ${task.id} is worth at most ${task.points} points`,
        'points',
        `at most ${task.points}`,
      );
    return this.client.mergePatch<SubmissionObject>(
      SUBMISSION,
      s.metadata.namespace,
      s.metadata.name!,
      {
        status: {
          graded: true,
          pass: grade.points === task.points,
          points: grade.points,
          explanation: grade.comment,
          hint: grade.comment,
          // The reviewer's comment, in their words, replaces the "a reviewer will grade" note in both languages.
          hintFr: null,
          gradedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          gradedBy: reviewer,
        },
      },
      'status',
    );
  }

  /** Attempts used and allowed per task, for the candidate page. */
  async attempts(a: AssessmentObject): Promise<Map<string, number>> {
    const used = new Map<string, number>();
    for (const s of await this.list(a)) used.set(s.spec.task, (used.get(s.spec.task) ?? 0) + 1);
    return used;
  }

  /** The assessment's submissions, oldest first (read from the API server, not a cache). */
  list(a: AssessmentObject): Promise<SubmissionObject[]> {
    return this.client
      .list<SubmissionObject>(SUBMISSION, {
        namespace: a.metadata.namespace,
        labelSelector: `${LABELS.assessment}=${a.metadata.name}`,
      })
      .then((l) => l.items.sort((x, y) => x.spec.submittedAt.localeCompare(y.spec.submittedAt)));
  }

  /**
   * Relays the answer to the grader in the candidate's namespace: the answer runs there, under that
   * pod's limits, never in this process.
   */
  private async grade(
    a: AssessmentObject,
    sandboxName: string,
    g: Graded,
    answer: string,
  ): Promise<GradeResponse> {
    const sandbox = a.status?.sandboxes?.find((s) => s.name === sandboxName);
    if (!sandbox?.ready)
      throw new Conflict({
        en: `sandbox ${sandboxName} is not ready yet; try again in a moment`,
        fr: `le bac à sable ${sandboxName} n’est pas encore prêt ; réessayez dans un instant`,
      });
    const ns = namespaceOfAssessment(a);
    if (g.kind === 'check') {
      const checked = await this.grader.check(ns, { sandbox: sandboxName, checks: g.checks! });
      return this.verdict(checked);
    }
    const request = {
      sandbox: sandboxName,
      kind: g.kind === 'mongo' ? ('mongo' as const) : ('sql' as const),
      reference: g.reference!,
      ...(g.collection ? { collection: g.collection } : {}),
      options: g.options,
      answer,
    };
    let outcome = await this.grader.grade(ns, request);
    // A token cached from an earlier namespace of the same name: read it again, once.
    if (outcome.kind === 'refused' && outcome.status === 401 && this.forgetToken) {
      this.forgetToken(ns);
      outcome = await this.grader.grade(ns, request);
    }
    return this.verdict(outcome);
  }

  /** The grade, or why there is none: the candidate may retry, or staff must fix the task. */
  private verdict(outcome: GraderOutcome): GradeResponse {
    switch (outcome.kind) {
      case 'graded':
        return outcome.result;
      case 'unavailable':
        throw new Unavailable(
          {
            en: `this answer could not be graded now (${outcome.reason}); try again in a moment`,
            fr: `cette réponse ne peut pas être corrigée maintenant (${outcome.reason}) ; réessayez dans un instant`,
          },
          outcome.retryAfterSeconds,
        );
      case 'refused':
        throw new Misconfigured({
          en: `the grader refused this task (${outcome.reason}); tell the recruiter`,
          fr: `le correcteur a refusé cette tâche (${outcome.reason}) ; prévenez le recruteur`,
        });
    }
  }
}

/**
 * The grader tokens, read from each namespace's grader Secret once per `ttlMs` instead of once per
 * answer (one API server round trip off every submission). The Secret is created once and never
 * rotated; a namespace deleted and made again under the same name gets a new one, so a 401 from
 * the grader forgets the cached token (GradingService reads it again and retries once).
 */
export function graderTokens(
  read: (namespace: string) => Promise<string | undefined>,
  ttlMs = 60_000,
  now: () => number = Date.now,
) {
  const cache = new Map<string, { token: string; until: number }>();
  return {
    get: async (namespace: string): Promise<string | undefined> => {
      const hit = cache.get(namespace);
      if (hit && hit.until > now()) return hit.token;
      const token = await read(namespace);
      // Not there yet (the operator creates it with the namespace): asked again next time.
      if (token) cache.set(namespace, { token, until: now() + ttlMs });
      else cache.delete(namespace);
      return token;
    },
    forget: (namespace: string) => {
      cache.delete(namespace);
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Grading: submissions graded against the candidate's sandbox and stored as Submission objects. */
    grading: GradingService;
  }
}

/** `app.grading`. */
export default fp(
  async function gradingPlugin(app: FastifyInstance, opts: { client: KubeClient; graderUrl?: string }) {
    const tokens = graderTokens(
      async (namespace) =>
        (await readSecretData(opts.client, namespace, GRADER.secretName))?.[GRADER.tokenKey],
    );
    const grader = new GraderClient({
      token: tokens.get,
      ...(opts.graderUrl && { baseUrl: (namespace) => opts.graderUrl!.replaceAll('{namespace}', namespace) }),
    });
    app.decorate('grading', new GradingService(opts.client, app.assessments, grader, tokens.forget));
  },
  { name: 'grading', dependencies: ['assessments'] },
);
