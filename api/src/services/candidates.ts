import {
  ANNOTATIONS,
  type AssessmentTemplate,
  credentialsSecretName,
  KINDS,
  refusalReason,
  type SandboxKind,
  type Timeline,
  timeline,
} from '@epreuve/crds';
import type { KubeClient } from '@epreuve/kube';
import { findExercise } from '@epreuve/sandboxes/exercises';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  type AssessmentObject,
  type AssessmentStore,
  namespaceOfAssessment,
  type TemplateObject,
} from './assessments.ts';
import { candidateEndpoint, type Endpoint, type GatewaySettings } from './connections.ts';
import { Conflict, type Localized } from './errors.ts';
import type { GradingService, SubmissionObject } from './grading.ts';
import type { CandidateLinks } from './links.ts';
import { readSecretData } from './secrets.ts';

export type Lang = 'en' | 'fr';

/** A task as the candidate sees it: never the reference answer. */
export interface CandidateTask {
  id: string;
  sandbox: string;
  points: number;
  title: string;
  /** Markdown. */
  prompt: string;
  /** What kind of answer the task takes. */
  answer: 'sql' | 'pipeline' | 'text' | 'none';
}

/** A task with the attempts the candidate has used and may still make. */
export interface CandidateTaskWithAttempts extends CandidateTask {
  attempts: { used: number; max: number };
}

/** One sandbox as the candidate reaches it: where, and with which (of their own) credentials. */
export interface SandboxAccess {
  name: string;
  kind: SandboxKind;
  ready: boolean;
  endpoint: Endpoint;
  /** The sandbox's credentials Secret, decoded; undefined until the operator has written it. */
  credentials?: Record<string, string>;
}

/** Everything the candidate page shows. */
export interface CandidateSession {
  assessment: AssessmentObject;
  template?: TemplateObject;
  started: boolean;
  expiresAt: string | null;
  tasks: CandidateTask[];
  sandboxes: SandboxAccess[];
}

/**
 * What a candidate does with their link: read their session (time left, tasks, where to connect),
 * start the clock (OnFirstAccess), submit answers.
 */
export class CandidateSessions {
  private readonly client: KubeClient;
  private readonly store: AssessmentStore;
  private readonly grading: GradingService;
  private readonly links: CandidateLinks;
  private readonly gateway?: GatewaySettings;
  // Sandbox credentials never change once created, so a short cache spares the API server a read
  // per session poll (the candidate page refreshes; the countdown runs in the browser).
  private readonly credentials = new Map<string, { at: number; data: Record<string, string> | undefined }>();

  constructor(o: {
    client: KubeClient;
    store: AssessmentStore;
    grading: GradingService;
    links: CandidateLinks;
    /** The sandbox gateway candidates connect through; absent: in-cluster addresses. */
    gateway?: GatewaySettings;
  }) {
    this.client = o.client;
    this.store = o.store;
    this.grading = o.grading;
    this.links = o.links;
    this.gateway = o.gateway;
  }

  /**
   * The session last built for an assessment object (the informer replaces the object on every
   * change, so a change is a new key), per language, with what it was built from besides the
   * object: the template object, whether the box was open, the credentials read. While those are
   * the same objects, the same session is returned: a page polling it costs no rebuild (the
   * namespace, the endpoints, the tasks), and the route builds its view once (views.ts).
   */
  private readonly built = new WeakMap<AssessmentObject, Partial<Record<Lang, BuiltSession>>>();

  async session(a: AssessmentObject, lang: Lang): Promise<CandidateSession> {
    const template = this.store.templateOf(a);
    // Before Start (and after the end) the page shows what the assessment is, never how to work
    // on it: no credentials, no connection strings, no data-API key. Checked on every call.
    const open = !refusalReason(a, new Date(), Boolean(startedAt(a)));
    let perLang = this.built.get(a);
    const last = perLang?.[lang];
    const reachable = last?.reachable ?? this.reachable(a);
    let credentials: Array<Record<string, string> | undefined>;
    if (!open) credentials = reachable.map(() => undefined);
    else {
      // Cache hits answer without a promise each; any miss reads them all as before.
      const hits = reachable.map(({ secret }) => this.cachedCredentials(secret));
      credentials = hits.includes(MISS)
        ? await Promise.all(reachable.map(({ secret }) => this.readCredentials(secret)))
        : (hits as Array<Record<string, string> | undefined>);
    }
    if (
      last &&
      last.template === template &&
      last.credentials.length === credentials.length &&
      last.credentials.every((c, i) => c === credentials[i])
    )
      return last.session;
    const session: CandidateSession = {
      assessment: a,
      template,
      started: Boolean(startedAt(a)),
      expiresAt: a.status?.expiresAt ?? null,
      tasks: this.tasks(a, lang),
      sandboxes: reachable.map(({ s, endpoint }, i) => ({
        name: s.name,
        kind: s.kind,
        ready: s.ready,
        endpoint,
        credentials: credentials[i],
      })),
    };
    if (!perLang) {
      perLang = {};
      this.built.set(a, perLang);
    }
    perLang[lang] = { template, credentials, reachable, session };
    return session;
  }

