import { createHash, randomBytes } from 'node:crypto';
import {
  ANNOTATIONS,
  API_VERSION,
  type Assessment,
  type AssessmentSpec,
  type AssessmentTemplate,
  candidateNamespace,
  durationLimitProblem,
  hasEnded,
  KINDS,
  LABELS,
} from '@epreuve/crds';
import {
  type Informer,
  isConflict,
  isNotFound,
  isSubset,
  type KubeClient,
  KubeError,
  type KubeObject,
} from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import { Conflict, Invalid, Malformed, NotFound, Unavailable } from './errors.ts';

/** An Assessment as the API server stores it. */
export type AssessmentObject = Assessment & KubeObject;
/** An AssessmentTemplate as the API server stores it. */
export type TemplateObject = AssessmentTemplate & KubeObject;
const ASMT = KINDS.Assessment;

/** What staff ask for when creating an assessment: the CRD spec, plus an optional name. */
export type NewAssessment = AssessmentSpec & { name?: string };

/** The template's maxDuration bounds every duration (the rule lives in `@epreuve/crds`). */
function assertDurationAllowed(duration: string | undefined, t: TemplateObject): void {
  const problem = durationLimitProblem(duration, t);
  if (problem) throw new Invalid(problem, 'duration', `at most ${t.spec.maxDuration}`);
}

/**
 * The API server refused the object (its CRD schema or CEL rules, which the API's own checks do
 * not repeat in full): the first cause, named by its path in the spec (`spec.candidate.email` →
 * `candidate.email`).
 */
function refused(err: unknown): never {
  // The team's ResourceQuota on Assessments (the API server's backstop to the budget below).
  if (err instanceof KubeError && err.code === 403 && /exceeded quota/.test(err.message)) {
    throw new Conflict(`the Kubernetes API refused the assessment: ${err.message}`);
  }
  // A quota just made (an install, a new team) refuses every create until the controller
  // manager has counted what it covers: a matter of seconds.
  if (err instanceof KubeError && err.code === 403 && /status unknown for quota/.test(err.message)) {
    throw new Unavailable(
      "the Kubernetes API server has not counted this team's assessments yet (a new quota); retry in a few seconds",
      5,
    );
  }
  if (err instanceof KubeError && err.code === 422) {
    const cause = err.causes.find((c) => c.field) ?? err.causes[0];
    const field = (cause?.field ?? 'spec').replace(/^(spec|metadata)\.?/, '') || 'name';
    throw new Invalid(
      `the Kubernetes API refused the assessment: ${err.message}`,
      field,
      cause?.message ?? 'invalid',
    );
  }
  throw err;
}

/** Per-team caps on active assessments: one leaked key cannot fill the cluster. */
export interface TeamBudgets {
  perTeam: Record<string, number>;
  default: number;
}

/** Still running or about to: not ended, revoked or being deleted (what a budget counts). */
export function isActive(a: AssessmentObject): boolean {
  return (
    !a.metadata.deletionTimestamp &&
    !a.spec.revoked &&
    a.status?.phase !== 'Expired' &&
    a.status?.phase !== 'Failed'
  );
}

/** A readable, DNS-safe name from a candidate's name: "Jane Doe" → "jane-doe". */
export function slugify(name: string, max = 30): string {
  const slug = name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return slug || 'candidate';
}

/**
 * Assessments as the API sees them: reads from an informer cache (the API server is the
 * database; the cache makes listing and pagination cheap), writes through the Kubernetes API.
 */
export class AssessmentStore {
  private readonly client: KubeClient;
  readonly assessments: Informer<AssessmentObject>;
  readonly templates: Informer<TemplateObject>;
  private readonly budgets: TeamBudgets;

  constructor(
    client: KubeClient,
    assessments: Informer<AssessmentObject>,
    templates: Informer<TemplateObject>,
    budgets: TeamBudgets = { perTeam: {}, default: 500 },
  ) {
    this.client = client;
    this.assessments = assessments;
    this.templates = templates;
    this.budgets = budgets;
  }

  /** How many active assessments a team may have at once. */
  budgetOf(team: string): number {
    return this.budgets.perTeam[team] ?? this.budgets.default;
  }

  /** A team's assessments that still hold (or will hold) a candidate namespace. */
  activeCount(team: string): number {
    return this.assessments.list().filter((a) => a.metadata.namespace === team && isActive(a)).length;
  }

  /** Every team with assessments, for the per-team metrics. */
  teams(): string[] {
    return [...new Set(this.assessments.list().map((a) => a.metadata.namespace!))].sort();
  }

  /** Whether both caches hold a full list (the API is ready to answer). */
  synced(): boolean {
    return this.assessments.hasSynced() && this.templates.hasSynced();
  }