  /**
   * The sandboxes a candidate can reach, with their endpoints. Through the gateway a sandbox has
   * a host only once the operator drew the assessment's host key (an assessment from before host
   * keys: its next reconcile, seconds after an upgrade); until then it is not listed, rather than
   * listed under a name the gateway does not serve.
   */
  private reachable(a: AssessmentObject): Reachable[] {
    const ns = namespaceOfAssessment(a);
    return (a.status?.sandboxes ?? []).flatMap((s) => {
      const endpoint = candidateEndpoint(a.status?.hostKey, s, `${s.name}.${ns}.svc`, this.gateway);
      return endpoint
        ? [{ s, endpoint, secret: `${ns}/${s.secretName ?? credentialsSecretName(s.name)}` }]
        : [];
    });
  }

  tasks(a: AssessmentObject, lang: Lang): CandidateTask[] {
    return (this.store.templateOf(a)?.spec.tasks ?? []).map((task) => {
      const ex = task.exercise ? safeExercise(task.exercise) : undefined;
      return {
        id: task.id,
        sandbox: task.sandbox,
        points: task.points,
        title: task.title ?? ex?.title[lang] ?? task.id,
        prompt: task.prompt ?? ex?.prompt[lang] ?? '',
        answer: task.grader?.check
          ? 'none'
          : ex?.kind === 'mongo'
            ? 'pipeline'
            : task.grader?.manual
              ? 'text'
              : 'sql',
      };
    });
  }

  /**
   * The tasks with their prompts and the attempts used and left (one read of the submissions).
   * The prompts appear when the clock starts: before Start the session lists titles and points.
   */
  async tasksWithAttempts(
    a: AssessmentObject,
    lang: Lang,
  ): Promise<{ tasks: CandidateTaskWithAttempts[]; submissions: { used: number; max: number } }> {
    if (!startedAt(a))
      throw new Conflict({
        en: 'start the assessment first: the prompts appear when the clock starts',
        fr: 'commencez d’abord l’évaluation : les énoncés apparaissent quand le chronomètre démarre',
      });
    const used = await this.grading.attempts(a);
    const grading = this.store.templateOf(a)?.spec.grading;
    const max = grading?.maxAttempts ?? 0;
    return {
      tasks: this.tasks(a, lang).map((t) => ({ ...t, attempts: { used: used.get(t.id) ?? 0, max } })),
      // The cap across tasks (grading.maxSubmissions): a task's attempts left never exceed it.
      submissions: { used: [...used.values()].reduce((n, k) => n + k, 0), max: grading?.maxSubmissions ?? 0 },
    };
  }

  /**
   * Starts the clock of an OnFirstAccess assessment (once: a second start changes nothing) and
   * renews the link to expire with the assessment.
   */
  async start(
    a: AssessmentObject,
    linkId: string,
  ): Promise<{ token: string; startedAt: Date; expiresAt: Date }> {
    if (a.spec.startPolicy !== 'OnFirstAccess')
      throw new Conflict({
        en: 'this assessment started when it was created',
        fr: 'cette évaluation a commencé à sa création',
      });
    const updated = await this.store.markArrived(a, new Date());
    const t = this.store.templateOf(a);
    if (!t) throw new Conflict(`the template ${a.spec.templateRef.name} of this assessment is gone`);
    const { startedAt, expiresAt } = timeline(updated, t) as Required<Timeline>;
    // Same link id, a shorter life: the token now expires with the assessment.
    const token = await this.links.renew(a, linkId, expiresAt);
    return { token, startedAt, expiresAt };
  }

  /** Grades an answer, once the sandboxes are up and the clock runs. */
  async submit(a: AssessmentObject, task: string, answer: string): Promise<SubmissionObject> {
    refuseUnlessOpenForWork(a, this.store.templateOf(a));
    try {
      return await this.grading.submit(a, task, answer);
    } catch (err) {
      // The answer was admitted in time, but the assessment ended or was revoked while it was
      // graded, and its sandbox is going away under it: say so, rather than "try again" (a retry
      // can only be refused). The state is read fresh: the cache may not show a revocation yet.
      const ended = await this.endedSince(a);
      if (ended)
        throw new Conflict({
          en: `${ended.en} while your answer was being graded; it was not recorded`,
          fr: `${ended.fr} pendant la correction de votre réponse ; elle n’a pas été enregistrée`,
        });
      throw err;
    }
  }

  /** Why the assessment is closed now (ended, revoked, deleted), or undefined while it is open. */
  private async endedSince(a: AssessmentObject): Promise<Localized | undefined> {
    let now: AssessmentObject | undefined;
    try {
      now = await this.client.get<AssessmentObject>(KINDS.Assessment, a.metadata.namespace, a.metadata.name!);
    } catch {
      now = this.store.assessments.get(`${a.metadata.namespace}/${a.metadata.name}`);
    }
    if (!now || now.metadata.uid !== a.metadata.uid)
      return { en: 'this assessment was deleted', fr: 'cette évaluation a été supprimée' };
    return refusalMessage(now, new Date(), true);
  }

  /** A credentials Secret's data from the cache (`ns/name`), or MISS when it must be read. */
  private cachedCredentials(key: string): Record<string, string> | undefined | typeof MISS {
    const hit = this.credentials.get(key);
    return hit && Date.now() - hit.at < 60_000 ? hit.data : MISS;
  }

  private async readCredentials(key: string): Promise<Record<string, string> | undefined> {
    const hit = this.cachedCredentials(key);
    if (hit !== MISS) return hit;
    const slash = key.indexOf('/');
    const data = await readSecretData(this.client, key.slice(0, slash), key.slice(slash + 1));
    if (data) this.credentials.set(key, { at: Date.now(), data });
    if (this.credentials.size > 10_000) this.credentials.delete(this.credentials.keys().next().value!);
    return data;
  }
}

const MISS = Symbol('miss');

type Reachable = {
  s: NonNullable<NonNullable<AssessmentObject['status']>['sandboxes']>[number];
  endpoint: Endpoint;
  secret: string;
};

interface BuiltSession {
  template: TemplateObject | undefined;
  credentials: Array<Record<string, string> | undefined>;
  reachable: Reachable[];
  session: CandidateSession;
}

const startedAt = (a: AssessmentObject) =>
  a.status?.startedAt ?? a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];

function safeExercise(id: string) {
  try {
    return findExercise(id);
  } catch {
    return undefined;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The candidate's side: session, start, submit. */
    candidates: CandidateSessions;
  }
}

/** `app.candidates`. */
export default fp(
  async function candidatesPlugin(
    app: FastifyInstance,
    opts: { client: KubeClient; gateway?: GatewaySettings },
  ) {
    app.decorate(
      'candidates',
      new CandidateSessions({
        client: opts.client,
        store: app.assessments,
        grading: app.grading,
        links: app.links,
        gateway: opts.gateway,
      }),
    );
  },
  { name: 'candidates', dependencies: ['assessments', 'grading', 'links'] },
);

/**
 * Why the time box refuses the candidate now (crds' `refusalReason`, which the gateway's
 * `accessRefusal` words too), as the candidate reads it, or undefined while it is open.
 */
/**
 * Work on the sandboxes (an answer, a console run) needs them Ready and the clock running. The API
 * checks the time box itself: the operator may not have marked the end yet.
 */
export function refuseUnlessOpenForWork(
  a: AssessmentObject,
  template: Pick<AssessmentTemplate, 'spec'> | undefined,
  now = new Date(),
): void {
  if (a.status?.phase !== 'Ready')
    throw new Conflict({
      en: 'your sandboxes are not ready yet; try again in a moment',
      fr: 'vos bacs à sable ne sont pas encore prêts ; réessayez dans un instant',
    });
  const started = Boolean(startedAt(a));
  // The operator records the deadline; until it has (it may be behind, or restarting), the API
  // works it out from the start and the duration, so the box never stays open without an end.
  const expiresAt =
    a.status.expiresAt ?? (started && template ? timeline(a, template).expiresAt?.toISOString() : undefined);
  if (started && !expiresAt)
    throw new Conflict({
      en: 'your clock is being started; try again in a moment',
      fr: 'votre chronomètre démarre ; réessayez dans un instant',
    });
  const closed = refusalMessage({ ...a, status: { ...a.status, expiresAt } }, now, started);
  if (closed) throw new Conflict(closed);
}

export function refusalMessage(a: AssessmentObject, now: Date, started: boolean): Localized | undefined {
  switch (refusalReason(a, now, started)) {
    case 'revoked':
      return { en: 'this assessment was revoked', fr: 'cette évaluation a été révoquée' };
    case 'ended': {
      const at = a.status?.expiresAt;
      return {
        en: `this assessment ended${at ? ` at ${at}` : ''}`,
        fr: `cette évaluation est terminée${at ? ` (fin : ${at})` : ''}`,
      };
    }
    case 'notStarted':
      return {
        en: 'this assessment has not started: press Start first',
        fr: 'cette évaluation n’a pas commencé : appuyez d’abord sur Commencer',
      };
    case undefined:
      return undefined;
  }
}