  /**
   * An assessment as the API server has it now (`team/name`), for the rare check the cache may be
   * too late for; undefined when it is gone.
   */
  async fresh(key: string): Promise<AssessmentObject | undefined> {
    const [team, name] = key.split('/') as [string, string];
    try {
      return await this.client.get<AssessmentObject>(ASMT, team, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  get(team: string, name: string): AssessmentObject {
    const a = this.assessments.get(`${team}/${name}`);
    if (!a) throw new NotFound(`no assessment ${name} in team ${team}`);
    return a;
  }

  template(team: string, name: string): TemplateObject | undefined {
    return this.templates.get(`${team}/${name}`);
  }

  getTemplate(team: string, name: string): TemplateObject {
    const t = this.template(team, name);
    if (!t) throw new NotFound(`no template ${name} in team ${team}`);
    return t;
  }

  /** The template an assessment was made from; gone only if someone deleted it meanwhile. */
  templateOf(a: AssessmentObject): TemplateObject | undefined {
    return this.template(a.metadata.namespace!, a.spec.templateRef.name);
  }

  listTemplates(team: string): TemplateObject[] {
    return this.templates
      .list()
      .filter((t) => t.metadata.namespace === team)
      .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
  }

  /**
   * Creates an Assessment. With an Idempotency-Key the name is derived from the key, so a retry
   * finds the first one instead of creating a second; the same key with another body is a 409.
   */
  async create(
    team: string,
    body: NewAssessment,
    o: { idempotencyKey?: string; traceparent?: string; actor: string },
  ): Promise<{ assessment: AssessmentObject; replayed: boolean }> {
    const template = this.template(team, body.templateRef.name);
    if (!template) {
      throw new Invalid(
        `no template ${body.templateRef.name} in team ${team}`,
        'templateRef.name',
        'no such template',
      );
    }
    assertDurationAllowed(body.duration, template);
    const keyHash = o.idempotencyKey
      ? createHash('sha256').update(`${team}\0${o.idempotencyKey}`).digest('hex')
      : undefined;
    if (keyHash) {
      // Authoritative lookup (not the cache): a retry must find the first request's assessment.
      const previous = await this.client.list<AssessmentObject>(ASMT, {
        namespace: team,
        labelSelector: `${LABELS.idempotencyKey}=${keyHash.slice(0, 63)}`,
      });
      const existing = previous.items[0];
      if (existing)
        return {
          assessment: { ...existing, apiVersion: API_VERSION, kind: 'Assessment' },
          replayed: this.sameRequest(existing, body),
        };
    }
    // After the replay lookup: a retry of an accepted request is never refused for the budget.
    const budget = this.budgetOf(team);
    const active = this.activeCount(team);
    if (active >= budget) {
      throw new Conflict(
        `team ${team} has ${active} active assessments, its budget is ${budget}: let some end, revoke or delete them, or ask an administrator to raise the budget`,
      );
    }
    const suffix = keyHash ? keyHash.slice(0, 6) : randomBytes(3).toString('hex');
    const name = body.name ?? `${slugify(body.candidate.name)}-${suffix}`;
    const { name: _name, ...spec } = body;
    const obj: KubeObject = {
      apiVersion: API_VERSION,
      kind: 'Assessment',
      metadata: {
        name,
        namespace: team,
        labels: {
          [LABELS.template]: body.templateRef.name,
          ...(keyHash ? { [LABELS.idempotencyKey]: keyHash.slice(0, 63) } : {}),
        },
        annotations: {
          [ANNOTATIONS.createdBy]: o.actor,
          ...(o.traceparent ? { [ANNOTATIONS.traceparent]: o.traceparent } : {}),
          ...(keyHash ? { [ANNOTATIONS.idempotencyKeySha256]: keyHash } : {}),
        },
      },
      spec,
    };
    try {
      return { assessment: await this.client.create<AssessmentObject>(obj), replayed: false };
    } catch (err) {
      if (!isConflict(err)) refused(err);
      const existing = await this.client.get<AssessmentObject>(ASMT, team, name);
      if (keyHash && existing?.metadata.annotations?.[ANNOTATIONS.idempotencyKeySha256] === keyHash) {
        return { assessment: existing, replayed: this.sameRequest(existing, body) };
      }
      throw new Conflict(`an assessment named ${name} already exists in team ${team}`, {
        field: 'name',
        reason: 'already exists',
      });
    }
  }

  /** A replay must carry the same request; the same key for another body is the client's bug. */
  private sameRequest(existing: AssessmentObject, body: NewAssessment): true {
    const { name: _name, ...spec } = body;
    if (!(isSubset(spec, existing.spec) && isSubset(existing.spec.candidate, body.candidate))) {
      throw new Conflict('this Idempotency-Key was already used for a different assessment');
    }
    return true;
  }

  /**
   * Lists a team's assessments, filtered, ordered by name; `cursor` is the last name of the
   * previous page, so walking the pages yields each assessment once even while others are added.
   */
  list(
    team: string,
    q: { phase?: string; template?: string; candidate?: string; limit: number; cursor?: string },
  ): { items: AssessmentObject[]; nextCursor: string | null } {
    const after = q.cursor ? decodeCursor(q.cursor) : '';
    const needle = q.candidate?.toLowerCase();
    const all = this.assessments
      .list()
      .filter((a) => a.metadata.namespace === team)
      .filter((a) => !q.phase || (a.status?.phase ?? 'Pending') === q.phase)
      .filter((a) => !q.template || a.spec.templateRef.name === q.template)
      .filter(
        (a) =>
          !needle ||
          a.spec.candidate.name.toLowerCase().includes(needle) ||
          a.spec.candidate.email.toLowerCase().includes(needle),
      )
      .filter((a) => a.metadata.name! > after)
      .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
    const items = all.slice(0, q.limit);
    return {
      items,
      nextCursor: all.length > q.limit ? encodeCursor(items[items.length - 1]!.metadata.name!) : null,
    };
  }

  /** Extends (or shortens) the time box, within the template's maxDuration. */
  async setDuration(a: AssessmentObject, duration: string): Promise<AssessmentObject> {
    const t = this.templateOf(a);
    if (t) assertDurationAllowed(duration, t);
    if (hasEnded(a)) throw new Conflict('this assessment has ended; its sandboxes are gone or hibernated');
    return this.patch(a, { spec: { duration } });
  }

  /** Ends the assessment now: the operator deletes the sandboxes, every link stops working. */
  revoke(a: AssessmentObject): Promise<AssessmentObject> {
    return this.patch(a, {
      spec: { revoked: true },
      metadata: { annotations: { [ANNOTATIONS.linkId]: null } },
    });
  }

  async remove(a: AssessmentObject): Promise<void> {
    await this.client.delete(ASMT, a.metadata.namespace, a.metadata.name!);
  }

  /** Records a new link id: every earlier link to this assessment stops working. */
  setLinkId(a: AssessmentObject, linkId: string): Promise<AssessmentObject> {
    return this.patch(a, { metadata: { annotations: { [ANNOTATIONS.linkId]: linkId } } });
  }

  /** Records the candidate's first visit (OnFirstAccess); never moves it once set. */
  async markArrived(a: AssessmentObject, at: Date): Promise<AssessmentObject> {
    if (a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt]) return a;
    const value = at.toISOString().replace(/\.\d+Z$/, 'Z');
    // Guarded by resourceVersion: two first visits at once record one arrival, not two.
    return this.client.jsonPatch<AssessmentObject>(ASMT, a.metadata.namespace, a.metadata.name!, [
      { op: 'test', path: '/metadata/resourceVersion', value: a.metadata.resourceVersion },
      a.metadata.annotations
        ? {
            op: 'add',
            path: `/metadata/annotations/${ANNOTATIONS.candidateArrivedAt.replace('/', '~1')}`,
            value,
          }
        : { op: 'add', path: '/metadata/annotations', value: { [ANNOTATIONS.candidateArrivedAt]: value } },
    ]);
  }

  private async patch(a: AssessmentObject, patch: object): Promise<AssessmentObject> {
    try {
      return await this.client.mergePatch<AssessmentObject>(
        ASMT,
        a.metadata.namespace,
        a.metadata.name!,
        patch,
      );
    } catch (err) {
      if (isNotFound(err))
        throw new NotFound(`no assessment ${a.metadata.name} in team ${a.metadata.namespace}`);
      refused(err);
    }
  }
}

export const encodeCursor = (name: string) =>
  Buffer.from(JSON.stringify({ after: name })).toString('base64url');

export function decodeCursor(cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { after?: unknown };
    if (typeof v.after === 'string') return v.after;
  } catch {
    // fall through
  }
  throw new Malformed('cursor is not a cursor this API returned', 'cursor', 'malformed');
}

/**
 * The candidate namespace: `status.namespace`, the only source once the operator wrote it (a
 * namespace claimed from a warm pool keeps its pool name). Before that first status write nothing
 * exists in the namespace yet, and the name a cold start will use is derived from the assessment's.
 */
export const namespaceOfAssessment = (a: AssessmentObject) =>
  a.status?.namespace ?? candidateNamespace(a.metadata.namespace!, a.metadata.name!);

declare module 'fastify' {
  interface FastifyInstance {
    /** Assessments and templates: reads from the informer caches, writes through the API server. */
    assessments: AssessmentStore;
  }
}

/** `app.assessments`, from a store the caller built (main.ts starts its informers). */
export default fp(
  async function assessmentsPlugin(app: FastifyInstance, opts: { store: AssessmentStore }) {
    app.decorate('assessments', opts.store);
    const store = opts.store;
    // Read from the cache at scrape time: no bookkeeping to drift.
    new Gauge({
      name: 'epreuve_team_active_assessments',
      help: 'Active assessments per team (not ended, revoked or being deleted)',
      labelNames: ['team'] as const,
      registers: [app.metricsRegistry],
      collect() {
        this.reset();
        for (const team of store.teams()) this.set({ team }, store.activeCount(team));
      },
    });
    new Gauge({
      name: 'epreuve_team_assessment_budget',
      help: 'Active assessments a team may have at once',
      labelNames: ['team'] as const,
      registers: [app.metricsRegistry],
      collect() {
        this.reset();
        for (const team of store.teams()) this.set({ team }, store.budgetOf(team));
      },
    });
  },
  { name: 'assessments' },
);
